// Package fleet starts a fleet of real OpenSSH servers for tests: each host
// is an sshd in its own network, UTS and pid namespace on this machine,
// created by fleet.sh (next to this file). It needs root.
//
//	f := fleet.Start(t, 3)          // 3 plain hosts + the variant hosts
//	h := f.Host("node-001")         // h.Addr, h.Port
//	// connect with f.Key, f.KnownHosts, or f.Inventory for the provisioner
//
// Concurrent fleets (go test runs packages in parallel) get distinct
// subnets and name prefixes: Start takes an exclusive flock on one of the
// slots 100..199 under /run/lock/mk8s-fleet; slot S uses subnet 10.S.0.0/16
// and prefix "mk8st<S>". The lock dies with the process, and leftovers of a
// crashed run are cleaned up by the next Start that gets the same slot.
package fleet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/metalk8s/metalk8s/internal/testpeer"
)

// Users known to every host (the fleet shares this machine's /etc/passwd).
const (
	NoPasswdUser = "mk8s"   // passwordless sudo
	SudoUser     = "mk8spw" // sudo needs SudoPassword
)

// Host is one sshd of the fleet.
type Host struct {
	Name  string // node-001..node-NNN, or port, bastion, hidden, rekeyed, sudopw
	Addr  string // IPv4 address
	Port  int    // 22, or 2222 for "port"
	NetNS string // network namespace (ip netns exec NetNS ...)
	Group string // "fleet" (plain hosts) or "variants"
}

// HostPort is "Addr:Port".
func (h Host) HostPort() string { return net.JoinHostPort(h.Addr, strconv.Itoa(h.Port)) }

// Fleet is a running fleet. All paths are absolute and under Dir.
type Fleet struct {
	Dir              string
	Inventory        string // Ansible INI inventory (hosts.ini)
	KnownHosts       string // correct entries, except a wrong key for "rekeyed"
	KnownHostsHashed string // same entries, hashed
	SSHConfig        string // for ssh -F: known_hosts, Key, strict checking, batch mode
	Key              string // unencrypted ed25519 client key, authorized for root, mk8s, mk8spw
	AgentKey         string // authorized key, loaded in the agent at AgentSock
	EncKey           string // authorized key, encrypted with the passphrase in EncKeyPass
	EncKeyPass       string // file holding EncKey's passphrase
	AgentSock        string // ssh-agent socket (SSH_AUTH_SOCK) holding AgentKey
	SudoPassword     string // password of SudoUser (the value itself)
	SudoPasswordFile string // file holding SudoPassword
	Prefix           string // netns/link name prefix
	Net              int    // subnet is 10.Net.0.0/16
	Hosts            []Host // variants first, then node-001..node-NNN

	tb     testing.TB
	lock   *os.File
	script string
	once   sync.Once
}

// Script returns the path of fleet.sh (FLEET_SCRIPT overrides).
func Script() (string, error) {
	if s := os.Getenv("FLEET_SCRIPT"); s != "" {
		return s, nil
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		s := filepath.Join(filepath.Dir(file), "fleet.sh")
		if _, err := os.Stat(s); err == nil {
			return s, nil
		}
	}
	// -trimpath builds: look for test/fleet/fleet.sh from the working directory up.
	dir, _ := os.Getwd()
	for dir != "" {
		s := filepath.Join(dir, "test", "fleet", "fleet.sh")
		if _, err := os.Stat(s); err == nil {
			return s, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", errors.New("fleet.sh not found (set FLEET_SCRIPT)")
}

// Start brings up n plain hosts plus the variants, and registers their
// teardown with tb.Cleanup. Without root it skips the test (fails it under CI: testpeer.Root), and fails it
// with the script's output when the fleet does not come up.
func Start(tb testing.TB, n int) *Fleet {
	tb.Helper()
	testpeer.Root(tb, "the sshd fleet: network namespaces, sshd")
	script, err := Script()
	if err != nil {
		tb.Fatal(err)
	}
	lock, slot, err := allocSlot()
	if err != nil {
		tb.Fatal(err)
	}
	// Short path: the agent socket must fit in a sockaddr_un (108 bytes).
	dir, err := os.MkdirTemp("/tmp", "mk8sfl")
	if err != nil {
		lock.Close()
		tb.Fatal(err)
	}
	f := &Fleet{
		Dir:              dir,
		Inventory:        filepath.Join(dir, "hosts.ini"),
		KnownHosts:       filepath.Join(dir, "known_hosts"),
		KnownHostsHashed: filepath.Join(dir, "known_hosts.hashed"),
		SSHConfig:        filepath.Join(dir, "ssh_config"),
		Key:              filepath.Join(dir, "id_ed25519"),
		AgentKey:         filepath.Join(dir, "agent_key"),
		EncKey:           filepath.Join(dir, "enc_key"),
		EncKeyPass:       filepath.Join(dir, "enc_key.pass"),
		AgentSock:        filepath.Join(dir, "agent.sock"),
		SudoPasswordFile: filepath.Join(dir, "sudo_password"),
		Prefix:           "mk8st" + strconv.Itoa(slot),
		Net:              slot,
		tb:               tb,
		lock:             lock,
		script:           script,
	}
	tb.Cleanup(f.Stop) // registered first: also cleans up after a failed up

	start := time.Now()
	out, err := f.run(10*time.Minute, "up", dir, strconv.Itoa(n))
	if err != nil {
		tb.Fatalf("fleet up %d hosts (prefix %s): %v\n%s", n, f.Prefix, err, out)
	}
	tb.Logf("fleet %s: %d hosts up in %v (dir %s)", f.Prefix, n, time.Since(start).Round(time.Millisecond), dir)
	if err := f.load(); err != nil {
		tb.Fatalf("fleet: %v", err)
	}
	return f
}

// Stop tears the fleet down (idempotent; also run by tb.Cleanup). Dir is
// removed unless the test failed, so that the sshd logs can be read.
func (f *Fleet) Stop() {
	f.once.Do(func() {
		defer f.lock.Close() // releases the slot
		start := time.Now()
		if out, err := f.run(2*time.Minute, "down", f.Dir); err != nil {
			f.tb.Errorf("fleet down (prefix %s): %v\n%s", f.Prefix, err, out)
			return
		}
		f.tb.Logf("fleet %s: down in %v", f.Prefix, time.Since(start).Round(time.Millisecond))
		if f.tb.Failed() {
			f.tb.Logf("fleet %s: keeping %s for inspection", f.Prefix, f.Dir)
			return
		}
		os.RemoveAll(f.Dir)
	})
}

// Host returns the host with that name; it fails the test if there is none.
func (f *Fleet) Host(name string) Host {
	f.tb.Helper()
	for _, h := range f.Hosts {
		if h.Name == name {
			return h
		}
	}
	f.tb.Fatalf("fleet has no host %q", name)
	return Host{}
}

// Plain returns the N plain hosts node-001..node-NNN.
func (f *Fleet) Plain() []Host {
	var hs []Host
	for _, h := range f.Hosts {
		if h.Group == "fleet" {
			hs = append(hs, h)
		}
	}
	return hs
}

// SSHArgs returns OpenSSH client arguments reaching h as user with f's key
// and known_hosts: ssh SSHArgs(h, "root")... command.
func (f *Fleet) SSHArgs(h Host, user string) []string {
	args := []string{"-F", f.SSHConfig, "-p", strconv.Itoa(h.Port)}
	if h.Name == "hidden" {
		args = append(args, "-J", "root@"+f.Host("bastion").Addr)
	}
	return append(args, user+"@"+h.Addr)
}

func (f *Fleet) run(timeout time.Duration, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{f.script}, args...)...)
	cmd.Env = append(os.Environ(), "FLEET_PREFIX="+f.Prefix, "FLEET_NET="+strconv.Itoa(f.Net))
	return cmd.CombinedOutput()
}

// load reads hosts.tsv (name addr port netns group) and the sudo password.
func (f *Fleet) load() error {
	pw, err := os.ReadFile(f.SudoPasswordFile)
	if err != nil {
		return err
	}
	f.SudoPassword = strings.TrimSpace(string(pw))
	fh, err := os.Open(filepath.Join(f.Dir, "hosts.tsv"))
	if err != nil {
		return err
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		fs := strings.Split(sc.Text(), "\t")
		if len(fs) != 5 {
			return fmt.Errorf("hosts.tsv: bad line %q", sc.Text())
		}
		port, err := strconv.Atoi(fs[2])
		if err != nil {
			return fmt.Errorf("hosts.tsv: bad port in %q", sc.Text())
		}
		f.Hosts = append(f.Hosts, Host{Name: fs[0], Addr: fs[1], Port: port, NetNS: fs[3], Group: fs[4]})
	}
	return sc.Err()
}

// allocSlot locks a free slot in 100..199 whose subnet 10.S.0.0/16 is not
// used by any interface here (except leftovers of our own prefix for S).
func allocSlot() (*os.File, int, error) {
	const dir = "/run/lock/mk8s-fleet"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, 0, err
	}
	off := rand.Intn(100)
	for i := 0; i < 100; i++ {
		slot := 100 + (off+i)%100
		fh, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("slot-%d.lock", slot)), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			return nil, 0, err
		}
		if err := syscall.Flock(int(fh.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			fh.Close()
			continue // another fleet holds it
		}
		if subnetBusy(slot, "mk8st"+strconv.Itoa(slot)) {
			fh.Close()
			continue
		}
		return fh, slot, nil
	}
	return nil, 0, errors.New("fleet: no free slot in 100..199 under /run/lock/mk8s-fleet")
}

func subnetBusy(slot int, prefix string) bool {
	_, subnet, _ := net.ParseCIDR(fmt.Sprintf("10.%d.0.0/16", slot))
	ifs, err := net.Interfaces()
	if err != nil {
		return true
	}
	for _, ifc := range ifs {
		if strings.HasPrefix(ifc.Name, prefix) {
			continue // our own leftover: fleet.sh up cleans it
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && subnet.Contains(ipn.IP) {
				return true
			}
		}
	}
	return false
}

// SafeStep keeps the steps that may run on fleet hosts: the preflight
// checks and metalk8s's own state directory. The fleet's hosts share this
// machine's kernel, packages and /etc, so nothing that prepares a node
// (modules, sysctls, swap, packages, storage) may run on them; the VM lab
// covers those.
func SafeStep(id string) bool {
	return strings.HasPrefix(id, "preflight/") || strings.HasPrefix(id, "prepare/state-dir@")
}
