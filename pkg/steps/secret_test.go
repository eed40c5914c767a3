package steps

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metalk8s/metalk8s/pkg/ssh"
)

// The run log and a failed command's error never hold the keys read.
func TestKeysStayOutOfTheRunLog(t *testing.T) {
	secret := "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n"
	logDir := t.TempDir()
	log, err := OpenRunLog(logDir, "run", nil)
	if err != nil {
		t.Fatal(err)
	}
	res := &ssh.Result{Host: "node1", Cmd: "cat", ExitCode: 1, Stdout: []byte(secret)}
	logged, cerr := withoutStdout(res, &ssh.CommandError{Result: *res})
	log.Command("node1", "cat", logged, cerr, time.Millisecond)
	logged, _ = withoutStdout(&ssh.Result{Host: "node1", Cmd: "cat", Stdout: []byte(secret)}, nil)
	log.Command("node1", "cat", logged, nil, time.Millisecond)
	log.Close()
	data, err := os.ReadFile(filepath.Join(logDir, "run.log"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "MIGHAgEA") || !strings.Contains(string(data), "not logged") {
		t.Fatalf("run log:\n%s", data)
	}
	if strings.Contains(cerr.Error(), "MIGHAgEA") {
		t.Fatalf("error holds the key: %v", cerr)
	}
	// The same error, unclean, would have quoted it: the test can fail.
	if raw := (&ssh.CommandError{Result: *res}).Error(); !strings.Contains(raw, "MIGHAgEA") {
		t.Fatalf("ssh.CommandError no longer quotes stdout: %s", raw)
	}
}
