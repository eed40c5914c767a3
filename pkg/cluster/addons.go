package cluster

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/metalk8s/metalk8s/pkg/addons"
	"github.com/metalk8s/metalk8s/pkg/bundle"
	"github.com/metalk8s/metalk8s/pkg/etcd"
	"github.com/metalk8s/metalk8s/pkg/inventory"
)

// addonParams are metalk8s's own values for the addons of a release v,
// with the node-exporter services of exporters and cl's etcd members
// (cl nil: none).
func addonParams(cl *inventory.Cluster, v bundle.Versions, bundled bool, exporters []addons.Target) addons.Params {
	images := v.AddonImages()
	return addons.Params{KubeVersion: v.Kube, Bundled: bundled, MetricsServerImage: images.MetricsServer, HeadlampImage: images.Headlamp,
		TraefikImage: images.Traefik, PrometheusOperatorImage: images.PrometheusOperator,
		PrometheusConfigReloaderImage: images.PrometheusConfigReloader, PrometheusImage: images.Prometheus,
		AlertmanagerImage: images.Alertmanager, GrafanaImage: images.Grafana, KubeStateMetricsImage: images.KubeStateMetrics, NodeExporters: exporters,
		VictoriaLogsImage: images.VictoriaLogs, VlagentImage: images.Vlagent, EtcdMembers: etcdMembers(cl), EtcdMetricsPort: etcd.MetricsPort}
}

// etcdMembers are cl's etcd members, as monitoring scrapes them (their
// metrics listener, pkg/etcd); none for a nil cl.
func etcdMembers(cl *inventory.Cluster) []addons.Target {
	if cl == nil {
		return nil
	}
	var out []addons.Target
	for _, n := range cl.Etcd {
		out = append(out, addons.Target{Node: n.Name, Address: n.Address()})
	}
	return out
}

// nodeExporter is metalk8s_node_exporter_enabled, which is
// metalk8s_monitoring_enabled unless set (both default true): whether
// every node runs the node-exporter service (node.NodeExporter). With
// it, the node-exporters the monitoring addon scrapes, one per node.
func nodeExporter(cl *inventory.Cluster) (bool, []addons.Target, error) {
	on, err := addons.Enabled(cl, "monitoring", true)
	if err != nil {
		return false, nil, err
	}
	if on, err = addons.Enabled(cl, "node-exporter", on); err != nil || !on {
		return false, nil, err
	}
	var out []addons.Target
	for _, n := range cl.Nodes {
		out = append(out, addons.Target{Node: n.Name, Address: n.Address()})
	}
	return true, out, nil
}

// BundleVersions is v without the artifacts cl's inventory turns off, for
// `bundle build`, `list` and `verify -i`: node_exporter's binary when
// metalk8s_node_exporter_enabled (or metalk8s_monitoring_enabled) is
// false. A nil cl (no inventory) keeps v whole. Bad variables are
// addons.Enabled's errors.
func BundleVersions(cl *inventory.Cluster, v bundle.Versions) (bundle.Versions, error) {
	if cl == nil {
		return v, nil
	}
	on, _, err := nodeExporter(cl)
	if err != nil {
		return v, err
	}
	if !on {
		v.NodeExporter = ""
	}
	return v, nil
}

// AddonImages lists the images the enabled addons run (sorted, once
// each), their charts rendered for v with cl's variables
// (metalk8s_<addon>_enabled and _values), or with the defaults when cl is
// nil: what `bundle build` pulls beside bundle.Images(v) and `bundle
// verify` requires. Bad addon variables are FromInventory's errors.
func AddonImages(cl *inventory.Cluster, v bundle.Versions) ([]string, error) {
	var ads []*addons.Addon
	var err error
	if cl == nil {
		ads, err = addons.Defaults(addonParams(nil, v, true, nil))
	} else {
		ads, err = addons.FromInventory(cl, addonParams(cl, v, true, nil))
	}
	if err != nil {
		return nil, err
	}
	var objs []*unstructured.Unstructured
	for _, a := range ads {
		if a.Enabled {
			objs = append(objs, a.Objects...)
		}
	}
	return addons.Images(objs), nil
}
