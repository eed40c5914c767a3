package addons

import (
	"reflect"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/metalk8s/metalk8s/assets"
	"github.com/metalk8s/metalk8s/internal/testinv"
	"github.com/metalk8s/metalk8s/pkg/inventory"
)

const testHosts = `[kube-master]
cp1 ansible_host=192.168.1.11
[etcd]
cp1
[kube-node]
w1 ansible_host=192.168.1.21
[k8s-cluster:children]
kube-master
kube-node
`

// clusterWith loads testHosts with vars as group_vars/all.yml (YAML) and
// extra files beside hosts.ini.
func clusterWith(t *testing.T, vars string, files map[string]string) *inventory.Cluster {
	t.Helper()
	files["group_vars/all.yml"] = "---\n" + vars + "\n"
	return testinv.Cluster(t, testHosts, files)
}

const (
	testImage         = "registry.k8s.io/metrics-server/metrics-server:v0.8.0"
	testHeadlampImage = "ghcr.io/headlamp-k8s/headlamp:v0.45.0"
	testTraefikImage  = "docker.io/library/traefik:v3.7.13"
)

// testMonitoringImages are the monitoring addon's (testParams'), whose
// objects name them in three ways: a Deployment's container, the
// operator's --prometheus-config-reloader and the Prometheus and
// Alertmanager objects' spec.image.
var testMonitoringImages = []string{
	"example.org/prometheus-operator:1", "example.org/prometheus-config-reloader:1",
	"example.org/prometheus:v3.5.1", "example.org/alertmanager:v0.28.1", "example.org/grafana:13.2.3", "example.org/kube-state-metrics:v2.20.0",
}

// testLoggingImages are the logging addon's (testParams').
var testLoggingImages = []string{"example.org/victoria-logs:v1.52.2", "example.org/vlagent:v1.52.2"}

// testParams are metalk8s's values for the tests' addons.
func testParams(bundled bool) Params {
	return Params{KubeVersion: "v1.36.3", Bundled: bundled, MetricsServerImage: testImage, HeadlampImage: testHeadlampImage,
		TraefikImage: testTraefikImage, PrometheusOperatorImage: testMonitoringImages[0], PrometheusConfigReloaderImage: testMonitoringImages[1],
		PrometheusImage: testMonitoringImages[2], AlertmanagerImage: testMonitoringImages[3], GrafanaImage: testMonitoringImages[4], KubeStateMetricsImage: testMonitoringImages[5],
		NodeExporters:     []Target{{Node: "node1", Address: "10.0.0.1"}, {Node: "node2", Address: "10.0.0.2"}},
		EtcdMembers:       []Target{{Node: "node1", Address: "10.0.0.1"}},
		VictoriaLogsImage: testLoggingImages[0], VlagentImage: testLoggingImages[1]}
}

// allEnabled: every addon of the catalog on.
var allEnabled = map[string]bool{"metrics-server": true, "gateway-api": true, "traefik": true, "headlamp": true, "monitoring-crds": true, "monitoring": true, "logging": true}

// find returns the object of kind and name, failing the test without it.
func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %s among %d objects", kind, name, len(objs))
	return nil
}

func container(t *testing.T, d *unstructured.Unstructured) map[string]any {
	t.Helper()
	cs, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	if len(cs) != 1 {
		t.Fatalf("%d containers", len(cs))
	}
	return cs[0].(map[string]any)
}

func TestEveryChartLoadsAndRenders(t *testing.T) {
	entries, err := assets.Charts.ReadDir("charts")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(catalog) {
		t.Errorf("%d charts in assets/charts, %d addons in the catalog", len(entries), len(catalog))
	}
	for _, c := range catalog {
		ch, err := LoadChart(assets.Charts, "charts/"+c.name)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := Render(ch, c.name, c.namespace, "v1.36.3", c.values(testParams(false), allEnabled))
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			if o.GetLabels()["app.kubernetes.io/part-of"] != "metalk8s" {
				t.Errorf("%s: %s has no part-of label", c.name, ref(o))
			}
		}
	}
}

func TestMetricsServerValues(t *testing.T) {
	cl := clusterWith(t, `metalk8s_metrics_server_values:
  replicas: 2
  kubeletInsecureTLS: false
  probes: {timeoutSeconds: 10}
  extraArgs: [--v=2]`, map[string]string{})
	as, err := FromInventory(cl, testParams(true))
	if err != nil {
		t.Fatal(err)
	}
	a := as[0]
	if a.Name != "metrics-server" || a.Namespace != "kube-system" || !a.Enabled {
		t.Fatalf("%+v", a)
	}
	objs := a.Objects
	if a.KubeVersion != "v1.36.3" {
		t.Errorf("rendered for %q, want v1.36.3", a.KubeVersion)
	}
	d := find(t, objs, "Deployment", "metrics-server")
	if n, _, _ := unstructured.NestedInt64(d.Object, "spec", "replicas"); n != 2 {
		t.Errorf("replicas %d, want the operator's 2", n)
	}
	c := container(t, d)
	if c["image"] != testImage || c["imagePullPolicy"] != "Never" {
		t.Errorf("image %v, %v; want %s from the bundle (Never)", c["image"], c["imagePullPolicy"], testImage)
	}
	args := strings.Join(toStrings(c["args"]), " ")
	if strings.Contains(args, "--kubelet-insecure-tls") || !strings.HasSuffix(args, " --v=2") {
		t.Errorf("args %q: want no --kubelet-insecure-tls and --v=2 last", args)
	}
	// probes merged key by key over the chart's
	if to, _, _ := unstructured.NestedInt64(c, "livenessProbe", "timeoutSeconds"); to != 10 {
		t.Errorf("liveness timeout %d, want the operator's 10", to)
	}
	if p, _, _ := unstructured.NestedInt64(c, "readinessProbe", "periodSeconds"); p != 10 {
		t.Errorf("readiness period %d, want the chart's 10", p)
	}
	find(t, objs, "APIService", "v1beta1.metrics.k8s.io")
	if rb := find(t, objs, "RoleBinding", "metrics-server-auth-reader"); rb.GetNamespace() != "kube-system" {
		t.Errorf("the auth reader binding is in %q, want kube-system (where the Role is)", rb.GetNamespace())
	}

	// Defaults: one replica, the kubelets' certificates not verified,
	// IfNotPresent without a bundle.
	as, err = FromInventory(clusterWith(t, "", map[string]string{}), testParams(false))
	if err != nil {
		t.Fatal(err)
	}
	d = find(t, as[0].Objects, "Deployment", "metrics-server")
	c = container(t, d)
	if n, _, _ := unstructured.NestedInt64(d.Object, "spec", "replicas"); n != 1 || c["imagePullPolicy"] != "IfNotPresent" ||
		!strings.Contains(strings.Join(toStrings(c["args"]), " "), "--kubelet-insecure-tls") {
		t.Errorf("defaults: replicas %d, pull %v, args %v", n, c["imagePullPolicy"], c["args"])
	}
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

func TestInventoryVariables(t *testing.T) {
	p := testParams(false)
	cl := clusterWith(t, "metalk8s_metrics_server_enabled: no\nmetalk8s_metrics_server_values: ms.yaml",
		map[string]string{"ms.yaml": "replicas: 3\nimage:\n  tag: v9\n"})
	as, err := FromInventory(cl, p)
	if err != nil {
		t.Fatal(err)
	}
	if as[0].Enabled {
		t.Error("metalk8s_metrics_server_enabled: no left it enabled")
	}
	want := map[string]any{"replicas": float64(3) /* sigs.k8s.io/yaml: JSON numbers */, "image": map[string]any{"repository": "registry.k8s.io/metrics-server/metrics-server", "tag": "v9"}}
	if !reflect.DeepEqual(as[0].Values, want) {
		t.Errorf("values %v, want the file's over metalk8s's: %v", as[0].Values, want)
	}

	for _, tc := range []struct{ vars, want string }{
		{"metalk8s_metrics_server_enabled: maybe", "host cp1: variable metalk8s_metrics_server_enabled: must be a boolean"},
		{"metalk8s_metrics_server_values: absent.yaml", "host cp1: variable metalk8s_metrics_server_values: values file: open "},
		{"metalk8s_metrics_server_values: [1, 2]", "must be a dict of chart values or the path of a values file"},
		{"metalk8s_metrics_server_values: bad.yaml", "values file " /* names the file */},
		{"metalk8s_metrics_server_values: {replicas: two}", "host cp1: variable metalk8s_metrics_server_values: addons: chart metrics-server: values: "},
		{"metrics_server_enabled: maybe", "host cp1: variable metrics_server_enabled: must be a boolean"},
	} {
		_, err := FromInventory(clusterWith(t, tc.vars, map[string]string{"bad.yaml": "replicas: [\n"}), p)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "group_vars/all.yml") {
			t.Errorf("%s: error %v, want one with %q naming where it was set", tc.vars, err, tc.want)
		}
	}

	// kubespray's variable, when metalk8s's is unset; metalk8s's wins.
	for vars, want := range map[string]bool{
		"metrics_server_enabled: false":                                        false,
		"metrics_server_enabled: false\nmetalk8s_metrics_server_enabled: true": true,
	} {
		as, err := FromInventory(clusterWith(t, vars, map[string]string{}), p)
		if err != nil || as[0].Enabled != want {
			t.Errorf("%q: %v; want enabled %v", vars, err, want)
		}
	}

	// A value that renders wrong is the chart's error, naming the chart.
	ch, err := LoadChart(assets.Charts, "charts/metrics-server")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Render(ch, "m", "kube-system", "v1.36.3", map[string]any{"replicas": "two"}); err == nil || !strings.Contains(err.Error(), "chart metrics-server") {
		t.Errorf("a bad value: %v, want an error naming the chart", err)
	}
	if _, err := Render(ch, "m", "kube-system", "v1.34.2", nil); err == nil || !strings.Contains(err.Error(), "kubeVersion") {
		t.Errorf("Kubernetes 1.34: %v, want the chart's kubeVersion refusal", err)
	}
}

func TestCheckImages(t *testing.T) {
	as, err := FromInventory(clusterWith(t, "", map[string]string{}), testParams(true))
	if err != nil {
		t.Fatal(err)
	}
	if got := Images(as[0].Objects); !reflect.DeepEqual(got, []string{testImage}) {
		t.Errorf("images %q, want [%s]", got, testImage)
	}
	others := append(append([]string{"registry.k8s.io/pause:3.10.2", testHeadlampImage, testTraefikImage}, testMonitoringImages...), testLoggingImages...)
	if err := CheckImages(as, append(others, testImage), "/b"); err != nil {
		t.Errorf("a complete bundle: %v", err)
	}
	mon := as[len(as)-2]
	want := append([]string(nil), testMonitoringImages...)
	sort.Strings(want)
	if got := Images(mon.Objects); mon.Name != "monitoring" || !reflect.DeepEqual(got, want) {
		t.Errorf("the %s addon's images %q, want %q", mon.Name, got, want)
	}
	if lg := as[len(as)-1]; lg.Name != "logging" || !reflect.DeepEqual(Images(lg.Objects), testLoggingImages) {
		t.Errorf("the %s addon's images %q, want %q", lg.Name, Images(lg.Objects), testLoggingImages)
	}
	err = CheckImages(as, others, "/b")
	if err == nil || !strings.Contains(err.Error(), "the bundle /b lacks") ||
		!strings.Contains(err.Error(), testImage+" (addon metrics-server, chart metrics-server 0.1.0)") {
		t.Errorf("a bundle without metrics-server's image: %v", err)
	}
	for _, a := range as {
		a.Enabled = false
	}
	if err := CheckImages(as, nil, "/b"); err != nil {
		t.Errorf("a disabled addon needs no image: %v", err)
	}
}
