package kubeadm

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	kubeproxyv1alpha1 "k8s.io/kube-proxy/config/v1alpha1"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/v1beta4"
	"sigs.k8s.io/yaml"

	"github.com/metalk8s/metalk8s/internal/testinv"
	"github.com/metalk8s/metalk8s/pkg/bundle"
	"github.com/metalk8s/metalk8s/pkg/inventory"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const (
	testToken = "abcdef.0123456789abcdef"
)

func labCluster(t *testing.T) *inventory.Cluster {
	t.Helper()
	return testinv.Load(t, "testdata/hosts.ini")
}

func node(t *testing.T, cl *inventory.Cluster, name string) *inventory.Node {
	t.Helper()
	for _, n := range cl.Nodes {
		if n.Name == name {
			return n
		}
	}
	t.Fatalf("no node %s", name)
	return nil
}

// TestGolden compares the configuration files with testdata/*.yaml (go
// test -update rewrites them) and has the real kubeadm validate each.
func TestGolden(t *testing.T) {
	cl := labCluster(t)
	p, err := ParamsFrom(cl, true)
	if err != nil {
		t.Fatal(err)
	}
	kubeadm := findKubeadm(t)
	for _, tc := range []struct {
		file string
		make func() ([]byte, error)
	}{
		{"init-node1.yaml", func() ([]byte, error) { return p.InitConfig(node(t, cl, "node1")) }},
		{"join-control-plane-node2.yaml", func() ([]byte, error) {
			return p.JoinConfig(node(t, cl, "node2"), true, testToken)
		}},
		{"join-worker-node4.yaml", func() ([]byte, error) {
			return p.JoinConfig(node(t, cl, "node4"), false, testToken)
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got, err := tc.make()
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tc.file)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs (go test -update rewrites it); got:\n%s", path, got)
			}
			t.Run("kubeadm config validate", func(t *testing.T) {
				if kubeadm == "" {
					t.Skip(noKubeadm)
				}
				validate(t, kubeadm, path)
			})
		})
	}
}

// validate runs `kubeadm config validate` on file and fails on any
// complaint.
// A join configuration's DiscoveryFile must exist for kubeadm to accept
// it: validate points a copy at a discovery kubeconfig in a temporary
// directory.
func validate(t *testing.T, kubeadm, file string) {
	t.Helper()
	if data, err := os.ReadFile(file); err == nil && bytes.Contains(data, []byte(DiscoveryFile)) {
		dir := t.TempDir()
		disc := filepath.Join(dir, "discovery.conf")
		p, err := ParamsFrom(labCluster(t), true)
		if err != nil {
			t.Fatal(err)
		}
		kc, err := p.DiscoveryConfig(testCA(t))
		if err != nil {
			t.Fatal(err)
		}
		file = filepath.Join(dir, filepath.Base(file))
		if err := os.WriteFile(disc, kc, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, bytes.ReplaceAll(data, []byte(DiscoveryFile), []byte(disc)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if msg := complaints(kubeadm, file); msg != "" {
		t.Errorf("kubeadm config validate %s: %s", file, msg)
	}
}

// klogProblem is a klog warning or error line ("W1130 15:39:49.67 ...").
var klogProblem = regexp.MustCompile(`(?m)^[WE][0-9]{4} `)

// complaints is what `kubeadm config validate` says against file: a
// failure, unknown or duplicate fields, warnings (values kubeadm would
// set otherwise); "" when it only says ok.
func complaints(kubeadm, file string) string {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(kubeadm, "config", "validate", "--config", file)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	out := stdout.String() + stderr.String()
	switch {
	case err != nil:
		return fmt.Sprintf("%v\n%s", err, out)
	case klogProblem.MatchString(out), strings.Contains(out, "unknown field"), strings.Contains(out, "strict decoding"),
		strings.Contains(out, "duplicate field"), strings.Contains(strings.ToLower(out), "warning"):
		return out
	case strings.TrimSpace(stdout.String()) != "ok":
		return "no ok: " + out
	}
	return ""
}

// TestComplaints shows the golden test's validation can fail: a clusterDNS
// kubeadm would not pick (only a warning, exit 0) and an unknown field.
func TestComplaints(t *testing.T) {
	kubeadm := findKubeadm(t)
	if kubeadm == "" {
		t.Skip(noKubeadm)
	}
	good, err := os.ReadFile("testdata/init-node1.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ old, new, want string }{
		{"- 10.233.0.10\n", "- 10.233.0.3\n", `The recommended value for "clusterDNS"`},
		{"  bindPort: 6443\n", "  bindPort: 6443\n  typo: 1\n", `unknown field "localAPIEndpoint.typo"`},
	} {
		file := filepath.Join(t.TempDir(), "kubeadm.yaml")
		if err := os.WriteFile(file, bytes.Replace(good, []byte(tc.old), []byte(tc.new), 1), 0o644); err != nil {
			t.Fatal(err)
		}
		if msg := complaints(kubeadm, file); !strings.Contains(msg, tc.want) {
			t.Errorf("%s -> %s: complaints %q, want %q", tc.old, tc.new, msg, tc.want)
		}
	}
}

// findKubeadm is $KUBEADM, else the lab's build in
// <repo>/.cache/artifacts/v1.36.3/bin/kubeadm. Without either the test
// skips validation, or fails when $CI is set.
func findKubeadm(t *testing.T) string {
	t.Helper()
	candidates := []string{os.Getenv("KUBEADM"), filepath.Join("..", "..", ".cache", "artifacts", "v1.36.3", "bin", "kubeadm")}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		out, err := exec.Command(c, "version", "-o", "short").Output()
		if err != nil {
			continue
		}
		if v := strings.TrimSpace(string(out)); v != "v1.36.3" {
			t.Fatalf("%s is kubeadm %s; the golden files are for v1.36.3", c, v)
		}
		return c
	}
	if os.Getenv("CI") != "" {
		t.Fatal(noKubeadm)
	}
	return ""
}

const noKubeadm = "no kubeadm v1.36.3 ($KUBEADM, or .cache/artifacts/v1.36.3/bin/kubeadm from make lab-bundle): golden files not validated"

func TestLinkedKubeadm(t *testing.T) {
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*k8s\.io/kubernetes (v\d+\.\d+)\.`).FindSubmatch(mod)
	if m == nil || string(m[1]) != linkedKubeadm {
		t.Fatalf("go.mod requires k8s.io/kubernetes %s; linkedKubeadm is %s", m, linkedKubeadm)
	}
}

// TestPruneLossless decodes each document strictly into its type: it must
// give back exactly the object built, so pruning dropped only what
// decoding restores.
func TestPruneLossless(t *testing.T) {
	p, err := ParamsFrom(labCluster(t), true)
	if err != nil {
		t.Fatal(err)
	}
	n := node(t, labCluster(t), "node1")
	kl := p.kubeletConfiguration()
	kl.SerializeImagePulls = new(bool) // a pointer to a zero value stays
	kp := p.kubeProxyConfiguration()
	kp.IPVS = kubeproxyv1alpha1.KubeProxyIPVSConfiguration{} // a zero value goes
	if kp.IPTables.SyncPeriod.Duration == 0 {
		t.Fatal("the lab inventory sets kube_proxy_sync_period: durations must survive too")
	}
	worker := p.nodeRegistration(n)
	worker.Taints = nil
	for _, tc := range []struct {
		obj, empty any
		has, lacks string
	}{
		{p.clusterConfiguration(), &v1beta4.ClusterConfiguration{}, "external:", "dns:"},
		{&v1beta4.InitConfiguration{NodeRegistration: p.nodeRegistration(n)}, &v1beta4.InitConfiguration{}, "taints: []", "localAPIEndpoint"},
		{&v1beta4.InitConfiguration{NodeRegistration: worker}, &v1beta4.InitConfiguration{}, "name: node1", "taints"},
		{kl, &kubeletv1beta1.KubeletConfiguration{}, "serializeImagePulls: false", "syncFrequency"},
		{kp, &kubeproxyv1alpha1.KubeProxyConfiguration{}, "mode: ipvs", "ipvs:"},
	} {
		y, err := marshalAll(tc.obj)
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.UnmarshalStrict(bytes.TrimPrefix(y, []byte("---\n")), tc.empty); err != nil {
			t.Fatalf("%T: %v\n%s", tc.obj, err, y)
		}
		if !reflect.DeepEqual(tc.obj, tc.empty) {
			t.Errorf("%T does not survive marshalling:\n%s", tc.obj, y)
		}
		if !strings.Contains(string(y), tc.has) || strings.Contains(string(y), tc.lacks) {
			t.Errorf("%T: want %q and no %q in\n%s", tc.obj, tc.has, tc.lacks, y)
		}
	}
}

// TestConfigs checks what the golden files do not show.
func TestConfigs(t *testing.T) {
	cl := clusterWith(t, "")
	cp1, cp2, w1 := cl.Nodes[0], cl.Nodes[1], cl.Nodes[2]
	params := func(vars string, bundled bool) *Params {
		p, err := ParamsFrom(clusterWith(t, vars), bundled)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	def := params("", false)
	kubeadm := findKubeadm(t)
	for _, tc := range []struct {
		name       string
		make       func() ([]byte, error)
		has, lacks []string
	}{
		{"control-plane only: kubeadm's taint, no pull policy without a bundle", func() ([]byte, error) { return def.InitConfig(cp1) },
			[]string{"taints:\n  - effect: NoSchedule\n    key: node-role.kubernetes.io/control-plane", "advertiseAddress: 10.0.0.11"},
			[]string{"imagePullPolicy"}},
		{"node without ip: ansible_host", func() ([]byte, error) { return def.JoinConfig(cp2, true, testToken) },
			[]string{"advertiseAddress: 192.168.1.12", "value: 192.168.1.12", "controlPlane:"}, []string{"certificateKey"}},
		{"worker", func() ([]byte, error) { return def.JoinConfig(w1, false, testToken) },
			[]string{"taints: []", "name: w1"}, []string{"controlPlane:"}},
		{"SANs", func() ([]byte, error) { return def.InitConfig(cp1) },
			[]string{"  - cp1\n  - 10.0.0.11\n  - 192.168.1.11\n  - cp2\n  - 192.168.1.12\n  - lb-apiserver.kubernetes.local\n  - 127.0.0.1\n  - localhost\n"}, nil},
		{"balancer", func() ([]byte, error) {
			return params("loadbalancer_apiserver: {address: 10.0.0.100, port: 8383}", false).InitConfig(cp1)
		}, []string{"controlPlaneEndpoint: lb-apiserver.kubernetes.local:8383", "  - lb-apiserver.kubernetes.local\n  - 10.0.0.100\n"}, nil},
		{"nftables", func() ([]byte, error) { return params("kube_proxy_mode: nftables", false).InitConfig(cp1) },
			[]string{"mode: nftables"}, []string{"strictARP"}},
		{"subnets and domain", func() ([]byte, error) {
			return params("kube_pods_subnet: 10.244.0.0/16\nkube_service_addresses: 10.96.0.0/12\ncluster_name: k8s.example.com", false).InitConfig(cp1)
		}, []string{"podSubnet: 10.244.0.0/16", "serviceSubnet: 10.96.0.0/12", "clusterCIDR: 10.244.0.0/16", "clusterDNS:\n- 10.96.0.10",
			"clusterDomain: k8s.example.com", "dnsDomain: k8s.example.com", "clusterName: k8s.example.com"}, nil},
		{"v1.36: kubeadm's own CoreDNS", func() ([]byte, error) { return params("kube_version: v1.36.3", false).InitConfig(cp1) },
			[]string{"kubernetesVersion: v1.36.3"}, []string{"imageTag"}},
		{"v1.37: the table's CoreDNS", func() ([]byte, error) { return params("kube_version: v1.37.2", false).InitConfig(cp1) },
			[]string{"kubernetesVersion: v1.37.2", "dns:\n  imageTag: " + mustVersions(t, "v1.37.2").CoreDNS}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			y, err := tc.make()
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tc.has {
				if !strings.Contains(string(y), s) {
					t.Errorf("no %q in\n%s", s, y)
				}
			}
			for _, s := range tc.lacks {
				if strings.Contains(string(y), s) {
					t.Errorf("%q in\n%s", s, y)
				}
			}
			// kubeadm v1.36 warns about other minors: those are not validated.
			other := strings.Contains(string(y), "kubernetesVersion:") && !strings.Contains(string(y), "kubernetesVersion: v1.36.")
			if kubeadm != "" && !other {
				file := filepath.Join(t.TempDir(), "kubeadm.yaml")
				if err := os.WriteFile(file, y, 0o644); err != nil {
					t.Fatal(err)
				}
				validate(t, kubeadm, file)
			}
		})
	}
}

func mustVersions(t *testing.T, kube string) bundle.Versions {
	v, err := bundle.VersionsFor(kube)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestConfigErrors(t *testing.T) {
	cl := clusterWith(t, "")
	p, err := ParamsFrom(cl, false)
	if err != nil {
		t.Fatal(err)
	}
	w1 := cl.Nodes[2]
	for _, tc := range []struct {
		name string
		make func() ([]byte, error)
		want string
	}{
		{"init on a worker", func() ([]byte, error) { return p.InitConfig(w1) }, "host w1: not a control-plane host"},
		{"control-plane join of a worker", func() ([]byte, error) { return p.JoinConfig(w1, true, testToken) }, "host w1: not a control-plane host"},
		{"bad token", func() ([]byte, error) { return p.JoinConfig(w1, false, "abcdef0123456789abcdef") }, "host w1: the bootstrap token"},
		{"discovery without a CA", func() ([]byte, error) { return p.DiscoveryConfig(nil) }, "discovery kubeconfig: no cluster CA certificate"},
		{"discovery with a bad CA", func() ([]byte, error) { return p.DiscoveryConfig([]byte("not PEM")) }, "discovery kubeconfig:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.make()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestAPIServerEtcdServers has the real kubeadm write the apiserver's
// static pod (init phase control-plane apiserver, dry run): one
// --etcd-servers, the local member when every control plane is an etcd
// member (the lab's layout), every member otherwise (testHosts: cp2 is
// not one).
func TestAPIServerEtcdServers(t *testing.T) {
	kubeadm := findKubeadm(t)
	if kubeadm == "" {
		t.Skip(noKubeadm)
	}
	lab, err := ParamsFrom(labCluster(t), true)
	if err != nil {
		t.Fatal(err)
	}
	cl := clusterWith(t, "")
	other, err := ParamsFrom(cl, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		p    *Params
		node *inventory.Node
		want string
	}{
		{"every control plane an etcd member", lab, node(t, labCluster(t), "node1"), "--etcd-servers=" + LocalEtcdServer},
		{"a control plane outside etcd", other, cl.Nodes[0], "--etcd-servers=https://10.0.0.11:2379"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := tc.p.InitConfig(tc.node)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			file := filepath.Join(dir, "kubeadm.yaml")
			if err := os.WriteFile(file, cfg, 0o600); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, "out")
			cmd := exec.Command(kubeadm, "init", "phase", "control-plane", "apiserver", "--dry-run", "--config", file)
			cmd.Env = append(os.Environ(), "KUBEADM_INIT_DRYRUN_DIR="+out)
			if msg, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("kubeadm: %v\n%s", err, msg)
			}
			manifest, err := os.ReadFile(filepath.Join(out, "kube-apiserver.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			flags := regexp.MustCompile(`(?m)^\s+- (--etcd-servers=\S+)$`).FindAllStringSubmatch(string(manifest), -1)
			if len(flags) != 1 || flags[0][1] != tc.want {
				t.Errorf("etcd servers %v, want %s", flags, tc.want)
			}
		})
	}
}
