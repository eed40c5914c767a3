package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/metalk8s/metalk8s/pkg/bundle"
	"github.com/metalk8s/metalk8s/pkg/inventory"
	"github.com/metalk8s/metalk8s/pkg/ssh"
	"github.com/metalk8s/metalk8s/pkg/steps"
	"github.com/metalk8s/metalk8s/test/fleet"
)

func fakeBundle(t *testing.T, dir string, files map[string]string) *bundle.Manifest {
	t.Helper()
	m := &bundle.Manifest{}
	for name, content := range files {
		p := "bin/" + name
		if name == "etcd" || name == "containerd" || name == "crictl" {
			p = "archives/" + name + ".tar.gz"
		}
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(dir, p), []byte(content), 0o644)
		sum := sha256.Sum256([]byte(content))
		m.Files = append(m.Files, bundle.File{Name: name, Path: p, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(content))})
	}
	return m
}

func TestInstallsByRole(t *testing.T) {
	m := fakeBundle(t, t.TempDir(), map[string]string{"kubeadm": "a", "etcd": "b", "containerd": "c", "crictl": "d", "node_exporter": "e"})
	nodeExporter := false
	names := func(n *inventory.Node) string {
		var s []string
		for _, in := range installs(n, m, nodeExporter) {
			s = append(s, in.File.Name)
		}
		sort.Strings(s)
		return strings.Join(s, ",")
	}
	if got := names(&inventory.Node{Etcd: true}); got != "etcd" {
		t.Errorf("etcd-only node: %s", got)
	}
	if got := names(&inventory.Node{Worker: true}); got != "containerd,crictl,kubeadm" {
		t.Errorf("worker: %s", got)
	}
	// monitoring: node_exporter on every node, etcd-only ones included
	nodeExporter = true
	if got := names(&inventory.Node{Etcd: true}); got != "etcd,node_exporter" {
		t.Errorf("etcd-only node with monitoring: %s", got)
	}
	if got := names(&inventory.Node{Worker: true}); got != "containerd,crictl,kubeadm,node_exporter" {
		t.Errorf("worker with monitoring: %s", got)
	}
}

// The upload half runs on the fleet: it writes only under the state
// directory of each host's inventory name. Installing runs on the lab VMs.
func TestBundleUploadOnFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("fleet tests are not short")
	}
	f := fleet.Start(t, 2)
	t.Setenv("SSH_AUTH_SOCK", "")
	dir := t.TempDir()
	m := fakeBundle(t, dir, map[string]string{"kubeadm": strings.Repeat("k", 3<<20), "kubelet": "kubelet v1", "etcd": "etcd tarball"})
	names := []string{"bnd-001", "bnd-002"}
	cl := &inventory.Cluster{}
	pool, err := ssh.NewPool(ssh.Options{KnownHosts: f.KnownHosts})
	if err != nil {
		t.Fatal(err)
	}
	hosts := map[string]steps.Host{}
	for i, name := range names {
		h := f.Plain()[i]
		n := &inventory.Node{Name: name, Worker: true, Etcd: i == 0,
			SSH: inventory.SSHConfig{Host: h.Addr, Port: h.Port, User: "root", KeyFile: f.Key}}
		cl.Nodes = append(cl.Nodes, n)
		c, err := pool.Client(name, n.SSH)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		hosts[name] = &steps.SSHHost{Client: c}
		os.RemoveAll(steps.StateDir(name))
		defer os.RemoveAll(steps.StateDir(name))
	}
	var uploads []*steps.Step
	for _, s := range Bundle(cl, dir, m, false) {
		if strings.HasPrefix(s.ID, "prepare/bundle-upload") {
			s.Deps = nil
			uploads = append(uploads, s)
		}
	}
	g, err := steps.NewGraph(uploads)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	run := func() *steps.Report {
		r := steps.Run(ctx, g, hosts, steps.Options{Apply: true, Transient: ssh.Transient})
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := run()
	if r.Count(steps.StatusChanged) != 2 {
		t.Fatalf("first run: %d changed", r.Count(steps.StatusChanged))
	}
	staged := steps.StateDir("bnd-001") + "/bundle/bin/kubeadm"
	if data, err := os.ReadFile(staged); err != nil || len(data) != 3<<20 {
		t.Fatalf("staged kubeadm: %v (%d bytes)", err, len(data))
	}
	if _, err := os.Stat(steps.StateDir("bnd-002") + "/bundle/archives/etcd.tar.gz"); err == nil {
		t.Error("etcd sent to a host outside the etcd group")
	}
	if r := run(); r.Count(steps.StatusChanged) != 0 {
		t.Errorf("second run uploaded again")
	}
	// A changed file in the bundle is the only one sent again.
	os.WriteFile(filepath.Join(dir, "bin/kubelet"), []byte("kubelet v2"), 0o644)
	sum := sha256.Sum256([]byte("kubelet v2"))
	for i := range m.Files {
		if m.Files[i].Name == "kubelet" {
			m.Files[i].SHA256 = hex.EncodeToString(sum[:])
		}
	}
	uploads = nil
	for _, s := range Bundle(cl, dir, m, false) {
		if strings.HasPrefix(s.ID, "prepare/bundle-upload") {
			s.Deps = nil
			uploads = append(uploads, s)
		}
	}
	g, _ = steps.NewGraph(uploads)
	r = run()
	o := r.Outcomes["prepare/bundle-upload@bnd-001"]
	if o.Status != steps.StatusChanged || len(o.Change.Diff) != 1 || !strings.Contains(o.Change.Diff[0], "bin/kubelet") {
		t.Errorf("after a kubelet change: %s %v", o.Status, o.Change.Diff)
	}

	// Checks read hashes from the node's cache, but a staged file changed
	// in place (same size, new mtime) is hashed again and sent again.
	if _, err := os.Stat(cacheKey("bnd-001", staged)); err != nil {
		t.Fatalf("no cache entry for %s: %v", staged, err)
	}
	sums, err := remoteSums(ctx, hosts["bnd-001"], []string{staged, staged + ".absent"})
	kubeadmSum := sha256.Sum256([]byte(strings.Repeat("k", 3<<20)))
	if err != nil || len(sums) != 1 || !sums[staged].Cached || sums[staged].SHA256 != hex.EncodeToString(kubeadmSum[:]) {
		t.Fatalf("remoteSums after a run: %+v %v", sums, err)
	}
	os.WriteFile(staged, []byte(strings.Repeat("x", 3<<20)), 0o600)
	r = run()
	o = r.Outcomes["prepare/bundle-upload@bnd-001"]
	if o.Status != steps.StatusChanged || len(o.Change.Diff) != 1 || !strings.Contains(o.Change.Diff[0], "bin/kubeadm") {
		t.Errorf("after corrupting the staged kubeadm: %s %v", o.Status, o.Change.Diff)
	}
	if data, _ := os.ReadFile(staged); !strings.HasPrefix(string(data), "kkk") {
		t.Error("staged kubeadm not restored")
	}
	// Sealing verifies: a file that is not what it should be is an error.
	err = seal(ctx, hosts["bnd-001"], map[string]string{staged: strings.Repeat("0", 64)}, true)
	if err == nil || !strings.Contains(err.Error(), staged+": SHA-256 ") {
		t.Errorf("seal of a wrong hash: %v", err)
	}
}
