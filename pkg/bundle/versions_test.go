package bundle

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

func TestVersionsFor(t *testing.T) {
	for _, c := range []struct {
		in, kube, pause, coredns, err string
	}{
		{in: "v1.36.3", kube: "v1.36.3", pause: "3.10.2", coredns: "v1.14.2"},
		{in: "1.36.3", kube: "v1.36.3", pause: "3.10.2", coredns: "v1.14.2"},
		{in: "v1.35.4", kube: "v1.35.4", pause: "3.10.1", coredns: "v1.13.1"},
		{in: "v1.37.2", kube: "v1.37.2", pause: "3.10.2", coredns: "v1.14.6"},
		{in: "v1.34.4", err: "kube_version v1.34.4 is not supported: metalk8s supports Kubernetes v1.35 to v1.37"},
		{in: "v1.38.0", err: "v1.35 to v1.37"},
		{in: "v2.36.0", err: "want v1.MINOR.PATCH (supported: v1.35 to v1.37)"},
		{in: "v1.36", err: "want v1.MINOR.PATCH"},
		{in: "v1.36.x", err: "want v1.MINOR.PATCH"},
	} {
		v, err := VersionsFor(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || v.Kube != c.kube || v.Pause != c.pause || v.CoreDNS != c.coredns || PauseImage(v) != "registry.k8s.io/pause:"+c.pause {
			t.Errorf("%s: %+v %v", c.in, v, err)
		}
	}
	if _, err := VersionsFor(DefaultKubeVersion); err != nil {
		t.Errorf("the default: %v", err)
	}
}

// Every row has every component, and its etcd satisfies kubeadm's
// MinExternalEtcdVersion (3.5.24-0 in cmd/kubeadm/app/constants of 1.35 to 1.37).
func TestKnownRows(t *testing.T) {
	for minor, v := range known {
		for name, s := range map[string]string{"etcd": v.Etcd, "coredns": v.CoreDNS, "pause": v.Pause, "containerd": v.Containerd,
			"runc": v.Runc, "crictl": v.Crictl, "cni": v.CNI, "flannel": v.Flannel, "kube-network-policies": v.KubeNetworkPolicies, "haproxy": v.HAProxy} {
			if s == "" {
				t.Errorf("%s: no %s version", minor, name)
			}
		}
		if !atLeast(v.Etcd, "3.5.24") {
			t.Errorf("%s: etcd %s is older than kubeadm's minimum 3.5.24", minor, v.Etcd)
		}
	}
}

// atLeast compares dotted versions, ignoring a leading "v".
func atLeast(have, min string) bool {
	h := strings.Split(strings.TrimPrefix(have, "v"), ".")
	m := strings.Split(strings.TrimPrefix(min, "v"), ".")
	for i := range m {
		var a, b int
		if i < len(h) {
			a, _ = strconv.Atoi(h[i])
		}
		b, _ = strconv.Atoi(m[i])
		if a != b {
			return a > b
		}
	}
	return true
}

func TestImages(t *testing.T) {
	v, err := VersionsFor("v1.36.3")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"registry.k8s.io/kube-apiserver:v1.36.3",
		"registry.k8s.io/kube-controller-manager:v1.36.3",
		"registry.k8s.io/kube-scheduler:v1.36.3",
		"registry.k8s.io/kube-proxy:v1.36.3",
		"registry.k8s.io/coredns/coredns:v1.14.2",
		"registry.k8s.io/pause:3.10.2",
		"ghcr.io/flannel-io/flannel:v0.28.10",
		"registry.k8s.io/networking/kube-network-policies:v0.8.0",
		"docker.io/library/haproxy:2.6.12",
		"registry.k8s.io/e2e-test-images/agnhost:2.63.0",
	}
	if got := strings.Join(Images(v), "\n"); got != strings.Join(want, "\n") {
		t.Errorf("images:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	a := v.AddonImages()
	// the charts' images are not in Images: rendering the charts finds them
	if a.Flannel != want[6] || a.KubeNetworkPolicies != want[7] || a.HAProxy != want[8] ||
		a.MetricsServer != "registry.k8s.io/metrics-server/metrics-server:v0.8.0" || a.Headlamp != "ghcr.io/headlamp-k8s/headlamp:v0.45.0" {
		t.Errorf("addon images: %+v", a)
	}
	v.HAProxy = ""
	if l := v.AddonImages().List(); len(l) != 3 {
		t.Errorf("an empty version still gives an image: %v", l)
	}
}

// test/lab/artifacts/versions.sh copies the table for the lab's build:
// source it with bash for each minor and compare.
func TestVersionsShell(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	const script = "../../test/lab/artifacts/versions.sh"
	var vars []string
	for _, kv := range (Versions{}).ShellVars() {
		vars = append(vars, kv[0])
	}
	source := func(kube string) (map[string]string, error) {
		cmd := exec.Command(bash, "-c", `set -e; . "$0"; for n in "${@}"; do printf '%s=%s\n' "$n" "${!n}"; done`, script)
		cmd.Args = append(cmd.Args, vars...)
		cmd.Env = []string{"PATH=/usr/bin:/bin"}
		if kube != "" {
			cmd.Env = append(cmd.Env, "KUBE_VERSION="+kube)
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			return nil, &exec.ExitError{Stderr: out}
		}
		got := map[string]string{}
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			k, v, _ := strings.Cut(l, "=")
			got[k] = v
		}
		return got, nil
	}
	row := func(v Versions) map[string]string {
		out := map[string]string{}
		for _, kv := range v.ShellVars() {
			out[kv[0]] = kv[1]
		}
		return out
	}
	kubes := []string{""} // "": versions.sh's own default
	for minor := range known {
		kubes = append(kubes, minor+".0")
	}
	for _, kube := range kubes {
		want := DefaultKubeVersion
		if kube != "" {
			want = kube
		}
		v, err := VersionsFor(want)
		if err != nil {
			t.Fatal(err)
		}
		got, err := source(kube)
		if err != nil {
			t.Fatalf("KUBE_VERSION=%q: versions.sh: %s", kube, err.(*exec.ExitError).Stderr)
		}
		for k, w := range row(v) {
			if got[k] != w {
				t.Errorf("KUBE_VERSION=%q: versions.sh sets %s=%q, pkg/bundle says %q", kube, k, got[k], w)
			}
		}
	}
	if _, err := source("v1.34.4"); err == nil {
		t.Error("versions.sh accepts v1.34.4, which pkg/bundle does not support")
	}
}
