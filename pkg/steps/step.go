// Package steps is the one graph that plan and up walk: every step runs
// on one host, checks read-only whether it would change anything, and
// applies idempotently.
package steps

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/metalk8s/metalk8s/pkg/ssh"
)

// Phases, in the order up runs them.
// "remove" holds remove-node's steps only: up never has any.
var Phases = []string{"preflight", "prepare", "storage", "etcd", "control-plane", "workers", "volumes", "addons", "remove"}

// PhaseHelp describes each phase for --help.
var PhaseHelp = map[string]string{
	"preflight":     "connect; OS facts, hostnames, time, CPU, memory, ports; recover a lost local PKI",
	"prepare":       "state directory, bundle, packages, kernel modules, sysctls, swap, containerd, images, kubelet",
	"storage":       "LVM volume groups and logical volumes (workers with metalk8s_lvm_drives_<vg>)",
	"etcd":          "the TLS etcd cluster",
	"control-plane": "the kubeadm control plane and the pod network",
	"workers":       "join the workers, then wait for every node Ready",
	"volumes":       "the StorageClass and local PersistentVolumes of the LVM volumes",
	"addons":        "the addon charts, as Helm releases (metalk8s_<addon>_enabled)",
	"remove":        "remove-node's steps: drain, etcd member removal, node reset (remove-node only)",
}

// Host is what a step acts on: one inventory host, reached over SSH.
type Host interface {
	Name() string
	Run(ctx context.Context, cmd string) (stdout []byte, err error)
	// Put writes a file atomically unless its content is already there.
	Put(ctx context.Context, f ssh.File) (changed bool, err error)
}

// Change is what Check found: nothing to do, or a short human diff.
type Change struct {
	Needed   bool
	Diff     []string // "+ create /var/lib/metalk8s/node1", "~ sysctl net.ipv4.ip_forward 0 -> 1"
	Warnings []string // what the operator should know, changed or not
	// Note, when set, is said on the step's line, in parentheses: why
	// there is nothing to do ("disabled: metalk8s_monitoring_enabled is
	// false"), where "ok" alone would mislead.
	Note string
	// Destructive, when set, says what the change destroys ("wipe
	// /dev/vdc", "replace apiserver.crt", "remove etcd member node3"):
	// up asks before it, and without a terminal only applies it with --yes.
	Destructive string
}

// NoChange is the answer of a step that is already done.
var NoChange = Change{}

// Changes builds a Change from diff lines; none means no change.
func Changes(diff ...string) Change { return Change{Needed: len(diff) > 0, Diff: diff} }

// Step is one node of the graph.
type Step struct {
	ID    string   // unique: "preflight/os-facts@node1"
	Host  string   // the inventory host it runs on
	Phase string   // one of Phases
	Deps  []string // IDs of steps that must be done first
	// Inputs define the step: when they change, a recorded run is stale.
	Inputs any
	// Check reports, without changing anything, what Apply would do. An
	// error fails the step (preflight checks fail this way).
	Check func(ctx context.Context, h Host) (Change, error)
	// Apply makes the change; it must be safe to run again. Nil for
	// check-only steps.
	Apply func(ctx context.Context, h Host) error
	// Units are the systemd units worth collecting when the step fails.
	Units []string
	// Diag are more commands whose output explains a failure, keyed by
	// the file name they get in the diagnostics bundle.
	Diag  map[string]string
	Retry Retry
}

// Retry is how often a transient failure (a dropped connection, a
// timeout) is tried again.
type Retry struct {
	Attempts int           // total tries; 0 means the default (3)
	Delay    time.Duration // first wait; doubles each time (default 2s)
	// If, when set, decides which errors are tried again, in place of the
	// run's transient test (Options.Transient).
	If func(error) bool
}

func (r Retry) retries(err error, o *Options) bool {
	if r.If != nil {
		return r.If(err)
	}
	return o.Transient != nil && o.Transient(err)
}

func (r Retry) attempts() int {
	if r.Attempts <= 0 {
		return 3
	}
	return r.Attempts
}

func (r Retry) delay(attempt int) time.Duration {
	d := r.Delay
	if d <= 0 {
		d = 2 * time.Second
	}
	return d << (attempt - 1)
}

// Name is the step's ID without its host: "preflight/os-facts".
func (s *Step) Name() string {
	name, _, _ := strings.Cut(s.ID, "@")
	return name
}

// Fingerprint hashes the step's inputs.
func (s *Step) Fingerprint() string {
	b, err := json.Marshal(struct {
		ID     string
		Inputs any
	}{s.ID, s.Inputs})
	if err != nil {
		b = []byte(fmt.Sprintf("%s %#v", s.ID, s.Inputs))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

// ID builds a step ID.
func ID(name, host string) string { return name + "@" + host }

func phaseIndex(p string) int {
	for i, x := range Phases {
		if x == p {
			return i
		}
	}
	return -1
}

// ParsePhases reads a comma-separated list of phase names.
func ParsePhases(s string) (map[string]bool, error) {
	out := map[string]bool{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if phaseIndex(p) < 0 {
			return nil, fmt.Errorf("unknown phase %q (phases: %s)", p, strings.Join(Phases, ", "))
		}
		out[p] = true
	}
	return out, nil
}
