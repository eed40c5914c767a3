package kubeadm

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/metalk8s/metalk8s/pkg/ssh"
)

// TestPatchesKubeadm has the real kubeadm write the kube-apiserver
// manifest (init phase, dry run) with the files PatchFiles makes, in the
// directory InitConfig names.
func TestPatchesKubeadm(t *testing.T) {
	kubeadm := findKubeadm(t)
	if kubeadm == "" {
		t.Skip(noKubeadm)
	}
	if os.Geteuid() != 0 {
		t.Skip("kubeadm init phases (even a dry run) need root")
	}
	cl := clusterWith(t, `kubeadm_patches:
  - target: kube-apiserver
    patch: {spec: {containers: [{name: kube-apiserver, livenessProbe: {failureThreshold: 31}}]}}
  - target: kube-apiserver
    type: json
    patch: [{op: add, path: /metadata/annotations/metalk8s.test~1second, value: "applied"}]
  - target: kubeletconfiguration
    type: merge
    patch: {maxPods: 42}`)
	p, err := ParamsFrom(cl, true)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p.PatchesDir = filepath.Join(dir, "patches")
	files, err := p.PatchFiles()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f.Path))
		if err := os.MkdirAll(filepath.Dir(f.Path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f.Path, f.Data, f.Mode); err != nil {
			t.Fatal(err)
		}
	}
	if want := "kube-apiserver000+strategic.yaml kube-apiserver001+json.yaml kubeletconfiguration002+merge.yaml"; strings.Join(names, " ") != want {
		t.Errorf("patch files %q, want %q", names, want)
	}
	cfg, err := p.InitConfig(cl.ControlPlane[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cfg), "patches:\n  directory: "+p.PatchesDir+"\n") {
		t.Errorf("init configuration does not name the patches directory:\n%s", cfg)
	}
	conf := filepath.Join(dir, "init.yaml")
	if err := os.WriteFile(conf, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(kubeadm, "init", "phase", "control-plane", "apiserver", "--config", conf, "--dry-run")
	dry := filepath.Join(dir, "dry-run")
	cmd.Env = append(os.Environ(), "KUBEADM_INIT_DRYRUN_DIR="+dry)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kubeadm init phase control-plane apiserver --dry-run: %v\n%s", err, out)
	}
	out, err := os.ReadFile(filepath.Join(dry, "kube-apiserver.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"failureThreshold: 31", "metalk8s.test/second: applied"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("kubeadm's kube-apiserver manifest lacks %q:\n%s", want, out)
		}
	}
}

func TestPatchesErrors(t *testing.T) {
	for vars, want := range map[string]string{
		"kubeadm_patches: {target: etcd}":                              "must be a list",
		"kubeadm_patches: [{target: kubelet, patch: {}}]":              "target kubelet is not one of",
		"kubeadm_patches: [{target: etcd, type: yaml, patch: {}}]":     "type yaml is not one of",
		"kubeadm_patches: [{target: etcd, type: json, patch: {a: 1}}]": "a list of operations for type json",
		"kubeadm_patches: [{target: etcd, patch: {}, typo: 1}]":        `unknown key "typo"`,
		"kubeadm_patches_dir: patches":                                 "absolute path",
	} {
		_, err := ParamsFrom(clusterWith(t, vars), true)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "host cp1") {
			t.Errorf("%s: error %v, want one naming host cp1 and saying %q", vars, err, want)
		}
	}
}

// One remote command tells whether kubelet.service is enabled and which
// files of the patches directory kubeadm_patches no longer names, through
// the real sh, systemctl and ls (kubelet is not installed on this machine).
func TestKubeletState(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "patches dir")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"kube-apiserver000+strategic.yaml", "etcd001+json.yaml"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	keep := []ssh.File{{Path: filepath.Join(dir, "kube-apiserver000+strategic.yaml")}}
	enabled, stale, err := kubeletState(context.Background(), localHost{}, dir, keep)
	if err != nil {
		t.Fatal(err)
	}
	if enabled {
		t.Errorf("kubelet.service reported enabled on a machine without it")
	}
	if want := []string{filepath.Join(dir, "etcd001+json.yaml")}; !slices.Equal(stale, want) {
		t.Errorf("stale %q, want %q", stale, want)
	}
	if _, stale, _ := kubeletState(context.Background(), localHost{}, filepath.Join(dir, "missing"), nil); len(stale) != 0 {
		t.Errorf("a missing directory has stale files %q", stale)
	}
}
