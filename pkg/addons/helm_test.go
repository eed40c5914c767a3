package addons

import (
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/metalk8s/metalk8s/pkg/ssh"
	"github.com/metalk8s/metalk8s/pkg/steps"
)

// The Helm SDK's records reach the step host's run log, one line each,
// debug ones included, the run's secrets masked; a host without a run log
// gets none.
func TestLogHandler(t *testing.T) {
	dir := t.TempDir()
	rl, err := steps.OpenRunLog(dir, "run", []string{"s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	h := &steps.SSHHost{Client: &ssh.Client{Name: "cp1"}, Log: rl}
	log := slog.New(logHandler(h))
	log.Debug("creating 9 resource(s)")
	log.Info("waiting for resources", "token", "s3cret")
	if err := rl.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(rl.Path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], " cp1 helm: ") || !strings.Contains(lines[0], `msg="creating 9 resource(s)"`) ||
		strings.Contains(string(data), "s3cret") {
		t.Errorf("run log:\n%s", data)
	}
	if logHandler(nil) != nil || logHandler(&steps.SSHHost{Client: &ssh.Client{Name: "x"}}) != nil {
		t.Error("a handler for a host without a run log")
	}
}
