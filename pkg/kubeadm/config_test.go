package kubeadm

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/metalk8s/metalk8s/pkg/inventory"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const (
	testToken = "abcdef.0123456789abcdef"
	testHash  = "sha256:0000000000000000000000000000000000000000000000000000000000000001"
)

func labCluster(t *testing.T) *inventory.Cluster {
	t.Helper()
	inv, err := inventory.Load("testdata/hosts.ini")
	if err != nil {
		t.Fatal(err)
	}
	cl, err := inventory.NewCluster(inv)
	if err != nil {
		t.Fatal(err)
	}
	return cl
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
			return p.JoinConfig(node(t, cl, "node2"), true, testToken, []string{testHash})
		}},
		{"join-worker-node4.yaml", func() ([]byte, error) {
			return p.JoinConfig(node(t, cl, "node4"), false, testToken, []string{testHash})
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
// complaint, unknown or duplicate fields included.
func validate(t *testing.T, kubeadm, file string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(kubeadm, "config", "validate", "--config", file)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kubeadm config validate %s: %v\n%s%s", file, err, stdout.String(), stderr.String())
	}
	for _, bad := range []string{"unknown field", "strict decoding", "duplicate field", "WARNING", "W0", "E0"} {
		if strings.Contains(stderr.String()+stdout.String(), bad) {
			t.Errorf("kubeadm config validate %s says %q:\n%s%s", file, bad, stdout.String(), stderr.String())
		}
	}
	if !strings.Contains(stdout.String(), "ok") {
		t.Errorf("kubeadm config validate %s: no ok:\n%s%s", file, stdout.String(), stderr.String())
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
