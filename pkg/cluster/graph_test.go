package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metalk8s/metalk8s/internal/testinv"
	"github.com/metalk8s/metalk8s/pkg/inventory"
	"github.com/metalk8s/metalk8s/pkg/steps"
)

// kubeGraph is the graph of a bundled cluster of three control planes
// (etcd members and workers too) and one worker-only node, node4.
func kubeGraph(t *testing.T) (*steps.Graph, *inventory.Cluster) {
	t.Helper()
	cl, b := kubeCluster(t)
	g, err := Graph(cl, b)
	if err != nil {
		t.Fatal(err)
	}
	return g, cl
}

// kubeCluster is kubeGraph's inventory (node1-3 control planes and etcd
// members, node4 a worker) and bundle directory.
func kubeCluster(t *testing.T) (*inventory.Cluster, string) {
	t.Helper()
	dir := t.TempDir()
	inv := filepath.Join(dir, "hosts.ini")
	hosts := `[all]
node1 ansible_host=192.0.2.1 ip=10.10.0.11
node2 ansible_host=192.0.2.2 ip=10.10.0.12
node3 ansible_host=192.0.2.3 ip=10.10.0.13
node4 ansible_host=192.0.2.4 ip=10.10.0.14
[kube-master]
node[1:3]
[etcd]
node[1:3]
[kube-node]
node[1:4]
[k8s-cluster:children]
kube-master
kube-node
`
	os.WriteFile(inv, []byte(hosts), 0o600)
	b := filepath.Join(dir, "bundle")
	os.MkdirAll(b, 0o755)
	var files []string
	for _, f := range []string{"kubeadm", "kubelet", "kubectl", "containerd", "runc", "crictl", "cni-plugins", "etcd", "node_exporter"} {
		files = append(files, fmt.Sprintf(`{"name":%q,"path":"bin/%s","sha256":"%064d","size":1}`, f, f, 0))
	}
	manifest := `{"versions":{"kube":"v1.36.3"},"files":[` + strings.Join(files, ",") +
		`],"images":[{"name":"registry.k8s.io/pause:3.10.2","digest":"sha256:0"},` +
		`{"name":"registry.k8s.io/metrics-server/metrics-server:v0.8.0","digest":"sha256:1"},` +
		`{"name":"ghcr.io/headlamp-k8s/headlamp:v0.45.0","digest":"sha256:2"},` +
		`{"name":"docker.io/library/traefik:v3.7.13","digest":"sha256:3"},` +
		`{"name":"quay.io/prometheus-operator/prometheus-operator:v0.85.0","digest":"sha256:4"},` +
		`{"name":"quay.io/prometheus-operator/prometheus-config-reloader:v0.85.0","digest":"sha256:5"},` +
		`{"name":"quay.io/prometheus/prometheus:v3.5.1","digest":"sha256:6"},` +
		`{"name":"quay.io/prometheus/alertmanager:v0.28.1","digest":"sha256:7"},` +
		`{"name":"docker.io/grafana/grafana:13.2.3","digest":"sha256:8"},` +
		`{"name":"docker.io/victoriametrics/victoria-logs:v1.52.2","digest":"sha256:9"},` +
		`{"name":"docker.io/victoriametrics/vlagent:v1.52.2","digest":"sha256:a"},` +
		`{"name":"registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.20.0","digest":"sha256:b"}],"image_archive":"images.tar"}`
	os.WriteFile(filepath.Join(b, "manifest.json"), []byte(manifest), 0o644)
	return testinv.Load(t, inv), b
}

// The whole graph of kubeGraph: every dependency exists, phases only look
// backwards, and the Kubernetes steps are ordered as kubeadm needs.
func TestGraphKubernetes(t *testing.T) {
	g, cl := kubeGraph(t)
	inv := cl.Inventory.Path
	b := filepath.Join(filepath.Dir(inv), "bundle")
	hostsData, err := os.ReadFile(inv)
	if err != nil {
		t.Fatal(err)
	}
	hosts := string(hostsData)
	manifestData, err := os.ReadFile(filepath.Join(b, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	manifest := string(manifestData)
	has := func(id string) *steps.Step {
		s := g.Step(id)
		if s == nil {
			t.Errorf("no step %s", id)
		}
		return s
	}
	dependsOn := func(id, dep string) {
		if s := has(id); s != nil && !reaches(g, s, dep) {
			t.Errorf("%s does not come after %s", id, dep)
		}
	}
	dependsOn("control-plane/kubeadm@node2", "control-plane/kubeadm@node1")
	dependsOn("control-plane/kubeadm@node3", "control-plane/kubeadm@node2")
	dependsOn("control-plane/kubeadm@node1", "etcd/health@node1")
	dependsOn("control-plane/kubeadm@node1", "control-plane/certs@node1")
	dependsOn("control-plane/pki@node1", "pki/recover@node1")
	dependsOn("workers/kubeadm@node4", "control-plane/kubeadm@node3")
	dependsOn("workers/endpoint@node4", "workers/apiserver-proxy@node4")
	dependsOn("workers/nodes-ready@node1", "workers/cni@node4")
	dependsOn("workers/nodes-ready@node1", "control-plane/pod-network@node1")
	dependsOn("volumes/storage-class@node1", "control-plane/ready@node1")
	dependsOn("addons/metrics-server@node1", "workers/nodes-ready@node1")
	dependsOn("addons/traefik@node1", "addons/gateway-api@node1") // its CRDs
	dependsOn("addons/monitoring@node1", "addons/monitoring-crds@node1")
	dependsOn("addons/logging@node1", "addons/monitoring-crds@node1")
	if s := has("addons/headlamp@node1"); s != nil && reaches(g, s, "addons/metrics-server@node1") {
		t.Error("addons/headlamp waits for addons/metrics-server: independent addons must not block each other")
	}
	if s := has("addons/metrics-server@node1"); s != nil && s.Phase != "addons" {
		t.Errorf("the metrics-server step is in phase %s", s.Phase)
	}
	for _, id := range []string{"workers/apiserver-proxy@node1", "control-plane/kubeadm@node4", "workers/kubeadm@node1"} {
		if g.Step(id) != nil {
			t.Errorf("unexpected step %s", id)
		}
	}
	// monitoring (on by default): node_exporter on every node, installed first
	dependsOn("prepare/node-exporter@node4", "prepare/binaries@node4")
	if s := has("prepare/binaries@node4"); s != nil && !strings.Contains(fmt.Sprint(s.Inputs), "node_exporter=") {
		t.Errorf("node4's binaries do not include node_exporter: %v", s.Inputs)
	}

	// monitoring off: node-exporter steps remove the service; no binary
	os.WriteFile(inv, []byte(hosts+"[all:vars]\nmetalk8s_monitoring_enabled=false\n"), 0o600)
	g, err = Graph(testinv.Load(t, inv), b)
	if err != nil {
		t.Fatal(err)
	}
	if s := g.Step("prepare/node-exporter@node4"); s == nil || reaches(g, s, "prepare/binaries@node4") {
		t.Errorf("monitoring disabled: node-exporter step %v waits for the binaries, or is missing", s)
	}
	if s := g.Step("prepare/binaries@node4"); s == nil || strings.Contains(fmt.Sprint(s.Inputs), "node_exporter=") {
		t.Errorf("monitoring disabled: node_exporter is still installed: %v", s)
	}
	// monitoring on with a bundle that lacks node_exporter: a clear error
	os.WriteFile(inv, []byte(hosts), 0o600)
	os.WriteFile(filepath.Join(b, "manifest.json"), []byte(strings.Replace(manifest, `"name":"node_exporter"`, `"name":"other"`, 1)), 0o644)
	if _, err := Graph(testinv.Load(t, inv), b); err == nil || !strings.Contains(err.Error(), "the bundle has no node_exporter") ||
		!strings.Contains(err.Error(), "metalk8s_node_exporter_enabled: false") {
		t.Errorf("a bundle without node_exporter: %v", err)
	}
}

// reaches says whether dep is among s's dependencies, transitively.
func reaches(g *steps.Graph, s *steps.Step, dep string) bool {
	seen := map[string]bool{}
	var walk func(*steps.Step) bool
	walk = func(s *steps.Step) bool {
		for _, d := range s.Deps {
			if d == dep {
				return true
			}
			if !seen[d] {
				seen[d] = true
				if walk(g.Step(d)) {
					return true
				}
			}
		}
		return false
	}
	return walk(s)
}

// No step changes a host before all of that host's preflight checks and
// the cluster-wide one have passed (a newcomer saw node1's ports checked
// after kubeadm init); check-only steps are not held back.
func TestChangesAfterPreflight(t *testing.T) {
	g, cl := kubeGraph(t)
	byID := map[string]*steps.Step{}
	for _, s := range g.Steps {
		byID[s.ID] = s
	}
	// ancestors: every step s waits for, directly or not
	var ancestors func(id string, seen map[string]bool)
	ancestors = func(id string, seen map[string]bool) {
		for _, d := range byID[id].Deps {
			if !seen[d] {
				seen[d] = true
				ancestors(d, seen)
			}
		}
	}
	first := cl.ControlPlane[0].Name
	n := 0
	for _, s := range g.Steps {
		if s.Phase == "preflight" || s.Apply == nil {
			continue
		}
		n++
		seen := map[string]bool{}
		ancestors(s.ID, seen)
		for _, want := range []string{"preflight/ports@" + s.Host, "preflight/resources@" + s.Host, "preflight/clock@" + s.Host,
			"preflight/hostname@" + s.Host, "preflight/unique-hostnames@" + first} {
			if !seen[want] {
				t.Errorf("%s changes %s without waiting for %s", s.ID, s.Host, want)
			}
		}
	}
	if n < 20 {
		t.Errorf("only %d steps that change a host", n)
	}
	if d := byID["etcd/data@node1"]; d != nil && d.Apply == nil && len(d.Deps) > 3 {
		t.Errorf("a check-only step held back: %v", d.Deps)
	}
}

// The addons whose pods claim local-lvm volumes (monitoring's Prometheus
// and Alertmanager, logging's VictoriaLogs) wait for the StorageClass and
// every node's PersistentVolumes, not for the prune; the others wait for
// neither.
func TestAddonsWaitForVolumes(t *testing.T) {
	cl, b := kubeCluster(t)
	data, err := os.ReadFile(cl.Inventory.Path)
	if err != nil {
		t.Fatal(err)
	}
	hosts := strings.Replace(string(data), "ip=10.10.0.14", `ip=10.10.0.14 metalk8s_lvm_drives_vg_metalk8s='["/dev/vdb"]'`, 1)
	if err := os.WriteFile(cl.Inventory.Path, []byte(hosts), 0o600); err != nil {
		t.Fatal(err)
	}
	g, err := Graph(testinv.Load(t, cl.Inventory.Path), b)
	if err != nil {
		t.Fatal(err)
	}
	vols := []string{"volumes/storage-class@node1", "volumes/pvs/node4@node1"}
	for _, a := range []string{"monitoring", "logging", "headlamp", "metrics-server", "traefik"} {
		s := g.Step("addons/" + a + "@node1")
		if s == nil {
			t.Fatalf("no step addons/%s@node1", a)
		}
		claims := a == "monitoring" || a == "logging"
		for _, v := range vols {
			if g.Step(v) == nil {
				t.Fatalf("no step %s", v)
			}
			if reaches(g, s, v) != claims {
				t.Errorf("%s comes after %s: %v, want %v", s.ID, v, !claims, claims)
			}
		}
		if reaches(g, s, "volumes/prune@node1") {
			t.Errorf("%s waits for volumes/prune", s.ID)
		}
	}
}
