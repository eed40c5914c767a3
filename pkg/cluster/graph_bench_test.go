package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metalk8s/metalk8s/pkg/inventory"
)

// BenchmarkGraph1000 reads a 1000-host inventory and builds its graph:
// the work plan and up do before the first SSH connection.
//
//	go test ./pkg/cluster -run '^$' -bench Graph1000 -benchmem
func BenchmarkGraph1000(b *testing.B) {
	dir := b.TempDir()
	var ini strings.Builder
	ini.WriteString("[kube-master]\nnode[0001:0003]\n[etcd]\nnode[0001:0003]\n[kube-node]\n")
	for i := 1; i <= 1000; i++ {
		fmt.Fprintf(&ini, "node%04d ansible_host=10.1.%d.%d ip=10.1.%d.%d\n", i, i/250, i%250+1, i/250, i%250+1)
	}
	ini.WriteString("[k8s-cluster:children]\nkube-master\nkube-node\n[all:vars]\nansible_user=root\n")
	p := filepath.Join(dir, "hosts.ini")
	os.WriteFile(p, []byte(ini.String()), 0o600)
	os.MkdirAll(filepath.Join(dir, "group_vars"), 0o755)
	os.WriteFile(filepath.Join(dir, "group_vars", "kube-node.yml"), []byte("metalk8s_lvm_drives_vg_metalk8s: ['/dev/vdb']\n"), 0o600)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		inv, err := inventory.Load(p)
		if err != nil {
			b.Fatal(err)
		}
		cl, err := inventory.NewCluster(inv)
		if err != nil {
			b.Fatal(err)
		}
		g, err := Graph(cl, "")
		if err != nil {
			b.Fatal(err)
		}
		if len(cl.Nodes) != 1000 || len(g.Steps) < 7000 {
			b.Fatalf("%d nodes, %d steps", len(cl.Nodes), len(g.Steps))
		}
	}
}
