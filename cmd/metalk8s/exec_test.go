package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/metalk8s/metalk8s/test/fleet"

	"github.com/metalk8s/metalk8s/internal/testpeer"
)

// These tests drive `metalk8s exec` against real OpenSSH servers (the
// fleet), one variant of the transport at a time.

// TestExecFleet starts one fleet for all its subtests.
// Every plan and up of these tests runs on the sshd fleet (this machine).
func init() { keepSteps = fleet.SafeStep }

func TestExecFleet(t *testing.T) {
	testpeer.OptOut(t, "fleet tests", false)
	f := fleet.Start(t, 3)
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, *fleet.Fleet)
	}{
		{"plain", testExecPlainHosts},
		{"hashed-known-hosts", testExecHashedKnownHosts},
		{"failed-command", testExecFailedCommand},
		{"bastion", testExecBastion},
		{"host-keys", testExecHostKeys},
		{"become-password", testExecBecomePassword},
		{"agent-and-keys", testExecAgentAndKeys},
		{"plan-and-up", testPlanAndUp},
		{"add-node", testAddNode},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, f) })
	}
}

// metalk8s runs the CLI in-process with a clean environment and returns its
// exit code and output.
func metalk8s(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(append([]string{"metalk8s"}, args...), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// isolate gives the test an empty HOME (no default keys, no known_hosts)
// and no agent, unless it sets them.
func isolate(t *testing.T) string {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("SSH_AUTH_SOCK", "")
	return home
}

// writeInventory writes an inventory for the fleet with the given host lines.
func writeInventory(t *testing.T, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hosts.ini")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func hostLine(f *fleet.Fleet, name, extra string) string {
	h := f.Host(name)
	return fmt.Sprintf("%s ansible_host=%s ansible_port=%d %s", name, h.Addr, h.Port, extra)
}

func testExecPlainHosts(t *testing.T, f *fleet.Fleet) {
	isolate(t)
	code, out, errOut := metalk8s(t, "exec", "-i", f.Inventory, "--known-hosts", f.KnownHosts, "--limit", "fleet,port", "--", "hostname")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, h := range append(f.Plain(), f.Host("port")) {
		if !strings.Contains(out, fmt.Sprintf("== %s: ok\n%s\n", h.Name, h.Name)) {
			t.Errorf("no answer from %s in:\n%s", h.Name, out)
		}
	}
}

func testExecHashedKnownHosts(t *testing.T, f *fleet.Fleet) {
	isolate(t)
	code, out, errOut := metalk8s(t, "exec", "-i", f.Inventory, "--known-hosts", f.KnownHostsHashed, "--limit", "node-001,port", "--", "true")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
}

func testExecFailedCommand(t *testing.T, f *fleet.Fleet) {
	isolate(t)
	code, out, errOut := metalk8s(t, "exec", "-i", f.Inventory, "--known-hosts", f.KnownHosts, "--limit", "fleet",
		"--", `if [ "$(hostname)" = node-002 ]; then echo boom >&2; exit 3; fi; echo fine`)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "== node-002: FAILED rc=3\n-- stderr:\nboom") || !strings.Contains(out, "== node-001: ok\nfine") {
		t.Errorf("output:\n%s", out)
	}
	if !strings.Contains(errOut, "1 of 3 hosts failed") {
		t.Errorf("stderr: %s", errOut)
	}
}

func testExecBastion(t *testing.T, f *fleet.Fleet) {
	isolate(t)
	// From the inventory's ProxyJump.
	code, out, errOut := metalk8s(t, "exec", "-i", f.Inventory, "--known-hosts", f.KnownHosts, "--limit", "hidden", "--", "hostname")
	if code != 0 || !strings.Contains(out, "== hidden: ok\nhidden\n") {
		t.Fatalf("through the inventory's ProxyJump: exit %d\n%s%s", code, out, errOut)
	}
	// Without a jump, hidden cannot be reached; --bastion fixes that.
	inv := writeInventory(t, hostLine(f, "hidden", "ansible_user=root ansible_ssh_private_key_file="+f.Key))
	code, out, _ = metalk8s(t, "exec", "-i", inv, "--known-hosts", f.KnownHosts, "--connect-timeout", "3s", "--", "hostname")
	if code != 1 || !strings.Contains(out, "host hidden (") {
		t.Fatalf("hidden reached without a bastion? exit %d\n%s", code, out)
	}
	code, out, errOut = metalk8s(t, "exec", "-i", inv, "--known-hosts", f.KnownHosts, "--bastion", "root@"+f.Host("bastion").Addr, "--", "hostname")
	if code != 0 || !strings.Contains(out, "hidden\n") {
		t.Fatalf("--bastion: exit %d\n%s%s", code, out, errOut)
	}
	// The bastion's own key is verified too.
	code, out, _ = metalk8s(t, "exec", "-i", inv, "--known-hosts", onlyHost(t, f, "hidden"), "--bastion", "root@"+f.Host("bastion").Addr, "--", "hostname")
	if code != 1 || !strings.Contains(out, "through bastion") || !strings.Contains(out, "unknown host key") {
		t.Fatalf("unknown bastion key accepted? exit %d\n%s", code, out)
	}
}

// onlyHost writes a known_hosts with the line of one host only.
func onlyHost(t *testing.T, f *fleet.Fleet, name string) string {
	t.Helper()
	data, err := os.ReadFile(f.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	addr := f.Host(name).Addr
	var keep []string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, addr+" ") || strings.HasPrefix(l, "["+addr+"]") {
			keep = append(keep, l)
		}
	}
	p := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(p, []byte(strings.Join(keep, "\n")+"\n"), 0o600)
	return p
}

func testExecHostKeys(t *testing.T, f *fleet.Fleet) {
	isolate(t)
	// A changed key is refused, even when trusting new hosts.
	for _, extra := range [][]string{nil, {"--trust-new-hosts"}} {
		args := append([]string{"exec", "-i", f.Inventory, "--known-hosts", f.KnownHosts, "--limit", "rekeyed"}, extra...)
		code, out, _ := metalk8s(t, append(args, "--", "true")...)
		if code != 1 || !strings.Contains(out, "HOST KEY CHANGED") || !strings.Contains(out, "SHA256:") {
			t.Fatalf("rekeyed %v: exit %d\n%s", extra, code, out)
		}
	}
	// An unknown host is refused with its fingerprint and the way out.
	kh := filepath.Join(t.TempDir(), "known_hosts")
	code, out, _ := metalk8s(t, "exec", "-i", f.Inventory, "--known-hosts", kh, "--limit", "node-001", "--", "true")
	if code != 1 || !strings.Contains(out, "host node-001") || !strings.Contains(out, "unknown host key SHA256:") || !strings.Contains(out, "--trust-new-hosts") {
		t.Fatalf("unknown host: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(kh); err == nil {
		t.Errorf("refusing an unknown host wrote %s", kh)
	}
	// --trust-new-hosts records it; later runs verify against the record.
	code, out, errOut := metalk8s(t, "exec", "-i", f.Inventory, "--known-hosts", kh, "--trust-new-hosts", "--limit", "fleet", "--", "true")
	if code != 0 {
		t.Fatalf("trust-new-hosts: exit %d\n%s%s", code, out, errOut)
	}
	data, _ := os.ReadFile(kh)
	if n := strings.Count(string(data), "ssh-ed25519"); n != 3 {
		t.Errorf("recorded %d keys, want 3:\n%s", n, data)
	}
	if st, _ := os.Stat(kh); st.Mode().Perm() != 0o600 {
		t.Errorf("known_hosts mode %v", st.Mode().Perm())
	}
	code, out, _ = metalk8s(t, "exec", "-i", f.Inventory, "--known-hosts", kh, "--limit", "fleet", "--", "true")
	if code != 0 {
		t.Fatalf("after recording: exit %d\n%s", code, out)
	}
}

func testExecBecomePassword(t *testing.T, f *fleet.Fleet) {
	isolate(t)
	user := "ansible_user=" + fleet.SudoUser + " ansible_ssh_private_key_file=" + f.Key + " ansible_become=true"
	pw := f.SudoPassword
	good := writeInventory(t, hostLine(f, "sudopw", user+" ansible_become_password="+pw))
	// The password must not show in the host's process list while sudo runs.
	code, out, errOut := metalk8s(t, "exec", "-i", good, "--known-hosts", f.KnownHosts, "--", "id -un; ps -eo args")
	if code != 0 || !strings.Contains(out, "== sudopw: ok\nroot\n") {
		t.Fatalf("become with password: exit %d\n%s%s", code, out, errOut)
	}
	if strings.Contains(out+errOut, pw) {
		t.Errorf("the become password shows in the output:\n%s%s", out, errOut)
	}
	// Input to the command never reaches sudo, and the password never
	// reaches the command.
	code, out, _ = metalk8s(t, "exec", "-i", good, "--known-hosts", f.KnownHosts, "--", "cat; echo end")
	if code != 0 || strings.Contains(out, pw) || !strings.Contains(out, "end") {
		t.Errorf("stdin after sudo: exit %d\n%s", code, out)
	}
	// No password: a clear refusal, no hang.
	none := writeInventory(t, hostLine(f, "sudopw", user))
	code, out, _ = metalk8s(t, "exec", "-i", none, "--known-hosts", f.KnownHosts, "--timeout", "20s", "--", "id -un")
	if code != 1 || !strings.Contains(out, "sudo asks for a password") {
		t.Errorf("no password: exit %d\n%s", code, out)
	}
	// A wrong one: refused, and not echoed anywhere.
	bad := writeInventory(t, hostLine(f, "sudopw", user+" ansible_become_password=not-the-password"))
	code, out, errOut = metalk8s(t, "exec", "-i", bad, "--known-hosts", f.KnownHosts, "--timeout", "30s", "--", "id -un")
	if code != 1 || !strings.Contains(out, "rejected") || strings.Contains(out+errOut, "not-the-password") {
		t.Errorf("wrong password: exit %d\n%s%s", code, out, errOut)
	}
	// --ask-become-pass answers for hosts that give none.
	askTTY = func(string) ([]byte, error) { return []byte(pw), nil }
	defer func() { askTTY = readTTY }()
	code, out, _ = metalk8s(t, "exec", "-i", none, "--known-hosts", f.KnownHosts, "-K", "--", "id -un")
	if code != 0 || !strings.Contains(out, "root") {
		t.Errorf("--ask-become-pass: exit %d\n%s", code, out)
	}
}

func testExecAgentAndKeys(t *testing.T, f *fleet.Fleet) {
	isolate(t)
	noKey := writeInventory(t, hostLine(f, "node-001", "ansible_user=root"), hostLine(f, "node-002", "ansible_user=root"))
	// No agent, no key: a clear error.
	code, out, _ := metalk8s(t, "exec", "-i", noKey, "--known-hosts", f.KnownHosts, "--", "true")
	if code != 1 || !strings.Contains(out, "no SSH key") {
		t.Fatalf("no key: exit %d\n%s", code, out)
	}
	// The agent's key.
	t.Setenv("SSH_AUTH_SOCK", f.AgentSock)
	code, out, errOut := metalk8s(t, "exec", "-i", noKey, "--known-hosts", f.KnownHosts, "--", "hostname")
	if code != 0 {
		t.Fatalf("agent: exit %d\n%s%s", code, out, errOut)
	}
	t.Setenv("SSH_AUTH_SOCK", "")
	// A default key in ~/.ssh.
	home := os.Getenv("HOME")
	os.MkdirAll(filepath.Join(home, ".ssh"), 0o700)
	key, _ := os.ReadFile(f.Key)
	os.WriteFile(filepath.Join(home, ".ssh", "id_ed25519"), key, 0o600)
	code, out, errOut = metalk8s(t, "exec", "-i", noKey, "--known-hosts", f.KnownHosts, "--", "true")
	if code != 0 {
		t.Fatalf("default key: exit %d\n%s%s", code, out, errOut)
	}
	os.Remove(filepath.Join(home, ".ssh", "id_ed25519"))
	// An encrypted key: asked once for all hosts on a terminal...
	enc := writeInventory(t, hostLine(f, "node-001", "ansible_user=root ansible_ssh_private_key_file="+f.EncKey),
		hostLine(f, "node-002", "ansible_user=root ansible_ssh_private_key_file="+f.EncKey),
		hostLine(f, "node-003", "ansible_user=root ansible_ssh_private_key_file="+f.EncKey))
	pass, _ := os.ReadFile(f.EncKeyPass)
	var asked atomic.Int32
	askTTY = func(string) ([]byte, error) { asked.Add(1); return bytes.TrimSpace(pass), nil }
	defer func() { askTTY = readTTY }()
	code, out, errOut = metalk8s(t, "exec", "-i", enc, "--known-hosts", f.KnownHosts, "--", "true")
	if code != 0 || asked.Load() != 1 {
		t.Fatalf("encrypted key: exit %d, asked %d times\n%s%s", code, asked.Load(), out, errOut)
	}
	// ...and without one, a clear failure.
	askTTY = func(string) ([]byte, error) { return nil, fmt.Errorf("no terminal") }
	code, out, _ = metalk8s(t, "exec", "-i", enc, "--known-hosts", f.KnownHosts, "--", "true")
	if code != 1 || !strings.Contains(out, "encrypted") && !strings.Contains(out, "passphrase") {
		t.Fatalf("encrypted key without a terminal: exit %d\n%s", code, out)
	}
}

func TestExecUsage(t *testing.T) {
	code, _, errOut := metalk8s(t, "exec", "--", "true")
	if code != 2 || !strings.Contains(errOut, "no command after the inventory true: metalk8s exec hosts.ini -- COMMAND") {
		t.Errorf("no inventory: exit %d: %s", code, errOut)
	}
	inv := writeInventory(t, "a ansible_host=127.0.0.1")
	code, _, errOut = metalk8s(t, "exec", "-i", inv, "--limit", "nope", "--", "true")
	if code != 2 || !strings.Contains(errOut, `--limit: host pattern "nope" matches no group or host of `+inv) {
		t.Errorf("bad limit: exit %d: %s", code, errOut)
	}
}

// testPlanAndUp checks the exit codes and outputs of plan and up. Hosts are
// renamed (cli-NNN) so their state directories are this test's own.
func testPlanAndUp(t *testing.T, f *fleet.Fleet) {
	isolate(t)
	data, err := os.ReadFile(f.Inventory)
	if err != nil {
		t.Fatal(err)
	}
	inv := writeInventory(t, strings.ReplaceAll(string(data), "node-", "cli-"))
	clean := func() {
		for _, h := range []string{"cli-001", "cli-002", "cli-003"} {
			os.RemoveAll("/var/lib/metalk8s/" + h)
		}
	}
	clean() // a run killed before its deferred cleanup (a test timeout) left them
	defer clean()
	kh := "--known-hosts=" + f.KnownHosts
	code, out, errOut := metalk8s(t, "plan", inv, kh)
	if code != exitPending || !strings.Contains(out, "cli-002:\n  prepare/state-dir\n      + create /var/lib/metalk8s/cli-002") || !strings.Contains(out, "3 steps would change") {
		t.Fatalf("plan: exit %d, want 3\n%s%s", code, out, errOut)
	}
	// -v: each step's start, and the changes on the step's own line
	code, out, errOut = metalk8s(t, "-v", "plan", inv, kh)
	if code != exitPending || !regexp.MustCompile(`cli-002 +prepare/state-dir +started\n`).MatchString(out) ||
		!regexp.MustCompile(`cli-002 +prepare/state-dir +would change.*\n +\+ create /var/lib/metalk8s/cli-002 \(mode 0700\)\n`).MatchString(out) {
		t.Fatalf("plan -v: exit %d, want 3 with starts and changes\n%s%s", code, out, errOut)
	}
	code, out, _ = metalk8s(t, "plan", inv, kh, "--output", "json")
	var plan struct {
		Changes []struct{ Host, Step string }
	}
	if code != exitPending || json.Unmarshal([]byte(out), &plan) != nil || len(plan.Changes) != 3 {
		t.Fatalf("plan json: exit %d\n%s", code, out)
	}
	code, out, errOut = metalk8s(t, "up", inv, kh)
	if code != 0 || !strings.Contains(out, "up: 3 steps changed") || !strings.Contains(errOut, "log: ") {
		t.Fatalf("up: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = metalk8s(t, "up", inv, kh)
	if code != 0 || !strings.Contains(out, "up: 0 steps changed") {
		t.Fatalf("second up: exit %d\n%s", code, out)
	}
	code, out, _ = metalk8s(t, "plan", inv, kh)
	if code != 0 || !strings.Contains(out, "No changes") {
		t.Fatalf("plan after up: exit %d\n%s", code, out)
	}
	code, _, errOut = metalk8s(t, "up", inv, kh, "--only", "nonsense")
	if code != 2 || !strings.Contains(errOut, `unknown phase "nonsense"`) {
		t.Errorf("bad phase: exit %d %s", code, errOut)
	}
	code, _, errOut = metalk8s(t, "plan", inv, kh, "--only", "nonsense")
	if code != exitUsage {
		t.Errorf("plan with bad input must exit 2 (3 means changes): exit %d %s", code, errOut)
	}
}

// add-node on the fleet (its safe steps: preflight and the state
// directory): a host added to an inventory that up made gets its steps,
// the others only the read-only preflight checks; plan --add-node shows
// the same.
func testAddNode(t *testing.T, f *fleet.Fleet) {
	isolate(t)
	data, err := os.ReadFile(f.Inventory)
	if err != nil {
		t.Fatal(err)
	}
	full := strings.ReplaceAll(string(data), "node-", "add-")
	var before []string
	for _, l := range strings.Split(full, "\n") {
		if !strings.HasPrefix(l, "add-003 ") {
			before = append(before, l)
		}
	}
	inv := writeInventory(t, before...)
	clean := func() {
		for _, h := range []string{"add-001", "add-002", "add-003"} {
			os.RemoveAll("/var/lib/metalk8s/" + h)
		}
	}
	clean()
	defer clean()
	kh := "--known-hosts=" + f.KnownHosts
	if code, out, errOut := metalk8s(t, "up", inv, kh); code != 0 || !strings.Contains(out, "up: 2 steps changed") {
		t.Fatalf("up without add-003: exit %d\n%s%s", code, out, errOut)
	}
	if err := os.WriteFile(inv, []byte(full), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := metalk8s(t, "plan", inv, kh, "--add-node", "add-003")
	if code != exitPending || !strings.Contains(out, "add-003:\n  prepare/state-dir\n      + create /var/lib/metalk8s/add-003") ||
		!strings.Contains(out, "1 steps would change") {
		t.Fatalf("plan --add-node add-003: exit %d, want 3\n%s%s", code, out, errOut)
	}
	code, out, errOut = metalk8s(t, "add-node", inv, "add-003", kh)
	if code != 0 || !strings.Contains(out, "add-node: 1 steps changed") {
		t.Fatalf("add-node add-003: exit %d\n%s%s", code, out, errOut)
	}
	// what ran (the run log): add-003's steps, only preflight checks elsewhere
	m := regexp.MustCompile(`(?m)^log: (\S+)$`).FindStringSubmatch(errOut)
	if m == nil {
		t.Fatalf("no run log named in %s", errOut)
	}
	runLog, err := os.ReadFile(m[1])
	if err != nil {
		t.Fatal(err)
	}
	started := regexp.MustCompile(`(\S+) step (\S+): start`).FindAllStringSubmatch(string(runLog), -1)
	if len(started) == 0 {
		t.Fatalf("no step started in %s", m[1])
	}
	for _, st := range started {
		if st[1] != "add-003" && !strings.HasPrefix(st[2], "preflight/") {
			t.Errorf("add-node ran %s on %s", st[2], st[1])
		}
	}
	if code, out, _ := metalk8s(t, "plan", inv, kh); code != 0 || !strings.Contains(out, "No changes") {
		t.Errorf("plan after add-node: exit %d\n%s", code, out)
	}
	code, _, errOut = metalk8s(t, "add-node", inv, "add-009", kh)
	if code == 0 || !strings.Contains(errOut, "add-009 not in the inventory") || !strings.Contains(errOut, "add-003") {
		t.Errorf("add-node of a host not in the inventory: exit %d %s", code, errOut)
	}
	if code, _, errOut = metalk8s(t, "add-node", inv, kh); code != 2 || !strings.Contains(errOut, "name the hosts to add") {
		t.Errorf("add-node without hosts: exit %d %s", code, errOut)
	}
}
