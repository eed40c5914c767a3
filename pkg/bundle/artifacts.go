// Package bundle gathers everything a node needs into one directory (the
// binaries, the container images, later the OS packages), checks every
// hash, and describes it in a manifest: air-gapped sites carry it in.
package bundle

import (
	"fmt"
	"sort"
	"strings"
)

// DefaultKubeVersion is the Kubernetes release metalk8s installs.
const DefaultKubeVersion = "v1.34.4"

// Versions are the components of one Kubernetes release.
type Versions struct {
	Kube       string `json:"kube"`
	Etcd       string `json:"etcd"`
	CoreDNS    string `json:"coredns"`
	Pause      string `json:"pause"`
	Containerd string `json:"containerd"`
	Runc       string `json:"runc"`
	Crictl     string `json:"crictl"`
	CNI        string `json:"cni"`
}

// known pairs a Kubernetes minor release with the versions kubeadm expects.
var known = map[string]Versions{
	"v1.34": {Etcd: "v3.6.5", CoreDNS: "v1.12.1", Pause: "3.10.1", Containerd: "2.1.9", Runc: "v1.3.6", Crictl: "v1.34.0", CNI: "v1.7.1"},
}

// VersionsFor returns the component versions for a Kubernetes version.
func VersionsFor(kube string) (Versions, error) {
	if !strings.HasPrefix(kube, "v") {
		kube = "v" + kube
	}
	parts := strings.SplitN(kube, ".", 3)
	if len(parts) != 3 {
		return Versions{}, fmt.Errorf("kube_version %q: want vMAJOR.MINOR.PATCH", kube)
	}
	v, ok := known[parts[0]+"."+parts[1]]
	if !ok {
		var minors []string
		for m := range known {
			minors = append(minors, m)
		}
		sort.Strings(minors)
		return Versions{}, fmt.Errorf("kube_version %s: metalk8s knows the components of %s only", kube, strings.Join(minors, ", "))
	}
	v.Kube = kube
	return v, nil
}

// Artifact is one file fetched from a release site.
type Artifact struct {
	Name string   // "kubeadm", "etcd"
	Host string   // the release site: "dl.k8s.io"
	Path string   // its path there
	Sums []string // checksum files tried: suffixes (".sha256") or names beside it ("runc.sha256sum")
	Dest string   // where it goes in the bundle
	Mode uint32
}

// Artifacts lists the binaries and archives of a release.
func Artifacts(v Versions) []Artifact {
	var out []Artifact
	for _, b := range []string{"kubeadm", "kubelet", "kubectl"} {
		out = append(out, Artifact{Name: b, Host: "dl.k8s.io",
			Path: fmt.Sprintf("release/%s/bin/linux/amd64/%s", v.Kube, b),
			Sums: []string{".sha256"}, Dest: "bin/" + b, Mode: 0o755})
	}
	gh := func(name, repo, tag, file string, sums ...string) Artifact {
		return Artifact{Name: name, Host: "github.com", Path: fmt.Sprintf("%s/releases/download/%s/%s", repo, tag, file),
			Sums: sums, Dest: "archives/" + file, Mode: 0o644}
	}
	out = append(out,
		gh("etcd", "etcd-io/etcd", v.Etcd, fmt.Sprintf("etcd-%s-linux-amd64.tar.gz", v.Etcd), ".sha256"),
		gh("containerd", "containerd/containerd", "v"+v.Containerd, fmt.Sprintf("containerd-%s-linux-amd64.tar.gz", v.Containerd), ".sha256", ".sha256sum"),
		Artifact{Name: "runc", Host: "github.com", Path: fmt.Sprintf("opencontainers/runc/releases/download/%s/runc.amd64", v.Runc),
			Sums: []string{"runc.sha256sum", ".sha256"}, Dest: "bin/runc", Mode: 0o755},
		gh("crictl", "kubernetes-sigs/cri-tools", v.Crictl, fmt.Sprintf("crictl-%s-linux-amd64.tar.gz", v.Crictl), ".sha256"),
		gh("cni-plugins", "containernetworking/plugins", v.CNI, fmt.Sprintf("cni-plugins-linux-amd64-%s.tgz", v.CNI), ".sha256"),
	)
	return out
}

// Images lists the container images kubeadm needs for a release, by
// their upstream names. etcd is not one: it runs from its binary under
// systemd, as kubeadm's external etcd.
func Images(v Versions) []string {
	reg := "registry.k8s.io/"
	var out []string
	for _, c := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy"} {
		out = append(out, reg+c+":"+v.Kube)
	}
	return append(out, reg+"coredns/coredns:"+v.CoreDNS, reg+"pause:"+v.Pause)
}

// PauseImage is the sandbox image containerd must use.
func PauseImage(v Versions) string { return "registry.k8s.io/pause:" + v.Pause }
