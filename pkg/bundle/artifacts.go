// Package bundle gathers everything a node needs into one directory (the
// binaries, the container images, later the OS packages), checks every
// hash, and describes it in a manifest: air-gapped sites carry it in.
package bundle

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// DefaultKubeVersion is the Kubernetes release metalk8s installs: the
// newest v1.36 patch the Go module proxy serves (the lab builds from it).
const DefaultKubeVersion = "v1.36.3"

// Versions are the components of one Kubernetes release. Kubernetes,
// etcd, CoreDNS, crictl, the CNI plugins, runc and flannel carry their
// tags' "v"; containerd, pause and HAProxy do not, as upstream tags them.
type Versions struct {
	Kube       string `json:"kube"`
	Etcd       string `json:"etcd"`
	CoreDNS    string `json:"coredns"`
	Pause      string `json:"pause"`
	Containerd string `json:"containerd"`
	Runc       string `json:"runc"`
	Crictl     string `json:"crictl"`
	CNI        string `json:"cni"`
	// The add-ons' images (AddonImages).
	Flannel             string `json:"flannel,omitempty"`
	KubeNetworkPolicies string `json:"kube_network_policies,omitempty"`
	HAProxy             string `json:"haproxy,omitempty"`
	MetricsServer       string `json:"metrics_server,omitempty"`
	// Headlamp is the web UI's image (assets/charts/headlamp); the lab
	// cannot build it (not on the Go proxy or npm as a server).
	Headlamp string `json:"headlamp,omitempty"`
	// Traefik is the ingress controller's image (assets/charts/traefik).
	Traefik string `json:"traefik,omitempty"`
	// Helm is the helm CLI the bundle carries for operators (bin/helm):
	// the version of the Helm SDK metalk8s installs addons with.
	Helm string `json:"helm,omitempty"`
	// The monitoring addon's images (assets/charts/monitoring):
	// prometheus-operator (and its config reloader), Prometheus and
	// Alertmanager.
	PrometheusOperator string `json:"prometheus_operator,omitempty"`
	Prometheus         string `json:"prometheus,omitempty"`
	Alertmanager       string `json:"alertmanager,omitempty"`
	// Grafana is the monitoring addon's dashboards; the lab cannot build
	// it (neither its server nor its frontend is on the Go proxy or npm).
	Grafana string `json:"grafana,omitempty"`
	// KubeStateMetrics is the monitoring addon's kube-state-metrics; the
	// lab cannot build it (its module is not on the Go proxy).
	KubeStateMetrics string `json:"kube_state_metrics,omitempty"`
	// NodeExporter is Prometheus's node_exporter, a systemd service on
	// every node when monitoring is enabled (bin/node_exporter).
	NodeExporter string `json:"node_exporter,omitempty"`
	// VictoriaLogs is the logging addon's store and its collector
	// (vlagent), one release (assets/charts/logging).
	VictoriaLogs string `json:"victoria_logs,omitempty"`
	// Agnhost is Kubernetes' own e2e test image, which metalk8s verify's
	// test pods run (netexec: DNS, Services, NetworkPolicy, ingress).
	Agnhost string `json:"agnhost,omitempty"`
}

// ShellVars are v as test/lab/artifacts/versions.sh names them, in its
// order: [NAME, VALUE] pairs ("KUBE_VERSION", "v1.36.3"); containerd gets
// its tag's "v".
func (v Versions) ShellVars() [][2]string {
	return [][2]string{{"KUBE_VERSION", v.Kube}, {"ETCD_VERSION", v.Etcd}, {"COREDNS_VERSION", v.CoreDNS},
		{"PAUSE_VERSION", v.Pause}, {"CONTAINERD_VERSION", "v" + v.Containerd}, {"RUNC_VERSION", v.Runc},
		{"CRICTL_VERSION", v.Crictl}, {"CNI_PLUGINS_VERSION", v.CNI}, {"FLANNEL_VERSION", v.Flannel},
		{"KUBE_NETWORK_POLICIES_VERSION", v.KubeNetworkPolicies}, {"HAPROXY_VERSION", v.HAProxy},
		{"METRICS_SERVER_VERSION", v.MetricsServer}, {"HELM_VERSION", v.Helm}, {"TRAEFIK_VERSION", v.Traefik},
		{"NODE_EXPORTER_VERSION", v.NodeExporter}, {"PROMETHEUS_OPERATOR_VERSION", v.PrometheusOperator},
		{"PROMETHEUS_VERSION", v.Prometheus}, {"ALERTMANAGER_VERSION", v.Alertmanager},
		{"VICTORIA_LOGS_VERSION", v.VictoriaLogs}, {"AGNHOST_VERSION", v.Agnhost}}
}

// known pairs each supported Kubernetes minor with its components; it is
// the only place versions are written (test/lab/artifacts/versions.sh is
// checked against it by TestVersionsShell).
//
//   - CoreDNS and pause: kubeadm's CoreDNSVersion and PauseVersion
//     (cmd/kubeadm/app/constants/constants.go of v1.35.4, v1.36.3, v1.37.2).
//   - etcd runs from its binary, as kubeadm's external etcd: it must be at
//     least kubeadm's MinExternalEtcdVersion (3.5.24 for all three); v3.6.16
//     is the newest 3.6 patch.
//   - containerd: the 2.3 long-term line; runc: what containerd v2.3.7 pins
//     in script/setup/runc-version.
//   - crictl: cri-tools of the same minor (no v1.35.x is published on the
//     Go proxy: v1.36.0, one minor of skew, which cri-tools supports).
//   - HAProxy: Debian 12's haproxy package, from which the lab builds it.
//   - metrics-server: v0.8.0, the newest the Go module proxy serves that
//     was tried here (assets/charts/metrics-server runs it).
//   - Headlamp: v0.45.0, the newest release known here (Homebrew's cask,
//     2026); its image is published on ghcr.io, which the lab cannot reach.
//   - Traefik: v3.7.13, the newest v3 the Go module proxy serves (the lab
//     builds it, with the modules the proxy refuses stubbed out:
//     test/lab/artifacts/README.md).
//   - node_exporter: v1.12.1, the newest the Go module proxy serves.
//   - prometheus-operator: v0.85.0, the only version of its module the
//     Go module proxy serves; it supports Prometheus up to 3.5 (v3.5.1,
//     the module's v0.305.1). Alertmanager: v0.28.1.
//   - Grafana: 13.2.3, the newest release (its @grafana/data package on
//     npm, published 2026-09-29); its image is on Docker Hub.
//   - kube-state-metrics: the release its compatibility table pairs with
//     each minor (v2.19.0: 1.35, v2.20.0: 1.36; v2.20.0, the newest, for
//     1.37); its image is on registry.k8s.io.
//   - VictoriaLogs (and vlagent): v1.52.2, the newest the Go module proxy
//     serves; images on Docker Hub.
//   - agnhost: 2.63.0, test/images/agnhost/VERSION of Kubernetes v1.36.3
//     (built from that module), for every minor: verify's pods use only
//     its netexec server, stable across its releases.
//   - helm: go.mod's helm.sh/helm/v4, the SDK that installs the addons, so
//     `helm list` and `helm history` read its releases as it wrote them
//     (TestHelmMatchesSDK).
var known = map[string]Versions{
	"v1.35": {Etcd: "v3.6.16", CoreDNS: "v1.13.1", Pause: "3.10.1", Containerd: "2.3.7", Runc: "v1.5.2", Crictl: "v1.36.0", CNI: "v1.9.1",
		Flannel: "v0.28.10", KubeNetworkPolicies: "v0.8.0", HAProxy: "2.6.12", MetricsServer: "v0.8.0", Headlamp: "v0.45.0", Helm: "v4.2.4",
		Traefik: "v3.7.13", NodeExporter: "v1.12.1", PrometheusOperator: "v0.85.0", Prometheus: "v3.5.1", Alertmanager: "v0.28.1", Grafana: "13.2.3", KubeStateMetrics: "v2.19.0",
		VictoriaLogs: "v1.52.2", Agnhost: "2.63.0"},
	"v1.36": {Etcd: "v3.6.16", CoreDNS: "v1.14.2", Pause: "3.10.2", Containerd: "2.3.7", Runc: "v1.5.2", Crictl: "v1.36.0", CNI: "v1.9.1",
		Flannel: "v0.28.10", KubeNetworkPolicies: "v0.8.0", HAProxy: "2.6.12", MetricsServer: "v0.8.0", Headlamp: "v0.45.0", Helm: "v4.2.4",
		Traefik: "v3.7.13", NodeExporter: "v1.12.1", PrometheusOperator: "v0.85.0", Prometheus: "v3.5.1", Alertmanager: "v0.28.1", Grafana: "13.2.3", KubeStateMetrics: "v2.20.0",
		VictoriaLogs: "v1.52.2", Agnhost: "2.63.0"},
	"v1.37": {Etcd: "v3.6.16", CoreDNS: "v1.14.6", Pause: "3.10.2", Containerd: "2.3.7", Runc: "v1.5.2", Crictl: "v1.37.0", CNI: "v1.9.1",
		Flannel: "v0.28.10", KubeNetworkPolicies: "v0.8.0", HAProxy: "2.6.12", MetricsServer: "v0.8.0", Headlamp: "v0.45.0", Helm: "v4.2.4",
		Traefik: "v3.7.13", NodeExporter: "v1.12.1", PrometheusOperator: "v0.85.0", Prometheus: "v3.5.1", Alertmanager: "v0.28.1", Grafana: "13.2.3", KubeStateMetrics: "v2.20.0",
		VictoriaLogs: "v1.52.2", Agnhost: "2.63.0"},
}

// Supported names the range of minors known holds, for messages: "v1.35 to v1.37".
func Supported() string {
	var minors []string
	for m := range known {
		minors = append(minors, m)
	}
	sort.Slice(minors, func(i, j int) bool { return minorNumber(minors[i]) < minorNumber(minors[j]) })
	return minors[0] + " to " + minors[len(minors)-1]
}

// minorNumber is 36 for "v1.36".
func minorNumber(m string) int {
	n, _ := strconv.Atoi(strings.TrimPrefix(m, "v1."))
	return n
}

// VersionsFor returns the component versions for a Kubernetes version
// ("v1.36.3" or "1.36.3"). A malformed version, or one outside the
// supported minors, is an error naming the supported range and the
// inventory variable kube_version.
func VersionsFor(kube string) (Versions, error) {
	v := "v" + strings.TrimPrefix(kube, "v")
	return versionsFor(kube, "kube_version "+strconv.Quote(v), "kube_version "+v)
}

// VersionsForFlag is VersionsFor for a version given as the command-line
// flag flag ("--kube-version"): its errors name the flag and the value as
// typed.
func VersionsForFlag(flag, kube string) (Versions, error) {
	named := flag + " " + strconv.Quote(kube)
	return versionsFor(kube, named, named)
}

// versionsFor is VersionsFor, its errors naming the version as malformed
// (for a malformed one) or unsupported.
func versionsFor(kube, malformed, unsupported string) (Versions, error) {
	if !strings.HasPrefix(kube, "v") {
		kube = "v" + kube
	}
	parts := strings.Split(kube, ".")
	if len(parts) != 3 || parts[0] != "v1" {
		return Versions{}, fmt.Errorf("%s: want v1.MINOR.PATCH (supported: %s)", malformed, Supported())
	}
	for _, p := range parts[1:] {
		if _, err := strconv.ParseUint(p, 10, 16); err != nil {
			return Versions{}, fmt.Errorf("%s: want v1.MINOR.PATCH (supported: %s)", malformed, Supported())
		}
	}
	v, ok := known[parts[0]+"."+parts[1]]
	if !ok {
		return Versions{}, fmt.Errorf("%s is not supported: metalk8s supports Kubernetes %s", unsupported, Supported())
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
	// Extract, when set, is the member of the fetched .tar.gz that goes
	// to Dest ("linux-amd64/helm"); the archive itself is not kept.
	Extract string
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
	if v.Helm != "" {
		// get.helm.sh, as scripts/get-helm-4 downloads it
		out = append(out, Artifact{Name: "helm", Host: "get.helm.sh", Path: fmt.Sprintf("helm-%s-linux-amd64.tar.gz", v.Helm),
			Sums: []string{".sha256sum", ".sha256"}, Dest: "bin/helm", Mode: 0o755, Extract: "linux-amd64/helm"})
	}
	if v.NodeExporter != "" {
		// Prometheus's release layout: one directory per archive, and a
		// sha256sums.txt for the whole release
		dir := fmt.Sprintf("node_exporter-%s.linux-amd64", strings.TrimPrefix(v.NodeExporter, "v"))
		out = append(out, Artifact{Name: "node_exporter", Host: "github.com",
			Path: fmt.Sprintf("prometheus/node_exporter/releases/download/%s/%s.tar.gz", v.NodeExporter, dir),
			Sums: []string{"sha256sums.txt"}, Dest: "bin/node_exporter", Mode: 0o755, Extract: dir + "/node_exporter"})
	}
	return out
}

// Images lists the container images a cluster of these versions runs
// outside the addons' charts, by upstream name: kubeadm's (KubeadmImages),
// then the pod network's and the apiserver proxy's (AddonImageRefs.List).
// The charts' images depend on the inventory's values: `bundle build`
// renders the charts for them (BuildOptions.Images), so nodes never pull.
func Images(v Versions) []string {
	return append(KubeadmImages(v), v.AddonImages().List()...)
}

// KubeadmImages lists what `kubeadm config images list` names for
// v.Kube, etcd excepted: etcd runs from its binary under systemd, as
// kubeadm's external etcd.
func KubeadmImages(v Versions) []string {
	reg := "registry.k8s.io/"
	var out []string
	for _, c := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy"} {
		out = append(out, reg+c+":"+v.Kube)
	}
	return append(out, reg+"coredns/coredns:"+v.CoreDNS, reg+"pause:"+v.Pause)
}

// AddonImageRefs are the images of the add-ons metalk8s deploys, as full
// upstream references.
type AddonImageRefs struct {
	Flannel             string // ghcr.io/flannel-io/flannel:v0.28.10, the pod network (flanneld at /opt/bin/flanneld)
	KubeNetworkPolicies string // registry.k8s.io/networking/kube-network-policies:v0.8.0 (/bin/netpol)
	HAProxy             string // docker.io/library/haproxy:2.6.12, the apiserver load balancer on workers (haproxy on PATH)
	// The charts' default images (assets/charts), not in List: the
	// inventory's values may change or disable them.
	MetricsServer string // registry.k8s.io/metrics-server/metrics-server:v0.8.0 (/metrics-server)
	Headlamp      string // ghcr.io/headlamp-k8s/headlamp:v0.45.0
	Traefik       string // docker.io/library/traefik:v3.7.13 (/traefik)
	// quay.io/prometheus-operator/prometheus-operator:v0.85.0 and its
	// prometheus-config-reloader, quay.io/prometheus/prometheus:v3.5.1,
	// quay.io/prometheus/alertmanager:v0.28.1, docker.io/grafana/grafana:13.2.3
	PrometheusOperator, PrometheusConfigReloader, Prometheus, Alertmanager, Grafana string
	// registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.20.0
	KubeStateMetrics string
	// registry.k8s.io/e2e-test-images/agnhost:2.63.0 (/agnhost), metalk8s
	// verify's test pods; in List, so every bundle holds it.
	Agnhost string
	// docker.io/victoriametrics/victoria-logs:v1.52.2 and
	// docker.io/victoriametrics/vlagent:v1.52.2
	VictoriaLogs, Vlagent string
}

// List returns the references metalk8s runs outside charts (flannel,
// kube-network-policies, HAProxy, agnhost) in a fixed order, leaving out
// empty ones.
func (r AddonImageRefs) List() []string {
	var out []string
	for _, s := range []string{r.Flannel, r.KubeNetworkPolicies, r.HAProxy, r.Agnhost} {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// AddonImages returns the add-ons' image references; a component whose
// version is empty gets an empty reference.
func (v Versions) AddonImages() AddonImageRefs {
	ref := func(repo, tag string) string {
		if tag == "" {
			return ""
		}
		return repo + ":" + tag
	}
	return AddonImageRefs{
		Flannel:                  ref("ghcr.io/flannel-io/flannel", v.Flannel),
		KubeNetworkPolicies:      ref("registry.k8s.io/networking/kube-network-policies", v.KubeNetworkPolicies),
		HAProxy:                  ref("docker.io/library/haproxy", v.HAProxy),
		MetricsServer:            ref("registry.k8s.io/metrics-server/metrics-server", v.MetricsServer),
		Headlamp:                 ref("ghcr.io/headlamp-k8s/headlamp", v.Headlamp),
		Traefik:                  ref("docker.io/library/traefik", v.Traefik),
		PrometheusOperator:       ref("quay.io/prometheus-operator/prometheus-operator", v.PrometheusOperator),
		PrometheusConfigReloader: ref("quay.io/prometheus-operator/prometheus-config-reloader", v.PrometheusOperator),
		Prometheus:               ref("quay.io/prometheus/prometheus", v.Prometheus),
		Alertmanager:             ref("quay.io/prometheus/alertmanager", v.Alertmanager),
		Grafana:                  ref("docker.io/grafana/grafana", v.Grafana),
		KubeStateMetrics:         ref("registry.k8s.io/kube-state-metrics/kube-state-metrics", v.KubeStateMetrics),
		VictoriaLogs:             ref("docker.io/victoriametrics/victoria-logs", v.VictoriaLogs),
		Vlagent:                  ref("docker.io/victoriametrics/vlagent", v.VictoriaLogs),
		Agnhost:                  ref("registry.k8s.io/e2e-test-images/agnhost", v.Agnhost),
	}
}

// PauseImage is the sandbox image containerd must use.
func PauseImage(v Versions) string { return "registry.k8s.io/pause:" + v.Pause }
