// Package testpeer decides what a test does when the real program it
// compares metalk8s with (its peer: ansible, openssl, python3-yaml, root
// for the sshd fleet and the VM lab) is missing. Outside CI the test is
// skipped with the Debian package to install; under CI (CI=true) it fails,
// so that a broken `make deps` can never turn a comparison into a silent
// pass. The explicit opt-outs (-short, METALK8S_E2E=0) skip everywhere.
package testpeer

import (
	"os"
	"os/exec"
	"strconv"
	"testing"
)

// CI reports whether the tests run under CI: CI set to a true value
// ("true", "1"), as CI services set it.
func CI() bool {
	v, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && v
}

// Missing stops t because its peer is missing: what is missing, and the
// Debian package (or step) that provides it. It fails under CI and skips
// elsewhere.
func Missing(t testing.TB, what, install string) {
	t.Helper()
	msg := what + " is missing (install: " + install + ")"
	if CI() {
		t.Fatal(msg + "; under CI a missing peer fails the test (make deps)")
	}
	t.Skip(msg)
}

// Binary returns the path of the program name, or stops t through Missing,
// naming the Debian package deb that provides it.
func Binary(t testing.TB, name, deb string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name, "apt-get install "+deb)
	}
	return p
}

// Python3YAML stops t through Missing unless /usr/bin/python3 (the Python
// Ansible runs on) can import yaml.
func Python3YAML(t testing.TB) {
	t.Helper()
	if exec.Command("/usr/bin/python3", "-c", "import yaml").Run() != nil {
		Missing(t, "python3-yaml (/usr/bin/python3 -c 'import yaml')", "apt-get install python3-yaml")
	}
}

// Root stops t through Missing unless the test runs as root; what says
// what needs it (the sshd fleet's network namespaces, the VM lab).
func Root(t testing.TB, what string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "root ("+what+")", "run the tests as root: sudo make test")
	}
}

// OptOut skips t, even under CI, when the run asked to leave such tests
// out: -short, or METALK8S_E2E=0 for the end-to-end ones (e2e true).
func OptOut(t testing.TB, why string, e2e bool) {
	t.Helper()
	if testing.Short() {
		t.Skip(why + ": skipped under -short")
	}
	if e2e && os.Getenv("METALK8S_E2E") == "0" {
		t.Skip(why + ": skipped, METALK8S_E2E=0")
	}
}
