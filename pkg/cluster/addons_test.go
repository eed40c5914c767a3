package cluster

import (
	"path"
	"reflect"
	"testing"

	"github.com/metalk8s/metalk8s/internal/testinv"
	"github.com/metalk8s/metalk8s/pkg/bundle"
	"github.com/metalk8s/metalk8s/pkg/etcd"
	"github.com/metalk8s/metalk8s/pkg/node"
)

const addonHosts = `[kube-master]
cp1 ansible_host=192.168.1.11
[etcd]
cp1
[kube-node]
cp1
[k8s-cluster:children]
kube-master
kube-node
`

// What bundle build pulls for the addons follows the inventory's values.
func TestAddonImages(t *testing.T) {
	v, err := bundle.VersionsFor(bundle.DefaultKubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	im := v.AddonImages()
	ms, hl, tr := im.MetricsServer, im.Headlamp, im.Traefik
	mon := []string{im.PrometheusConfigReloader, im.PrometheusOperator, im.Alertmanager, im.Prometheus, im.KubeStateMetrics} // sorted
	vl, va := im.VictoriaLogs, im.Vlagent
	with := func(imgs ...string) []string {
		return append(append([]string{im.Grafana, tr, vl, va, hl}, mon...), imgs...)
	}
	for _, c := range []struct {
		what, vars string
		want       []string
	}{
		{"no inventory", "-", with(ms)},
		{"no addon variable", "", with(ms)},
		{"another tag", "metalk8s_metrics_server_values: {image: {tag: v0.8.1}}", with("registry.k8s.io/metrics-server/metrics-server:v0.8.1")},
		{"disabled", "metalk8s_metrics_server_enabled: false", with()},
		{"disabled, kubespray's name", "metrics_server_enabled: no", with()},
		{"monitoring disabled", "metalk8s_monitoring_enabled: false", []string{tr, vl, va, hl, ms}},
		{"Grafana disabled", "metalk8s_monitoring_values: {grafana: {enabled: false}}", append(append([]string{tr, vl, va, hl}, mon...), ms)},
		{"logging disabled, MetalK8s 0.x's name", "metalk8s_elasticsearch_enabled: false", append(append([]string{im.Grafana, tr, hl}, mon...), ms)},
		{"all disabled", "metrics_server_enabled: no\nmetalk8s_headlamp_enabled: false\nmetalk8s_traefik_enabled: false\nmetalk8s_monitoring_enabled: false\nmetalk8s_logging_enabled: false", []string{}},
	} {
		var got []string
		if c.vars == "-" {
			got, err = AddonImages(nil, v)
		} else {
			got, err = AddonImages(testinv.Cluster(t, addonHosts, map[string]string{"group_vars/all.yml": c.vars + "\n"}), v)
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %q, %v; want %q", c.what, got, err, c.want)
		}
	}
	cl := testinv.Cluster(t, addonHosts, map[string]string{"group_vars/all.yml": "metalk8s_metrics_server_values: {replicas: two}\n"})
	if _, err := AddonImages(cl, v); err == nil {
		t.Error("values the chart's schema refuses: no error")
	}
}

// node_exporter's binary is left out of the bundle's needs only when the
// inventory turns it off.
func TestBundleVersions(t *testing.T) {
	v, err := bundle.VersionsFor(bundle.DefaultKubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what, vars string
		want       string
	}{
		{"no inventory", "-", v.NodeExporter},
		{"no variable", "", v.NodeExporter},
		{"monitoring disabled", "metalk8s_monitoring_enabled: false", ""},
		{"node-exporter disabled", "metalk8s_node_exporter_enabled: no", ""},
		{"monitoring off, node-exporter on", "metalk8s_monitoring_enabled: false\nmetalk8s_node_exporter_enabled: true", v.NodeExporter},
	} {
		var got bundle.Versions
		if c.vars == "-" {
			got, err = BundleVersions(nil, v)
		} else {
			got, err = BundleVersions(testinv.Cluster(t, addonHosts, map[string]string{"group_vars/all.yml": c.vars + "\n"}), v)
		}
		if err != nil || got.NodeExporter != c.want || got.Kube != v.Kube {
			t.Errorf("%s: node_exporter %q (kube %s), %v; want %q", c.what, got.NodeExporter, got.Kube, err, c.want)
		}
	}
	cl := testinv.Cluster(t, addonHosts, map[string]string{"group_vars/all.yml": "metalk8s_monitoring_enabled: maybe\n"})
	if _, err := BundleVersions(cl, v); err == nil {
		t.Error("metalk8s_monitoring_enabled: maybe: no error")
	}
}

// The etcd certificates' expiry metrics land where node-exporter reads.
func TestCertMetricsInTextfileDir(t *testing.T) {
	if d := path.Dir(etcd.CertMetricsFile); d != node.TextfileDir {
		t.Errorf("etcd.CertMetricsFile is in %s, node-exporter reads %s", d, node.TextfileDir)
	}
}
