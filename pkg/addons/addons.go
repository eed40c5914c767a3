// Package addons installs the charts metalk8s embeds (assets/charts) as
// ordinary Helm releases, with the Helm SDK (helm.sh/helm/v4) over the
// run's SSH connection to a control plane's API: one step per addon, whose
// check says whether the release would be installed, upgraded (with a
// diff of its objects) or uninstalled, and whose apply does it with
// server-side apply, a wait and a rollback on failure.
package addons

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	chart "helm.sh/helm/v4/pkg/chart/v2"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/metalk8s/metalk8s/assets"
	"github.com/metalk8s/metalk8s/pkg/inventory"
)

// Addon is one release: a chart of assets.Charts, where it goes, and the
// values it is installed with.
type Addon struct {
	Name      string // the chart's directory and the release's name: "metrics-server"
	Namespace string // the release's namespace
	// After is the addon whose step must succeed first ("gateway-api",
	// whose CRDs traefik's objects are), or "": independent of the others.
	After string
	// Enabled is metalk8s_<name>_enabled (dashes as underscores; default
	// true). A disabled addon's release is uninstalled.
	Enabled bool
	// EnabledVar is the variable Enabled was read from
	// ("metalk8s_logging_enabled", or an alias the inventory set instead).
	EnabledVar string
	// Warnings are what the addon's step tells the operator, changed or
	// not (a deprecated variable read).
	Warnings []string
	// Values are metalk8s's own values (versions, images, pull policy)
	// with the operator's metalk8s_<name>_values merged over them; the
	// chart's defaults lie under both, as in `helm install -f`.
	Values map[string]any
	Chart  *chart.Chart
	// KubeVersion is what Objects were rendered for ("v1.36.3").
	KubeVersion string
	// Objects are Chart rendered with Values for KubeVersion (Render):
	// what the release's step installs, diffs and finds images in.
	Objects []*unstructured.Unstructured
}

// Render renders a's chart with its values for kubeVersion into
// a.Objects (and a.KubeVersion); the error is Render's (schema,
// templates, kubeVersion), a.Objects unchanged on error.
func (a *Addon) Render(kubeVersion string) error {
	objs, err := Render(a.Chart, a.Name, a.Namespace, kubeVersion, a.Values)
	if err != nil {
		return err
	}
	a.Objects, a.KubeVersion = objs, kubeVersion
	return nil
}

// ClaimsVolumes reports whether a's rendered objects name the
// StorageClass class ("local-lvm") anywhere (a PersistentVolumeClaim, a
// StatefulSet's claim template, a Prometheus's or Alertmanager's storage
// spec): such an addon's pods bind its volumes, so its step waits for
// the volumes phase.
func (a *Addon) ClaimsVolumes(class string) bool {
	for _, o := range a.Objects {
		if namesStorageClass(o.Object, class) {
			return true
		}
	}
	return false
}

// namesStorageClass: v holds "storageClassName": class at any depth.
func namesStorageClass(v any, class string) bool {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if k == "storageClassName" && e == class {
				return true
			}
			if namesStorageClass(e, class) {
				return true
			}
		}
	case []any:
		for _, e := range v {
			if namesStorageClass(e, class) {
				return true
			}
		}
	}
	return false
}

// Params are what metalk8s's own values come from.
type Params struct {
	KubeVersion string // "v1.36.3": what charts render for
	// Bundled: the images come from a bundle, already on every node
	// (imagePullPolicy Never, as for the control plane).
	Bundled bool
	// MetricsServerImage is the full reference of metrics-server's image
	// ("registry.k8s.io/metrics-server/metrics-server:v0.8.0").
	MetricsServerImage string
	// HeadlampImage is Headlamp's ("ghcr.io/headlamp-k8s/headlamp:v0.45.0").
	HeadlampImage string
	// TraefikImage is Traefik's ("docker.io/library/traefik:v3.7.13").
	TraefikImage string
	// The monitoring addon's images: prometheus-operator's, its config
	// reloader's, Prometheus's and Alertmanager's (full references).
	PrometheusOperatorImage, PrometheusConfigReloaderImage, PrometheusImage, AlertmanagerImage, GrafanaImage string
	// kube-state-metrics' image (in the monitoring addon).
	KubeStateMetricsImage string
	// The logging addon's images: VictoriaLogs' and vlagent's.
	VictoriaLogsImage, VlagentImage string
	// NodeExporters are the node-exporter services Prometheus scrapes,
	// one per node (pkg/node runs them); none when empty.
	NodeExporters []Target
	// EtcdMembers are the etcd members whose metrics Prometheus scrapes
	// (plain HTTP on etcd.MetricsPort: metrics and health only); none
	// when empty.
	EtcdMembers []Target
	// EtcdMetricsPort is the etcd members' metrics port (2381); 0: the
	// chart's.
	EtcdMetricsPort int
}

// Target is one node's service Prometheus scrapes outside the cluster
// (node-exporter, an etcd member): the node's inventory name and the
// address the service listens on.
type Target struct {
	Node, Address string
}

// catalogEntry is one addon metalk8s knows.
type catalogEntry struct {
	name, namespace string
	kubespray       string // kubespray's variable turning it on, read when metalk8s's is unset
	// seed is MetalK8s 0.x's variable for what this addon replaced, read
	// when metalk8s's is unset, with a warning.
	seed string
	// follows, when set, is the addon whose metalk8s_<follows>_enabled
	// turns this one on (it has no variable of its own).
	follows string
	after   string // the addon it needs installed first ("gateway-api": its CRDs), if any
	// values are metalk8s's own values, from p and whether each addon
	// before it in the catalog is enabled.
	values func(p Params, enabled map[string]bool) map[string]any
	// vars, when set, are values from the addon's own inventory
	// variables (metalk8s_logging_retention), under the operator's
	// metalk8s_<name>_values; the error names the variable.
	vars func(n *inventory.Node) (map[string]any, error)
}

// catalog lists the addons metalk8s knows, in the order they install.
var catalog = []catalogEntry{
	{name: "metrics-server", namespace: "kube-system", kubespray: "metrics_server_enabled", values: func(p Params, _ map[string]bool) map[string]any {
		return imageValues(p.MetricsServerImage, p.Bundled)
	}},
	// The Gateway API's CRDs, before the ingress controller that serves
	// them; cluster-wide, the release kept in kube-ingress.
	{name: "gateway-api", namespace: "kube-ingress", values: noValues},
	// The ingress controller on every node (ports 80 and 443); its
	// Gateway API objects only with the CRDs of the addon before it (an
	// operator who installs them otherwise sets gatewayAPI.enabled).
	{name: "traefik", namespace: "kube-ingress", after: "gateway-api", values: func(p Params, enabled map[string]bool) map[string]any {
		v := imageValues(p.TraefikImage, p.Bundled)
		v["gatewayAPI"] = map[string]any{"enabled": enabled["gateway-api"]}
		return v
	}},
	// The web UI, reached through kubectl proxy or port-forward (README).
	{name: "headlamp", namespace: "kube-system", values: func(p Params, _ map[string]bool) map[string]any {
		return imageValues(p.HeadlampImage, p.Bundled)
	}},
	// prometheus-operator's CRDs, with the monitoring addon, before it.
	{name: "monitoring-crds", namespace: "kube-ops", follows: "monitoring", values: noValues},
	// prometheus-operator, Prometheus, Alertmanager and what they scrape.
	{name: "monitoring", namespace: "kube-ops", after: "monitoring-crds", values: monitoringValues},
	// Central container logs: VictoriaLogs and a collector on every node,
	// replacing MetalK8s 0.x's Elasticsearch stack (its variable read as
	// an alias); its ServiceMonitors need the monitoring CRDs.
	{name: "logging", namespace: "kube-ops", seed: "metalk8s_elasticsearch_enabled", after: "monitoring-crds",
		values: loggingValues, vars: loggingVars},
}

// noValues: a chart with no values of metalk8s's.
func noValues(Params, map[string]bool) map[string]any { return map[string]any{} }

// monitoringValues are the monitoring chart's images and the
// node-exporter services and etcd members it scrapes.
func monitoringValues(p Params, _ map[string]bool) map[string]any {
	v := map[string]any{}
	set := func(component, key, ref string) {
		if ref == "" {
			return
		}
		c, _ := v[component].(map[string]any)
		if c == nil {
			c = map[string]any{}
			v[component] = c
		}
		c[key] = image(ref, p.Bundled)
	}
	set("operator", "image", p.PrometheusOperatorImage)
	set("operator", "reloaderImage", p.PrometheusConfigReloaderImage)
	set("prometheus", "image", p.PrometheusImage)
	set("alertmanager", "image", p.AlertmanagerImage)
	set("grafana", "image", p.GrafanaImage)
	set("kubeStateMetrics", "image", p.KubeStateMetricsImage)
	targets := func(ts []Target) []any {
		var out []any
		for _, t := range ts {
			out = append(out, map[string]any{"node": t.Node, "address": t.Address})
		}
		return out
	}
	if len(p.NodeExporters) > 0 {
		v["nodeExporter"] = map[string]any{"targets": targets(p.NodeExporters)}
	}
	if len(p.EtcdMembers) > 0 {
		v["etcd"] = map[string]any{"targets": targets(p.EtcdMembers)}
		if p.EtcdMetricsPort != 0 {
			v["etcd"].(map[string]any)["port"] = p.EtcdMetricsPort
		}
	}
	return v
}

// Names lists the addons metalk8s knows, in install order.
func Names() []string {
	var out []string
	for _, c := range catalog {
		out = append(out, c.name)
	}
	return out
}

// imageValues are a chart's values for its image: {"image": image(ref,
// bundled)}, or none when ref is empty (the chart's default image).
func imageValues(ref string, bundled bool) map[string]any {
	if ref == "" {
		return map[string]any{}
	}
	return map[string]any{"image": image(ref, bundled)}
}

// image is a chart's image values for a full reference: repository, tag
// and pull policy.
func image(ref string, bundled bool) map[string]any {
	repo, tag := ref, ""
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		repo, tag = ref[:i], ref[i+1:]
	}
	v := map[string]any{"repository": repo, "tag": tag}
	if bundled {
		v["pullPolicy"] = "Never"
	}
	return v
}

// FromInventory returns every addon of the catalog, in install order, its
// charts loaded from assets.Charts and its values built from p and the
// cluster-wide variables (read on the first control-plane node, as
// kubeadm's): metalk8s_<name>_enabled, a boolean (default true; unset,
// kubespray's variable where it has one, metrics_server_enabled), and
// metalk8s_<name>_values, a dict or the path of a YAML values file
// (relative to the inventory's directory). Each enabled addon's chart is
// rendered here, once, with its values for p.KubeVersion (Addon.Objects),
// so values the chart's schema or templates refuse are found before any
// step runs; a disabled one's is not (its release is only uninstalled). A bad value is an error naming the
// host, the variable and where it was set.
func FromInventory(cl *inventory.Cluster, p Params) ([]*Addon, error) {
	if len(cl.ControlPlane) == 0 {
		return nil, fmt.Errorf("addons: the cluster has no control-plane node")
	}
	return build(cl.ControlPlane[0], filepath.Dir(cl.Inventory.Path), p)
}

// Enabled reads whether the addon name is enabled as FromInventory does,
// on the first control-plane node: the variable enabledKey names (for a
// catalog addon, its own, an alias or the addon it follows; for any
// other name, metalk8s_<name>_enabled: "node-exporter"), default def. A
// value that is not a boolean is an error naming the host and the
// variable.
func Enabled(cl *inventory.Cluster, name string, def bool) (bool, error) {
	if len(cl.ControlPlane) == 0 {
		return false, fmt.Errorf("addons: the cluster has no control-plane node")
	}
	n := cl.ControlPlane[0]
	for _, c := range catalog {
		if c.name == name {
			key, _ := c.enabledKey(n)
			return boolVar(n, key, def)
		}
	}
	return boolVar(n, "metalk8s_"+varName(name)+"_enabled", def)
}

// enabledKey is the variable turning the addon on, on n:
// metalk8s_<name>_enabled, or metalk8s_<follows>_enabled for an addon
// that follows another; when that one is unset and an alias is set,
// kubespray's variable, or MetalK8s 0.x's with a warning saying so.
func (c catalogEntry) enabledKey(n *inventory.Node) (key, warning string) {
	name := c.name
	if c.follows != "" {
		name = c.follows
	}
	key = "metalk8s_" + varName(name) + "_enabled"
	if _, set := n.Vars[key]; set {
		return key, ""
	}
	if _, set := n.Vars[c.kubespray]; set && c.kubespray != "" {
		return c.kubespray, ""
	}
	if _, set := n.Vars[c.seed]; set && c.seed != "" {
		where := ""
		if src := n.Source[c.seed]; src != "" {
			where = " (set in " + src + ")"
		}
		return c.seed, fmt.Sprintf("%s%s is MetalK8s 0.x's variable, read as %s: rename it", c.seed, where, key)
	}
	return key, ""
}

// Defaults returns every addon of the catalog as FromInventory does for
// an inventory that sets none of their variables: enabled, with
// metalk8s's own values, rendered for p.KubeVersion.
func Defaults(p Params) ([]*Addon, error) { return build(nil, "", p) }

// build is FromInventory with n's variables (nil: none); dir is where
// relative values files are.
func build(n *inventory.Node, dir string, p Params) ([]*Addon, error) {
	var out []*Addon
	enabled := map[string]bool{}
	for _, c := range catalog {
		ch, err := LoadChart(assets.Charts, "charts/"+c.name)
		if err != nil {
			return nil, err
		}
		a := &Addon{Name: c.name, Namespace: c.namespace, After: c.after, Chart: ch, Values: c.values(p, enabled), Enabled: true}
		key := "metalk8s_" + varName(c.name)
		a.EnabledVar = "metalk8s_" + varName(cmp.Or(c.follows, c.name)) + "_enabled"
		var over map[string]any
		if n != nil {
			var warning string
			a.EnabledVar, warning = c.enabledKey(n)
			if warning != "" {
				a.Warnings = append(a.Warnings, warning)
			}
			if a.Enabled, err = boolVar(n, a.EnabledVar, true); err != nil {
				return nil, err
			}
			if c.vars != nil {
				vars, err := c.vars(n)
				if err != nil {
					return nil, err
				}
				a.Values = merge(a.Values, vars)
			}
			if over, err = valuesVar(n, key+"_values", dir); err != nil {
				return nil, err
			}
			a.Values = merge(a.Values, over)
		}
		enabled[a.Name] = a.Enabled
		if !a.Enabled {
			out = append(out, a) // to uninstall: nothing to render
			continue
		}
		// Bad values are the inventory's error, found before any step runs.
		if err := a.Render(p.KubeVersion); err != nil {
			if over != nil {
				return nil, varError(n, key+"_values", "%v", err)
			}
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// varError names the host, the variable and where it was set.
func varError(n *inventory.Node, key, format string, args ...any) error {
	msg := fmt.Sprintf("host %s: variable %s: %s", n.Name, key, fmt.Sprintf(format, args...))
	if src := n.Source[key]; src != "" {
		msg += " (set in " + src + ")"
	}
	return fmt.Errorf("%s", msg)
}

// boolVar reads a boolean as Ansible's bool filter does; unset is def.
func boolVar(n *inventory.Node, key string, def bool) (bool, error) {
	v, ok := n.Vars[key]
	if !ok || v == nil {
		return def, nil
	}
	if b, ok := inventory.Bool(v); ok {
		return b, nil
	}
	return false, varError(n, key, "must be a boolean (true/false, yes/no), found %v", v)
}

// valuesVar reads an operator's values: a dict, or the path of a YAML
// file holding one (relative paths from dir); unset is nil.
func valuesVar(n *inventory.Node, key, dir string) (map[string]any, error) {
	v, ok := n.Vars[key]
	if !ok || v == nil {
		return nil, nil
	}
	switch x := v.(type) {
	case map[string]any:
		return plain(x).(map[string]any), nil
	case string, inventory.Unsafe:
		p := strings.TrimSpace(fmt.Sprint(x))
		if p == "" {
			return nil, nil
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, varError(n, key, "values file: %v", err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(data, &m); err != nil {
			return nil, varError(n, key, "values file %s: %v", p, err)
		}
		return m, nil
	}
	return nil, varError(n, key, "must be a dict of chart values or the path of a values file, found %v", v)
}

// plain turns the inventory's value types into YAML's plain ones
// (inventory.Unsafe strings into strings), recursively.
func plain(v any) any {
	switch x := v.(type) {
	case inventory.Unsafe:
		return string(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = plain(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = plain(e)
		}
		return out
	}
	return v
}

// merge returns base with over merged in: maps key by key, recursively;
// anything else in over (a list, a scalar, null) replaces base's value,
// as Helm merges a values file over a chart's values.
func merge(base, over map[string]any) map[string]any {
	out := make(map[string]any, len(base)+len(over))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		bm, ok1 := out[k].(map[string]any)
		om, ok2 := v.(map[string]any)
		if ok1 && ok2 {
			out[k] = merge(bm, om)
			continue
		}
		out[k] = v
	}
	return out
}
