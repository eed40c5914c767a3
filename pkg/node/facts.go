// Package node holds the steps that act on each node by itself: the
// preflight checks and, later, its preparation.
package node

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/metalk8s/metalk8s/pkg/steps"
)

// Facts are what preflight learns about a host.
type Facts struct {
	Hostname  string
	OSID      string // "debian", "rocky"…
	OSLike    string // ID_LIKE
	OSVersion string // VERSION_ID
	OSName    string // PRETTY_NAME
	Kernel    string
	CPUs      int
	MemoryMB  int
	EpochNano int64         // the host's clock when read; after preflight, its skew from ours
	RTT       time.Duration // how long the facts command took
}

// Family is the package family: "debian" or "el".
func (f *Facts) Family() string {
	ids := " " + f.OSID + " " + f.OSLike + " "
	switch {
	case strings.Contains(ids, " debian ") || strings.Contains(ids, " ubuntu "):
		return "debian"
	case strings.Contains(ids, " rhel ") || strings.Contains(ids, " centos ") || strings.Contains(ids, " fedora ") ||
		f.OSID == "rocky" || f.OSID == "almalinux":
		return "el"
	}
	return ""
}

// Supported refuses the releases metalk8s does not know, naming the OS
// found: the EL family 7 to 9, Debian 11 and 12, Ubuntu 20.04 to 24.04.
func (f *Facts) Supported() error {
	major, _, _ := strings.Cut(f.OSVersion, ".")
	name := f.OSName
	if name == "" {
		name = f.OSID + " " + f.OSVersion
	}
	ok := false
	switch f.Family() {
	case "el":
		ok = major == "7" || major == "8" || major == "9"
	case "debian":
		switch f.OSID {
		case "ubuntu":
			ok = f.OSVersion == "20.04" || f.OSVersion == "22.04" || f.OSVersion == "24.04"
		default:
			ok = major == "11" || major == "12"
		}
	default:
		return fmt.Errorf("unsupported OS %q (ID=%s): metalk8s supports Debian, Ubuntu and the EL family (CentOS, RHEL, Rocky, Alma)", name, f.OSID)
	}
	if !ok {
		return fmt.Errorf("unsupported release %q (ID=%s VERSION_ID=%s): metalk8s supports EL 7-9, Debian 11-12, Ubuntu 20.04-24.04", name, f.OSID, f.OSVersion)
	}
	return nil
}

// PackageManager is the tool that installs packages: apt, yum (EL 7) or dnf.
func (f *Facts) PackageManager() string {
	if f.Family() == "debian" {
		return "apt"
	}
	if strings.HasPrefix(f.OSVersion, "7") {
		return "yum"
	}
	return "dnf"
}

// FactStore shares facts between the steps of a run.
type FactStore struct {
	mu    sync.Mutex
	facts map[string]*Facts
}

// NewFactStore makes an empty store.
func NewFactStore() *FactStore { return &FactStore{facts: map[string]*Facts{}} }

// Get returns the facts of a host, or nil before they were read.
func (s *FactStore) Get(host string) *Facts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.facts[host]
}

// Need returns the facts of a host, or an error when this run has not
// read them: the preflight phase, which does, was left out (--only or
// --skip), so a step that needs them cannot run.
func (s *FactStore) Need(host string) (*Facts, error) {
	if f := s.Get(host); f != nil {
		return f, nil
	}
	return nil, fmt.Errorf("host %s: its facts (OS, release) were not read in this run: the preflight phase, which reads them, must run too (add it to --only, or leave it out of --skip)", host)
}

func (s *FactStore) set(host string, f *Facts) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.facts[host] = f
}

// factsScript prints what Facts needs in one round trip.
const factsScript = `echo "hostname=$(hostname)"; echo "kernel=$(uname -r)"; echo "cpus=$(nproc)"; ` +
	`awk '/^MemTotal:/ {print "memkb=" $2}' /proc/meminfo; echo "now=$(date +%s%N)"; ` +
	`sed -e 's/^/os_/' /etc/os-release 2>/dev/null`

// ReadFacts runs the facts script on h.
func ReadFacts(ctx context.Context, h steps.Host) (*Facts, error) {
	out, err := h.Run(ctx, factsScript)
	if err != nil {
		return nil, err
	}
	return parseFacts(string(out))
}

func parseFacts(out string) (*Facts, error) {
	f := &Facts{}
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		v = strings.Trim(strings.TrimSpace(v), `"'`)
		switch k {
		case "hostname":
			f.Hostname = v
		case "kernel":
			f.Kernel = v
		case "cpus":
			f.CPUs, _ = strconv.Atoi(v)
		case "memkb":
			kb, _ := strconv.Atoi(v)
			f.MemoryMB = kb / 1024
		case "now":
			f.EpochNano, _ = strconv.ParseInt(v, 10, 64)
		case "os_ID":
			f.OSID = v
		case "os_ID_LIKE":
			f.OSLike = v
		case "os_VERSION_ID":
			f.OSVersion = v
		case "os_PRETTY_NAME":
			f.OSName = v
		}
	}
	if f.Hostname == "" || f.CPUs == 0 {
		return nil, fmt.Errorf("could not read host facts from: %q", out)
	}
	return f, nil
}
