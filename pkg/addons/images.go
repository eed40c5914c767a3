package addons

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// podSpecPaths are where a kind holds its pod spec.
var podSpecPaths = map[string][]string{
	"Pod":         {"spec"},
	"Deployment":  {"spec", "template", "spec"},
	"DaemonSet":   {"spec", "template", "spec"},
	"StatefulSet": {"spec", "template", "spec"},
	"ReplicaSet":  {"spec", "template", "spec"},
	"Job":         {"spec", "template", "spec"},
	"CronJob":     {"spec", "jobTemplate", "spec", "template", "spec"},
}

// operatorImagePaths are where prometheus-operator's kinds
// (monitoring.coreos.com) name the image the operator runs for them.
var operatorImagePaths = map[string][]string{
	"Prometheus":      {"spec", "image"},
	"PrometheusAgent": {"spec", "image"},
	"Alertmanager":    {"spec", "image"},
	"ThanosRuler":     {"spec", "image"},
}

// reloaderFlag is prometheus-operator's flag naming the config reloader
// image it adds to the pods it makes.
const reloaderFlag = "--prometheus-config-reloader="

// Images lists the container images objs run, sorted, once each: the
// containers, init and ephemeral containers of every pod spec, the
// images prometheus-operator's objects name (spec.image) and the config
// reloader image its arguments name.
func Images(objs []*unstructured.Unstructured) []string {
	seen := map[string]bool{}
	for _, o := range objs {
		if p, ok := operatorImagePaths[o.GetKind()]; ok && o.GroupVersionKind().Group == "monitoring.coreos.com" {
			if img, _, _ := unstructured.NestedString(o.Object, p...); img != "" {
				seen[img] = true
			}
			continue
		}
		path, ok := podSpecPaths[o.GetKind()]
		if !ok {
			continue
		}
		spec, _, _ := unstructured.NestedMap(o.Object, path...)
		for _, field := range []string{"initContainers", "containers", "ephemeralContainers"} {
			cs, _, _ := unstructured.NestedSlice(spec, field)
			for _, c := range cs {
				if m, ok := c.(map[string]any); ok {
					if img, ok := m["image"].(string); ok && img != "" {
						seen[img] = true
					}
					args, _, _ := unstructured.NestedStringSlice(m, "args")
					for _, a := range args {
						if img, ok := strings.CutPrefix(a, reloaderFlag); ok && img != "" {
							seen[img] = true
						}
					}
				}
			}
		}
	}
	out := make([]string, 0, len(seen))
	for img := range seen {
		out = append(out, img)
	}
	sort.Strings(out)
	return out
}

// CheckImages returns an error listing each image an enabled addon's
// rendered objects (Addon.Objects) would run that bundled (the bundle's image
// references) lacks, with the addon and chart needing it: the nodes
// never pull, so a release missing one would wait for pods that cannot
// start. bundleDir names the bundle in the message.
func CheckImages(addons []*Addon, bundled []string, bundleDir string) error {
	have := map[string]bool{}
	for _, b := range bundled {
		have[b] = true
	}
	var missing []string
	for _, a := range addons {
		if !a.Enabled {
			continue
		}
		for _, img := range Images(a.Objects) {
			if !have[img] {
				missing = append(missing, fmt.Sprintf("%s (addon %s, chart %s %s)", img, a.Name, a.Chart.Name(), a.Chart.Metadata.Version))
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the bundle %s lacks images the addons run, and nodes never pull: %s; "+
			"build a bundle with them (metalk8s bundle build), or disable the addon (metalk8s_<addon>_enabled: false)",
			bundleDir, strings.Join(missing, ", "))
	}
	return nil
}
