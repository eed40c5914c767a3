package addons

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/loader/archive"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/engine"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	yamlutil "k8s.io/apimachinery/pkg/util/yaml"
)

// LoadChart reads the chart in directory dir of fsys ("charts/metrics-server"
// of assets.Charts) and validates its Chart.yaml. The error names dir.
func LoadChart(fsys fs.FS, dir string) (*chart.Chart, error) {
	var files []*archive.BufferedFile
	err := fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		files = append(files, &archive.BufferedFile{Name: strings.TrimPrefix(p, dir+"/"), Data: data})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("addons: chart %s: %w", dir, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("addons: chart %s: no files", dir)
	}
	ch, err := loader.LoadFiles(files)
	if err != nil {
		return nil, fmt.Errorf("addons: chart %s: %w", dir, err)
	}
	if err := ch.Validate(); err != nil {
		return nil, fmt.Errorf("addons: chart %s: %w", dir, err)
	}
	return ch, nil
}

// Render renders ch as `helm template` does, for a release name and
// namespace on Kubernetes kubeVersion ("v1.36.3"), with values over the
// chart's defaults (and checked against its values.schema.json). It
// returns the objects in Helm's install order (by kind, then by template
// file); NOTES.txt, partials and empty documents are left out. An error
// names the template.
func Render(ch *chart.Chart, release, namespace, kubeVersion string, values map[string]any) ([]*unstructured.Unstructured, error) {
	kv, err := common.ParseKubeVersion(kubeVersion)
	if err != nil {
		return nil, fmt.Errorf("addons: chart %s: Kubernetes version %q: %w", ch.Name(), kubeVersion, err)
	}
	if c := ch.Metadata.KubeVersion; c != "" && !chartutil.IsCompatibleRange(c, kv.String()) {
		return nil, fmt.Errorf("addons: chart %s needs Kubernetes %s (its kubeVersion); the cluster runs %s", ch.Name(), c, kubeVersion)
	}
	def := common.DefaultCapabilities
	caps := &common.Capabilities{KubeVersion: *kv, APIVersions: def.APIVersions, HelmVersion: def.HelmVersion}
	opts := common.ReleaseOptions{Name: release, Namespace: namespace, Revision: 1, IsInstall: true}
	vals, err := util.ToRenderValuesWithSchemaValidation(ch, values, opts, caps, false)
	if err != nil {
		return nil, fmt.Errorf("addons: chart %s: values: %w", ch.Name(), err)
	}
	files, err := engine.Render(ch, vals)
	if err != nil {
		return nil, fmt.Errorf("addons: chart %s: %w", ch.Name(), err)
	}
	for name := range files {
		if strings.HasSuffix(name, "NOTES.txt") || strings.HasPrefix(path.Base(name), "_") {
			delete(files, name)
		}
	}
	hooks, manifests, err := releaseutil.SortManifests(files, nil, releaseutil.InstallOrder)
	if err != nil {
		return nil, fmt.Errorf("addons: chart %s: %w", ch.Name(), err)
	}
	if len(hooks) > 0 {
		return nil, fmt.Errorf("addons: chart %s: %s is a hook; metalk8s's charts have none", ch.Name(), hooks[0].Path)
	}
	var objs []*unstructured.Unstructured
	for _, m := range manifests {
		o, err := Objects(m.Content)
		if err != nil {
			return nil, fmt.Errorf("addons: chart %s: %s: %w", ch.Name(), m.Name, err)
		}
		objs = append(objs, o...)
	}
	return objs, nil
}

// Objects decodes a multi-document YAML manifest (a release's, or
// Render's) into objects, in order, skipping empty documents; numbers are
// int64 or float64 as in any unstructured object. A document without
// apiVersion, kind or metadata.name is an error.
func Objects(manifest string) ([]*unstructured.Unstructured, error) {
	dec := yamlutil.NewYAMLOrJSONDecoder(strings.NewReader(manifest), 4096)
	var out []*unstructured.Unstructured
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, err
		}
		if t := bytes.TrimSpace(raw); len(t) == 0 || string(t) == "null" || string(t) == "{}" {
			continue
		}
		obj, _, err := unstructured.UnstructuredJSONScheme.Decode(raw, nil, nil)
		u, ok := obj.(*unstructured.Unstructured)
		if err != nil || !ok || u.GetAPIVersion() == "" || u.GetName() == "" {
			return nil, fmt.Errorf("an object without apiVersion, kind or metadata.name: %.80s", raw)
		}
		out = append(out, u)
	}
}

// ref names an object as diff lines do: "Deployment kube-system/metrics-server".
func ref(u *unstructured.Unstructured) string {
	s := u.GetName()
	if ns := u.GetNamespace(); ns != "" {
		s = ns + "/" + s
	}
	return u.GetKind() + " " + s
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
