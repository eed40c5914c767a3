package steps

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestInitArtifactsWritesGitignoreOnce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "inv", "artifacts")
	if err := InitArtifacts(dir); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("artifacts directory: %v, %v; want 0700", fi, err)
	}
	path := filepath.Join(dir, ".gitignore")
	data, err := os.ReadFile(path)
	if err != nil || string(data) != ArtifactsGitignore {
		t.Fatalf(".gitignore: %q, %v", data, err)
	}
	// The operator's own is never rewritten, an empty one included.
	for _, mine := range []string{"*\n", ""} {
		os.WriteFile(path, []byte(mine), 0o644)
		if err := InitArtifacts(dir); err != nil {
			t.Fatal(err)
		}
		if data, _ := os.ReadFile(path); string(data) != mine {
			t.Errorf("InitArtifacts rewrote the operator's .gitignore %q as %q", mine, data)
		}
	}
	// A file in the way is named.
	blocked := filepath.Join(t.TempDir(), "artifacts")
	os.WriteFile(blocked, nil, 0o644)
	if err := InitArtifacts(blocked); err == nil || !strings.Contains(err.Error(), blocked) {
		t.Errorf("artifacts path is a file: %v", err)
	}
}

// Judged by git itself: the keys, admin.conf, logs and diagnostics are
// ignored; the journal, certificates and PersistentVolume files are not.
func TestArtifactsGitignoreKeepsKeysOutOfGit(t *testing.T) {
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("no git")
	}
	repo := t.TempDir()
	if out, err := exec.Command(git, "-C", repo, "init", "-q").CombinedOutput(); err != nil {
		t.Fatalf("git init: %v %s", err, out)
	}
	art := filepath.Join(repo, "artifacts")
	if err := InitArtifacts(art); err != nil {
		t.Fatal(err)
	}
	ignored := []string{"pki/kubernetes/ca.key", "pki/kubernetes/front-proxy-ca.key", "pki/kubernetes/sa.key",
		"pki/etcd/ca.key", "pki/etcd/node1/server.key", "pki/etcd/node1/peer.key", "pki/etcd/healthcheck-client.key",
		"pki/etcd/apiserver-etcd-client.key", "admin.conf", "logs/20260101-000000.log", "diag/20260101-000000-node1.tar.gz"}
	kept := []string{"journal.json", "pki/kubernetes/ca.crt", "pki/kubernetes/sa.pub", "pki/etcd/ca.crt",
		"pki/etcd/node1/server.crt", "storage/node1.yaml", ".gitignore"}
	for _, f := range append(append([]string{}, ignored...), kept...) {
		if f == ".gitignore" {
			continue
		}
		os.MkdirAll(filepath.Dir(filepath.Join(art, f)), 0o700)
		os.WriteFile(filepath.Join(art, f), []byte("x"), 0o600)
	}
	check := func(f string) bool {
		return exec.Command(git, "-C", repo, "check-ignore", "-q", "artifacts/"+f).Run() == nil
	}
	for _, f := range ignored {
		if !check(f) {
			t.Errorf("git does not ignore artifacts/%s", f)
		}
	}
	for _, f := range kept {
		if check(f) {
			t.Errorf("git ignores artifacts/%s", f)
		}
	}
}
