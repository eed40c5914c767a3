// Package testinv writes small inventories for tests and loads them as
// metalk8s reads real ones.
package testinv

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/metalk8s/metalk8s/pkg/inventory"
)

// Cluster writes hosts.ini (ini) and files (relative path -> content,
// e.g. "group_vars/all.yml") in a new temporary directory and returns the
// cluster inventory.NewCluster makes of it; any error fails the test.
func Cluster(t testing.TB, ini string, files map[string]string) *inventory.Cluster {
	t.Helper()
	dir := t.TempDir()
	all := map[string]string{"hosts.ini": ini}
	for name, data := range files {
		all[name] = data
	}
	for name, data := range all {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return Load(t, filepath.Join(dir, "hosts.ini"))
}

// Load reads the inventory at path (an INI hosts file, with its
// group_vars and host_vars) into a cluster; any error fails the test.
func Load(t testing.TB, path string) *inventory.Cluster {
	t.Helper()
	inv, err := inventory.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := inventory.NewCluster(inv)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}
