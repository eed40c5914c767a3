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
