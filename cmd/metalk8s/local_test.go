package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A local host (ansible_connection=local) runs exec's command on this
// machine: no SSH, no key, no known host.
func TestExecLocal(t *testing.T) {
	home := isolate(t)
	inv := filepath.Join(home, "hosts.ini")
	os.WriteFile(inv, []byte("single ansible_connection=local ansible_host=192.0.2.1\n"), 0o600)
	code, out, errOut := metalk8s(t, "exec", "-i", inv, "--connect-timeout", "2", "--", "hostname; echo $HOME")
	host, _ := os.Hostname()
	if code != 0 || out != "== single: ok\n"+host+"\n"+home+"\n" {
		t.Errorf("exit %d:\n%s%s", code, out, errOut)
	}
	code, out, _ = metalk8s(t, "exec", "-i", inv, "--", "exit 4")
	if code != 1 || !strings.Contains(out, "FAILED rc=4") {
		t.Errorf("exit 4: %d\n%s", code, out)
	}
}

// --limit takes Ansible host patterns (inventory.Limit, judged by ansible
// in pkg/inventory): the hosts kept run the command, the others do not,
// and a pattern that matches nothing is refused before anything runs.
func TestExecLimitPatterns(t *testing.T) {
	home := isolate(t)
	inv := filepath.Join(home, "hosts.ini")
	os.WriteFile(inv, []byte("[g]\nn1 ansible_connection=local\nn2 ansible_connection=local\nm3 ansible_connection=local\n[h]\nn2\n[kube_node]\nm3\n"), 0o600)
	limits := filepath.Join(home, "limits")
	os.WriteFile(limits, []byte("g\n!h\n"), 0o600)
	for limit, want := range map[string]string{
		"g:!h":               "== m3: ok\n== n1: ok\n",
		"g:&h":               "== n2: ok\n",
		"n*,~m":              "== m3: ok\n== n1: ok\n== n2: ok\n",
		"g[-1]":              "== m3: ok\n",
		"g[1:]:!m3":          "== n2: ok\n",
		"@" + limits + ":n1": "== m3: ok\n== n1: ok\n",
		"kube-node:h":        "== m3: ok\n== n2: ok\n", // the old name of kube_node
	} {
		code, out, errOut := metalk8s(t, "exec", "-i", inv, "--limit", limit, "--", "true")
		if code != 0 || out != want {
			t.Errorf("--limit %s: exit %d\n%s%s", limit, code, out, errOut)
		}
	}
	code, out, errOut := metalk8s(t, "exec", "-i", inv, "--limit", "g:nothere", "--", "touch "+filepath.Join(home, "ran"))
	if _, err := os.Stat(filepath.Join(home, "ran")); code != 2 || err == nil || !strings.Contains(errOut, `"nothere" matches no group or host`) {
		t.Errorf("--limit g:nothere: exit %d, ran: %v\n%s%s", code, err == nil, out, errOut)
	}
}

// Every form exec's help shows: the inventory as -i or as the first
// argument, "--" before a command with flags, none before one without.
func TestExecForms(t *testing.T) {
	home := isolate(t)
	inv := filepath.Join(home, "hosts.ini")
	os.WriteFile(inv, []byte("single ansible_connection=local\n"), 0o600)
	for _, args := range [][]string{
		{"exec", inv, "--", "echo", "-n", "a", "-l", "b"},
		{"exec", "-i", inv, "--", "echo", "-n", "a", "-l", "b"},
		{"exec", inv, "--limit", "single", "--", "echo -n a -l b"},
		{"exec", "-v", inv, "--", "echo", "-n", "a", "-l", "b"},
		{"-v", "exec", "-i", inv, "--", "echo", "-n", "a", "-l", "b"},
	} {
		if code, out, errOut := metalk8s(t, args...); code != 0 || out != "== single: ok\na -l b\n" {
			t.Errorf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	if code, out, errOut := metalk8s(t, "exec", inv, "uname"); code != 0 || !strings.HasPrefix(out, "== single: ok\nLinux") {
		t.Errorf("exec hosts.ini uname: exit %d\n%s%s", code, out, errOut)
	}
}
