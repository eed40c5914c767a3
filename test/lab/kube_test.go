package lab

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// podImage is the test's own pod image: Debian's static busybox (sh,
// httpd, wget, nslookup), built here and imported on the nodes, since the
// lab reaches no registry.
const podImage = "metalk8s.test/busybox:e2e"

// manifest is what the test reads of the bundle's manifest.json.
type manifest struct {
	Versions struct {
		Kube, Runc   string
		NodeExporter string `json:"node_exporter"`
	} `json:"versions"`
	Files  []struct{ Name, Path string }
	Images []struct{ Name string }
}

func readManifest(t *testing.T, dir string) manifest {
	t.Helper()
	var m manifest
	data, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err == nil {
		err = json.Unmarshal(data, &m)
	}
	if err != nil {
		t.Fatalf("bundle manifest: %v", err)
	}
	return m
}

// kubectl runs the bundle's kubectl on this machine with the admin.conf
// metalk8s wrote; it returns the output and the error.
func (l *lab) kubectl(timeout time.Duration, stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, l.kubectlBin, append([]string{"--kubeconfig", filepath.Join(filepath.Dir(l.inv), "artifacts/admin.conf"), "--request-timeout", "30s"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// mustKubectl is kubectl that fails the test on an error.
func (l *lab) mustKubectl(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, err := l.kubectl(2*time.Minute, stdin, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// eventually calls f every 5 s until it returns nil or limit passes, then
// fails the test with f's last error.
func eventually(t *testing.T, limit time.Duration, what string, f func() error) {
	t.Helper()
	t0 := time.Now()
	for {
		err := f()
		if err == nil {
			t.Logf("%s: after %v", what, since(t0))
			return
		}
		if time.Since(t0) > limit {
			t.Fatalf("%s: not after %v: %v", what, limit, err)
		}
		time.Sleep(5 * time.Second)
	}
}

// nodesReady checks the Node objects: want names Ready (true) or not.
func (l *lab) nodesReady(want map[string]bool, version string) error {
	out, err := l.kubectl(time.Minute, "", "get", "nodes", "-o", "json")
	if err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return checkNodes(out, want, version)
}

func checkNodes(out string, want map[string]bool, version string) error {
	var list struct {
		Items []struct {
			Metadata struct{ Name string }
			Status   struct {
				NodeInfo   struct{ KubeletVersion string }
				Conditions []struct{ Type, Status string }
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	seen := map[string]bool{}
	for _, n := range list.Items {
		ready := false
		for _, c := range n.Status.Conditions {
			if c.Type == "Ready" {
				ready = c.Status == "True"
			}
		}
		w, ok := want[n.Metadata.Name]
		if !ok {
			return fmt.Errorf("unexpected node %s", n.Metadata.Name)
		}
		seen[n.Metadata.Name] = true
		if ready != w {
			return fmt.Errorf("node %s Ready=%v, want %v", n.Metadata.Name, ready, w)
		}
		if version != "" && n.Status.NodeInfo.KubeletVersion != version {
			return fmt.Errorf("node %s runs kubelet %s, want %s", n.Metadata.Name, n.Status.NodeInfo.KubeletVersion, version)
		}
	}
	if len(seen) != len(want) {
		return fmt.Errorf("%d nodes registered, want %d", len(seen), len(want))
	}
	return nil
}

// podsRunning checks that every pod of the namespaces runs with every
// container ready.
func (l *lab) podsRunning(namespaces ...string) error {
	for _, ns := range namespaces {
		out, err := l.kubectl(time.Minute, "", "get", "pods", "-n", ns, "-o",
			`jsonpath={range .items[*]}{.metadata.name} {.status.phase} {.status.containerStatuses[*].ready}{"\n"}{end}`)
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		if strings.TrimSpace(out) == "" {
			return fmt.Errorf("no pod in %s", ns)
		}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Fields(line)
			if len(f) < 3 || f[1] != "Running" || strings.Contains(line, "false") {
				return fmt.Errorf("%s/%s", ns, line)
			}
		}
	}
	return nil
}

// buildPodImage writes podImage as a docker archive that
// `ctr images import` reads: /bin/busybox and its applets as links.
func buildPodImage(t *testing.T, path string) {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("the pod image needs Debian's busybox-static (make deps): %v", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mod := time.Unix(0, 0)
	tw.WriteHeader(&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mod})
	tw.WriteHeader(&tar.Header{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777, ModTime: mod})
	tw.WriteHeader(&tar.Header{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bb)), ModTime: mod})
	tw.Write(bb)
	for _, a := range []string{"sh", "httpd", "wget", "nslookup", "sleep", "cat", "echo", "mkdir", "hostname"} {
		tw.WriteHeader(&tar.Header{Name: "bin/" + a, Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777, ModTime: mod})
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config = v1.Config{Env: []string{"PATH=/bin"}, Cmd: []string{"sh"}}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(podImage)
	if err != nil {
		t.Fatal(err)
	}
	if err := tarball.WriteToFile(path, tag, img); err != nil {
		t.Fatal(err)
	}
}

// importPodImage copies the pod image to every node and imports it into
// containerd's Kubernetes namespace.
func (l *lab) importPodImage(t *testing.T) {
	t.Helper()
	tarPath := filepath.Join(t.TempDir(), "busybox.tar")
	buildPodImage(t, tarPath)
	for i := 1; i <= nodes; i++ {
		l.run(2*time.Minute, "scp", "-q", "-F", filepath.Join(l.dir, "ssh_config"), tarPath, fmt.Sprintf("node%d:/root/busybox.tar", i))
	}
	l.exec(t, "", "ctr -n k8s.io images import /root/busybox.tar >/dev/null && rm -f /root/busybox.tar && crictl inspecti -q "+podImage+" >/dev/null && echo imported")
}

// The workloads of the Kubernetes checks: a web server pinned to node1
// behind a Service, a client pinned to node3.
const webManifests = `apiVersion: v1
kind: Namespace
metadata: {name: e2e}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: e2e, labels: {app: web}}
spec:
  nodeName: node1
  containers:
  - name: web
    image: ` + podImage + `
    imagePullPolicy: Never
    command: [sh, -c, 'mkdir -p /tmp/www && echo "hello from $(hostname)" > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www']
    readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 5}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: e2e}
spec:
  selector: {app: web}
  ports: [{port: 8080, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: e2e}
spec:
  nodeName: node3
  containers:
  - {name: client, image: ` + podImage + `, imagePullPolicy: Never, command: [sleep, "36000"]}
`

const denyWeb = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-web, namespace: e2e}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
`

// A claim on local-lvm, written by one pod and read by another on node2.
const pvcClaim = `apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: e2e}
spec:
  storageClassName: local-lvm
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
`

// volumePod is a pod on node2 that runs command (YAML flow list) once with
// the claim mounted at /data.
func volumePod(name, command string) string {
	return `apiVersion: v1
kind: Pod
metadata: {name: ` + name + `, namespace: e2e}
spec:
  nodeSelector: {kubernetes.io/hostname: node2}
  restartPolicy: Never
  volumes: [{name: data, persistentVolumeClaim: {claimName: data}}]
  containers:
  - name: main
    image: ` + podImage + `
    imagePullPolicy: Never
    command: ` + command + `
    volumeMounts: [{name: data, mountPath: /data}]
`
}

// podPhase returns a pod's phase.
func (l *lab) podPhase(ns, pod string) string {
	out, _ := l.kubectl(time.Minute, "", "get", "pod", "-n", ns, pod, "-o", "jsonpath={.status.phase}")
	return strings.TrimSpace(out)
}

// fetchWeb asks the web Service by name from the client pod on node3.
func (l *lab) fetchWeb() (string, error) {
	return l.kubectl(time.Minute, "", "exec", "-n", "e2e", "client", "--", "wget", "-q", "-O", "-", "-T", "5", "http://web:8080/index.html")
}

// testKubernetes checks the cluster up built: nodes, system pods, IPVS,
// DNS, a Service across nodes, a NetworkPolicy, a local volume.
func (l *lab) testKubernetes(t *testing.T, m manifest) {
	all := map[string]bool{}
	for i := 1; i <= nodes; i++ {
		all[fmt.Sprintf("node%d", i)] = true
	}
	eventually(t, 5*time.Minute, "3 Ready nodes of "+m.Versions.Kube, func() error { return l.nodesReady(all, m.Versions.Kube) })
	eventually(t, 10*time.Minute, "every kube-system and kube-flannel pod running", func() error { return l.podsRunning("kube-system", "kube-flannel") })
	out := l.mustKubectl(t, "", "get", "pods", "-A", "-o", "wide")
	t.Logf("pods:\n%s", out)
	// node3 is a worker only: it reaches the API through its own proxy.
	if !strings.Contains(out, "apiserver-proxy-node3 ") || strings.Contains(out, "kube-apiserver-node3 ") {
		t.Errorf("want the apiserver proxy on node3, a worker, and no apiserver there")
	}
	out = l.exec(t, "node3", "getent hosts lb-apiserver.kubernetes.local")
	if !strings.Contains(out, "127.0.0.1 ") {
		t.Errorf("on node3 the endpoint name does not resolve to the local proxy:\n%s", out)
	}

	eventually(t, 5*time.Minute, "the kubernetes Service in every node's IPVS table", func() error {
		out, err := l.metalk8sErr(2*time.Minute, "exec", "-i", l.inv, "--known-hosts", l.known, "--", "ipvsadm -Ln")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		if n := strings.Count(out, "TCP  10.233.0.1:443"); n != nodes {
			return fmt.Errorf("%d nodes of %d list 10.233.0.1:443:\n%s", n, nodes, out)
		}
		return nil
	})

	l.importPodImage(t)
	l.mustKubectl(t, webManifests, "apply", "-f", "-")
	eventually(t, 5*time.Minute, "web and client pods running", func() error { return l.podsRunning("e2e") })
	eventually(t, 5*time.Minute, "node3's client reaches node1's web Service by name", func() error {
		out, err := l.fetchWeb()
		if err != nil || !strings.Contains(out, "hello from web") {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
	out, err := l.kubectl(time.Minute, "", "exec", "-n", "e2e", "client", "--", "nslookup", "kubernetes.default")
	t.Logf("nslookup kubernetes.default:\n%s", out)
	if err != nil || !strings.Contains(out, "10.233.0.1") {
		t.Errorf("CoreDNS did not resolve kubernetes.default to 10.233.0.1: %v", err)
	}

	l.mustKubectl(t, denyWeb, "apply", "-f", "-")
	eventually(t, 3*time.Minute, "a NetworkPolicy denying web's ingress enforced", func() error {
		if out, err := l.fetchWeb(); err == nil {
			return fmt.Errorf("still reached: %s", out)
		}
		return nil
	})
	l.mustKubectl(t, "", "delete", "networkpolicy", "-n", "e2e", "deny-web")
	eventually(t, 3*time.Minute, "web reached again once the policy is gone", func() error {
		out, err := l.fetchWeb()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})

	l.mustKubectl(t, pvcClaim+"---\n"+volumePod("writer", `[sh, -c, 'echo "written on $(hostname)" > /data/proof']`), "apply", "-f", "-")
	eventually(t, 5*time.Minute, "the writer pod done on its local-lvm volume", func() error {
		if p := l.podPhase("e2e", "writer"); p != "Succeeded" {
			return fmt.Errorf("writer %q", p)
		}
		return nil
	})
	l.mustKubectl(t, volumePod("reader", "[cat, /data/proof]"), "apply", "-f", "-")
	eventually(t, 5*time.Minute, "the reader pod done", func() error {
		if p := l.podPhase("e2e", "reader"); p != "Succeeded" {
			return fmt.Errorf("reader %q", p)
		}
		return nil
	})
	out = l.mustKubectl(t, "", "logs", "-n", "e2e", "reader")
	if !strings.Contains(out, "written on writer") {
		t.Errorf("the reader read %q", out)
	}
	out = l.mustKubectl(t, "", "get", "pvc", "-n", "e2e", "data", "-o", "jsonpath={.status.phase} {.spec.volumeName}")
	t.Logf("claim: %s", out)
	if !strings.HasPrefix(out, "Bound node2-") {
		t.Errorf("the claim is %q, want Bound to a volume of node2", out)
	}
	l.mustKubectl(t, "", "delete", "namespace", "e2e", "--wait=false")
}

// testPKIRecovery deletes the operator's artifacts/pki after a good up:
// plan makes no new certificate, up restores the local copy from the
// nodes, and the plan after that is clean.
func (l *lab) testPKIRecovery(t *testing.T, bundleDir string) {
	pkiDir := filepath.Join(filepath.Dir(l.inv), "artifacts/pki")
	cas := []string{"kubernetes/ca.crt", "kubernetes/ca.key", "kubernetes/front-proxy-ca.crt", "kubernetes/sa.key", "etcd/ca.crt", "etcd/ca.key"}
	before := map[string][]byte{}
	for _, f := range cas {
		data, err := os.ReadFile(filepath.Join(pkiDir, f))
		if err != nil {
			t.Fatal(err)
		}
		before[f] = data
	}
	if err := os.RemoveAll(pkiDir); err != nil {
		t.Fatal(err)
	}
	out, err := l.metalk8sErr(10*time.Minute, "plan", l.inv, "--known-hosts", l.known, "--bundle", bundleDir)
	t.Logf("plan without artifacts/pki: exit %d\n%s", exitCode(err), out)
	if exitCode(err) != 3 || !strings.Contains(out, "restore") {
		t.Errorf("plan without artifacts/pki: exit %d, want 3 (changes pending) with the restores", exitCode(err))
	}
	for _, step := range []string{"  etcd/pki", "  control-plane/pki", "  etcd/certs", "  control-plane/certs"} {
		if strings.Contains(out, step+"\n") || strings.Contains(out, step+"  (") {
			t.Errorf("plan without artifacts/pki would change %s", strings.TrimSpace(step))
		}
	}
	if _, err := os.Stat(pkiDir); err == nil {
		t.Errorf("plan wrote %s", pkiDir)
	}
	out = l.metalk8s(t, 20*time.Minute, "up", l.inv, "--known-hosts", l.known, "--bundle", bundleDir)
	t.Logf("up without artifacts/pki:\n%s", out)
	for _, f := range cas {
		data, err := os.ReadFile(filepath.Join(pkiDir, f))
		if err != nil || !bytes.Equal(data, before[f]) {
			t.Errorf("%s not restored as it was: %v", f, err)
		}
		if fi, err := os.Stat(filepath.Join(pkiDir, f)); err == nil && fi.Mode().Perm() != 0o600 {
			t.Errorf("%s restored with mode %v", f, fi.Mode().Perm())
		}
	}
	out, err = l.metalk8sErr(10*time.Minute, "plan", l.inv, "--known-hosts", l.known, "--bundle", bundleDir)
	if exitCode(err) != 0 {
		t.Errorf("plan after the restore: exit %d, want 0\n%s", exitCode(err), out)
	}
}

// nodesFrom reads Node objects from node, through its node-local endpoint
// (the endpoint name resolves to the node's own apiserver on a control
// plane, to its apiserver proxy on a worker), and checks their readiness
// against want. On a control plane it reads every node with the admin's
// kubeconfig; elsewhere only the node's own, with the kubelet's (the Node
// authorizer lets a kubelet read no other Node: "node 'node2' cannot read
// all nodes, only its own Node object").
func (l *lab) nodesFrom(node string, controlPlane bool, want map[string]bool) error {
	cmd := "kubectl --kubeconfig /etc/kubernetes/kubelet.conf --request-timeout 20s get nodes --field-selector metadata.name=" + node + " -o json"
	if controlPlane {
		cmd = "kubectl --kubeconfig /etc/kubernetes/admin.conf --request-timeout 20s get nodes -o json"
	} else {
		want = map[string]bool{node: want[node]}
	}
	out, err := l.metalk8sErr(2*time.Minute, "exec", "-i", l.inv, "--known-hosts", l.known, "--limit", node, "--", cmd)
	if err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	_, js, ok := strings.Cut(out, "\n")
	if !ok {
		return fmt.Errorf("no output: %s", out)
	}
	return checkNodes(js, want, "")
}

// testPowerOff powers node1, the first control plane, off: node2 (the
// other control plane) and node3 (a worker, through its apiserver proxy)
// keep reaching the API and stay Ready; once node1 is back, up heals what
// it must and the up after it changes nothing.
func (l *lab) testPowerOff(t *testing.T, bundleDir string) {
	if os.Getenv("LAB_CONTROL_PLANES") == "1" {
		t.Skip("one control plane (LAB_CONTROL_PLANES=1, make e2e-kube-light): with node1 off there is no API to reach")
	}
	if out, err := l.sh(5*time.Minute, "poweroff", "1"); err != nil {
		t.Fatalf("lab.sh poweroff 1: %v\n%s", err, out)
	}
	want := map[string]bool{"node1": false, "node2": true, "node3": true}
	// node2 is the other control plane, node3 a worker only.
	from := map[string]bool{"node2": true, "node3": false}
	for _, n := range []string{"node2", "node3"} {
		eventually(t, 5*time.Minute, "node1 NotReady and the others Ready, seen from "+n, func() error { return l.nodesFrom(n, from[n], want) })
	}
	// Still so a minute later: nothing flaps while node1 is away.
	time.Sleep(time.Minute)
	for _, n := range []string{"node2", "node3"} {
		if err := l.nodesFrom(n, from[n], want); err != nil {
			t.Errorf("from %s, a minute later: %v", n, err)
		}
	}
	if out, err := l.sh(10*time.Minute, "poweron", "1"); err != nil {
		t.Fatalf("lab.sh poweron 1: %v\n%s", err, out)
	}
	t0 := time.Now()
	out := l.metalk8s(t, 20*time.Minute, "up", l.inv, "--known-hosts", l.known, "--bundle", bundleDir)
	t.Logf("up after node1 came back: %v\n%s", since(t0), out)
	all := map[string]bool{"node1": true, "node2": true, "node3": true}
	eventually(t, 5*time.Minute, "every node Ready again", func() error { return l.nodesReady(all, "") })
	t0 = time.Now()
	out = l.metalk8s(t, 20*time.Minute, "up", l.inv, "--known-hosts", l.known, "--bundle", bundleDir)
	t.Logf("the up after that: %v\n%s", since(t0), out)
	if !strings.Contains(out, " 0 steps changed") {
		t.Errorf("the up after healing changed something")
	}
}
