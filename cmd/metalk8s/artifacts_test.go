package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/metalk8s/metalk8s/pkg/steps"
)

// A first run, even a plan that reaches no host, leaves
// artifacts/.gitignore keeping the keys out of the inventory's Git; a
// later run keeps the operator's own.
func TestFirstRunWritesArtifactsGitignore(t *testing.T) {
	isolate(t)
	inv := writeInventory(t, "[kube-master]", "node1 ansible_host=127.0.0.1 ansible_port=1",
		"[etcd:children]", "kube-master", "[kube-node:children]", "kube-master")
	path := filepath.Join(filepath.Dir(inv), "artifacts", ".gitignore")
	metalk8s(t, "plan", inv, "--only", "preflight")
	if data, err := os.ReadFile(path); err != nil || string(data) != steps.ArtifactsGitignore {
		t.Fatalf("after the first plan, %s: %q, %v", path, data, err)
	}
	os.WriteFile(path, []byte("*\n"), 0o644)
	metalk8s(t, "plan", inv, "--only", "preflight")
	if data, _ := os.ReadFile(path); string(data) != "*\n" {
		t.Errorf("a later plan rewrote the operator's %s: %q", path, data)
	}
}
