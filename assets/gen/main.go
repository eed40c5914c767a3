// Command gen writes the files assets embeds from other modules, so that
// nothing of theirs is copied into this repository by hand:
//
//   - the Gateway API's standard-channel CRDs (and its
//     ValidatingAdmissionPolicy), from the module sigs.k8s.io/gateway-api
//     at go.mod's version, into charts/gateway-api/files/, as its
//     release's standard-install.yaml gathers them
//     (hack/build-install-yaml.sh: config/crd/standard/gateway*.yaml);
//   - prometheus-operator's CRDs, from the module
//     github.com/prometheus-operator/prometheus-operator at the version
//     charts/monitoring-crds/Chart.yaml's appVersion names (it is not a
//     dependency of metalk8s's code), into charts/monitoring-crds/files/
//     (example/prometheus-operator-crd/*.yaml), each with its schema's
//     descriptions left out (4.1 MB with them: too big for a Helm
//     release, whose record is one Secret of at most 1 MiB) and metalk8s's
//     labels and helm.sh/resource-policy: keep added, written as JSON
//     (0.55 MB; as YAML 1.5 MB).
//
// Run from assets/ by `go generate` (make generate). Each output folder
// is replaced whole, through a temporary one in assets/ (.gen-*); on
// error it is left as it was. It fails when a chart's appVersion is not
// the module version it takes files from.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"

	"sigs.k8s.io/yaml"
)

// source is one folder of files taken from a module.
type source struct {
	module   string
	fromMod  bool   // the version is go.mod's; else the chart's appVersion
	glob     string // in the module: "config/crd/standard/gateway*.yaml"
	chartDir string // "charts/gateway-api", written to its files/
	// transform, when set, rewrites each file's content.
	transform func(data []byte) ([]byte, error)
}

var sources = []source{
	{module: "sigs.k8s.io/gateway-api", fromMod: true, glob: "config/crd/standard/gateway*.yaml", chartDir: "charts/gateway-api"},
	{module: "github.com/prometheus-operator/prometheus-operator", glob: "example/prometheus-operator-crd/*.yaml",
		chartDir: "charts/monitoring-crds", transform: keptCRD},
}

func main() {
	for _, s := range sources {
		if err := s.run(); err != nil {
			fmt.Fprintf(os.Stderr, "gen: %s: %v\n", s.chartDir, err)
			os.Exit(1)
		}
	}
}

func (s source) run() error {
	chart, err := os.ReadFile(filepath.Join(s.chartDir, "Chart.yaml"))
	if err != nil {
		return err
	}
	app := regexp.MustCompile(`(?m)^appVersion:\s*"?([^"\s]+)`).FindSubmatch(chart)
	if app == nil {
		return fmt.Errorf("Chart.yaml has no appVersion")
	}
	query := s.module + "@" + string(app[1])
	if s.fromMod {
		query = s.module // go.mod's version
	}
	m, err := download(query)
	if err != nil {
		return err
	}
	if m.Version != string(app[1]) {
		return fmt.Errorf("Chart.yaml: appVersion must be %s, go.mod's version of %s", m.Version, s.module)
	}
	srcs, err := filepath.Glob(filepath.Join(m.Dir, s.glob))
	if err != nil || len(srcs) == 0 {
		return fmt.Errorf("%s@%s: no %s in %s", s.module, m.Version, s.glob, m.Dir)
	}
	dst := filepath.Join(s.chartDir, "files")
	// outside charts/, which the binary embeds whole
	tmp, err := os.MkdirTemp(".", ".gen-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for _, src := range srcs {
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		if s.transform != nil {
			if b, err = s.transform(b); err != nil {
				return fmt.Errorf("%s: %w", src, err)
			}
		}
		if err := os.WriteFile(filepath.Join(tmp, filepath.Base(src)), b, 0o644); err != nil {
			return err
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := os.RemoveAll(dst); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return err
	}
	fmt.Printf("gen: %s: %d files of %s@%s\n", dst, len(srcs), s.module, m.Version)
	return nil
}

type module struct{ Version, Dir, Error string }

// download is `go mod download -json query`: the module's version and
// its directory in the module cache (the download checked against
// go.sum or the checksum database, as the go command does).
func download(query string) (module, error) {
	var m module
	out, err := exec.Command("go", "mod", "download", "-json", query).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			err = fmt.Errorf("%w: %s", err, bytes.TrimSpace(ee.Stderr))
		}
		return m, fmt.Errorf("go mod download %s: %w", query, err)
	}
	if err := json.Unmarshal(out, &m); err != nil {
		return m, fmt.Errorf("go mod download %s: %w", query, err)
	}
	if m.Error != "" || m.Dir == "" {
		return m, fmt.Errorf("go mod download %s: no module directory (%s)", query, m.Error)
	}
	return m, nil
}

// keptCRD is one CustomResourceDefinition without its schemas'
// descriptions, labelled as metalk8s's charts label their objects and
// kept when its release is uninstalled (the objects of its kind are the
// operators' and users').
func keptCRD(data []byte) ([]byte, error) {
	var crd map[string]any
	if err := yaml.Unmarshal(data, &crd); err != nil {
		return nil, err
	}
	if crd["kind"] != "CustomResourceDefinition" {
		return nil, fmt.Errorf("kind %v, want CustomResourceDefinition", crd["kind"])
	}
	versions, _ := crd["spec"].(map[string]any)["versions"].([]any)
	for _, v := range versions {
		if sch, ok := v.(map[string]any)["schema"].(map[string]any); ok {
			stripDescriptions(sch["openAPIV3Schema"])
		}
	}
	meta := crd["metadata"].(map[string]any)
	labels, _ := meta["labels"].(map[string]any)
	if labels == nil {
		labels = map[string]any{}
	}
	labels["app.kubernetes.io/part-of"] = "metalk8s"
	labels["app.kubernetes.io/managed-by"] = "Helm"
	labels["app.kubernetes.io/instance"] = "monitoring-crds"
	meta["labels"] = labels
	ann, _ := meta["annotations"].(map[string]any)
	if ann == nil {
		ann = map[string]any{}
	}
	ann["helm.sh/resource-policy"] = "keep"
	meta["annotations"] = ann
	// JSON, which YAML reads: a third of the YAML's size
	b, err := json.Marshal(crd)
	return append(b, '\n'), err
}

// stripDescriptions removes the description of a JSON schema and of
// every schema in it. A property named "description" is a schema, not
// a description: only string values go.
func stripDescriptions(schema any) {
	switch x := schema.(type) {
	case map[string]any:
		if _, ok := x["description"].(string); ok {
			delete(x, "description")
		}
		for k, v := range x {
			if k == "properties" || k == "patternProperties" || k == "definitions" {
				if props, ok := v.(map[string]any); ok {
					for _, p := range props {
						stripDescriptions(p)
					}
				}
				continue
			}
			stripDescriptions(v)
		}
	case []any:
		for _, v := range x {
			stripDescriptions(v)
		}
	}
}
