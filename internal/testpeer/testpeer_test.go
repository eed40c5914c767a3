package testpeer

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestChild is run by TestMissingFailsUnderCI in a child process: it asks
// for a program that does not exist.
func TestChild(t *testing.T) {
	if os.Getenv("TESTPEER_CHILD") == "" {
		return
	}
	if os.Getenv("TESTPEER_CHILD") == "short" {
		OptOut(t, "child", true)
	}
	Binary(t, "metalk8s-no-such-peer", "no-such-package")
	t.Log("found")
}

func TestMissingFailsUnderCI(t *testing.T) {
	for _, c := range []struct {
		child, ci string
		fail      bool
		want      string
	}{
		{"1", "true", true, "metalk8s-no-such-peer is missing (install: apt-get install no-such-package); under CI"},
		{"1", "", false, "--- SKIP: TestChild"},
		{"1", "false", false, "--- SKIP: TestChild"},
		{"short", "true", false, "child: skipped, METALK8S_E2E=0"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestChild$", "-test.v")
		cmd.Env = append(os.Environ(), "TESTPEER_CHILD="+c.child, "CI="+c.ci, "METALK8S_E2E=0")
		out, err := cmd.CombinedOutput()
		if (err != nil) != c.fail || !strings.Contains(string(out), c.want) {
			t.Errorf("CI=%q child %s: err %v, want fail=%v and %q\n%s", c.ci, c.child, err, c.fail, c.want, out)
		}
	}
}
