package node

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/metalk8s/metalk8s/pkg/inventory"
	"github.com/metalk8s/metalk8s/pkg/steps"
)

// MaxClockSkew is how far a node's clock may be from ours (etcd and TLS
// need agreeing clocks).
const MaxClockSkew = 2 * time.Second

var reDNSLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

// Preflight returns the checks of every node: reach it, read its facts,
// check its hostname, clock, resources and ports; and one cluster check
// that hostnames are unique.
func Preflight(cl *inventory.Cluster, store *FactStore) []*steps.Step {
	var out []*steps.Step
	var factIDs []string
	for _, n := range cl.Nodes {
		n := n
		connect := steps.ID("preflight/connect", n.Name)
		facts := steps.ID("preflight/facts", n.Name)
		factIDs = append(factIDs, facts)
		out = append(out,
			&steps.Step{ID: connect, Host: n.Name, Phase: "preflight", Inputs: n.SSH.Host,
				Check: func(ctx context.Context, h steps.Host) (steps.Change, error) {
					_, err := h.Run(ctx, "true")
					return steps.NoChange, err
				}},
			&steps.Step{ID: facts, Host: n.Name, Phase: "preflight", Deps: []string{connect},
				Check: func(ctx context.Context, h steps.Host) (steps.Change, error) {
					t0 := time.Now()
					f, err := ReadFacts(ctx, h)
					if err != nil {
						return steps.NoChange, err
					}
					f.RTT = time.Since(t0)
					f.EpochNano -= t0.Add(f.RTT / 2).UnixNano() // now the skew
					store.set(n.Name, f)
					return steps.NoChange, f.Supported()
				}},
			&steps.Step{ID: steps.ID("preflight/hostname", n.Name), Host: n.Name, Phase: "preflight", Deps: []string{facts},
				Check: func(ctx context.Context, h steps.Host) (steps.Change, error) {
					name := store.Get(n.Name).Hostname
					if len(name) > 253 || !reDNSLabel.MatchString(name) {
						return steps.NoChange, fmt.Errorf("hostname %q is not a valid node name (lowercase letters, digits, '-' and '.', as DNS allows)", name)
					}
					return steps.NoChange, nil
				}},
			&steps.Step{ID: steps.ID("preflight/clock", n.Name), Host: n.Name, Phase: "preflight", Deps: []string{facts},
				Check: func(ctx context.Context, h steps.Host) (steps.Change, error) {
					f := store.Get(n.Name)
					skew := time.Duration(f.EpochNano)
					// The reading is only known to within half the round trip.
					limit := MaxClockSkew + f.RTT/2
					if skew > limit || skew < -limit {
						return steps.NoChange, fmt.Errorf("clock is %s off from this machine's (at most %s): set up time sync (chrony, systemd-timesyncd)", skew.Round(time.Millisecond), MaxClockSkew)
					}
					return steps.NoChange, nil
				}},
			resourcesStep(n, store, facts),
			portsStep(n, connect),
		)
	}
	if len(cl.ControlPlane) > 0 {
		out = append(out, &steps.Step{ID: steps.ID("preflight/unique-hostnames", cl.ControlPlane[0].Name),
			Host: cl.ControlPlane[0].Name, Phase: "preflight", Deps: factIDs,
			Check: func(ctx context.Context, h steps.Host) (steps.Change, error) {
				seen := map[string][]string{}
				for _, n := range cl.Nodes {
					hn := strings.ToLower(store.Get(n.Name).Hostname)
					seen[hn] = append(seen[hn], n.Name)
				}
				var dups []string
				for hn, hosts := range seen {
					if len(hosts) > 1 {
						dups = append(dups, fmt.Sprintf("%s (%s)", hn, strings.Join(hosts, ", ")))
					}
				}
				sort.Strings(dups)
				if len(dups) > 0 {
					return steps.NoChange, fmt.Errorf("hosts share a hostname, which must be unique: %s", strings.Join(dups, "; "))
				}
				return steps.NoChange, nil
			}})
	}
	return out
}

func resourcesStep(n *inventory.Node, store *FactStore, facts string) *steps.Step {
	minCPU, minMem := 1, 1024
	if n.ControlPlane {
		minCPU, minMem = 2, 1700 // kubeadm's own minimums
	}
	minCPU = intVar(n.Vars, "metalk8s_min_cpus", minCPU)
	minMem = intVar(n.Vars, "metalk8s_min_memory_mb", minMem)
	return &steps.Step{ID: steps.ID("preflight/resources", n.Name), Host: n.Name, Phase: "preflight", Deps: []string{facts},
		Inputs: []int{minCPU, minMem},
		Check: func(ctx context.Context, h steps.Host) (steps.Change, error) {
			f := store.Get(n.Name)
			var short []string
			if f.CPUs < minCPU {
				short = append(short, fmt.Sprintf("%d CPUs, needs %d", f.CPUs, minCPU))
			}
			if f.MemoryMB < minMem {
				short = append(short, fmt.Sprintf("%d MiB of memory, needs %d", f.MemoryMB, minMem))
			}
			if len(short) > 0 {
				return steps.NoChange, fmt.Errorf("not enough resources: %s (lower metalk8s_min_cpus / metalk8s_min_memory_mb only for labs)", strings.Join(short, "; "))
			}
			return steps.NoChange, nil
		}}
}

// requiredPorts lists the TCP ports a node's roles need, and the process
// allowed to hold each (ours, on a re-run).
func requiredPorts(n *inventory.Node) map[int]string {
	ports := map[int]string{}
	if n.ControlPlane {
		ports[6443], ports[10257], ports[10259] = "kube-apiserver", "kube-controller", "kube-scheduler"
	}
	if n.Etcd {
		ports[2379], ports[2380] = "etcd", "etcd"
	}
	if n.ControlPlane || n.Worker {
		ports[10250] = "kubelet"
	}
	return ports
}

var reSSUsers = regexp.MustCompile(`users:\(\("([^"]+)"`)

func portsStep(n *inventory.Node, connect string) *steps.Step {
	ports := requiredPorts(n)
	return &steps.Step{ID: steps.ID("preflight/ports", n.Name), Host: n.Name, Phase: "preflight", Deps: []string{connect},
		Inputs: ports,
		Check: func(ctx context.Context, h steps.Host) (steps.Change, error) {
			out, err := h.Run(ctx, "ss -Hltnp")
			if err != nil {
				return steps.NoChange, err
			}
			var busy []string
			for _, line := range strings.Split(string(out), "\n") {
				fields := strings.Fields(line)
				if len(fields) < 4 {
					continue
				}
				local := fields[3]
				p, err := strconv.Atoi(local[strings.LastIndex(local, ":")+1:])
				if err != nil {
					continue
				}
				owner, needed := ports[p]
				if !needed {
					continue
				}
				proc := ""
				if m := reSSUsers.FindStringSubmatch(line); m != nil {
					proc = m[1]
				}
				if !strings.HasPrefix(proc, owner) {
					busy = append(busy, fmt.Sprintf("%d (held by %s)", p, orUnknown(proc)))
				}
			}
			sort.Strings(busy)
			if len(busy) > 0 {
				return steps.NoChange, fmt.Errorf("ports needed by the cluster are in use: %s", strings.Join(busy, ", "))
			}
			return steps.NoChange, nil
		}}
}

func orUnknown(s string) string {
	if s == "" {
		return "an unknown process"
	}
	return s
}

func intVar(vars map[string]any, key string, def int) int {
	switch v := vars[key].(type) {
	case int64:
		return int(v)
	case string:
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
			return n
		}
	}
	return def
}
