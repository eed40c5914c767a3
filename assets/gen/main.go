// Command gen writes the files assets embeds from other modules, at the
// versions go.mod requires, so that nothing of theirs is copied into
// this repository by hand: today the Gateway API's standard-channel
// CRDs (and its ValidatingAdmissionPolicy), from the module
// sigs.k8s.io/gateway-api, into charts/gateway-api/files/, as its
// release's standard-install.yaml gathers them
// (hack/build-install-yaml.sh: config/crd/standard/gateway*.yaml).
//
// Run from assets/ by `go generate` (make generate). The output folder
// is replaced whole, through a temporary one in assets/ (.gen-*); on
// error it is left as it was. It fails when the chart's appVersion is not the
// module's version.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
)

const (
	module   = "sigs.k8s.io/gateway-api"
	chartDir = "charts/gateway-api"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "gen: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	// go.mod's version of the module, downloaded if need be.
	out, err := exec.Command("go", "mod", "download", "-json", module).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			err = fmt.Errorf("%w: %s", err, bytes.TrimSpace(ee.Stderr))
		}
		return fmt.Errorf("go mod download %s: %w", module, err)
	}
	var m struct{ Version, Dir, Error string }
	if err := json.Unmarshal(out, &m); err != nil {
		return fmt.Errorf("go mod download %s: %w", module, err)
	}
	if m.Error != "" || m.Dir == "" {
		return fmt.Errorf("go mod download %s: no module directory (%s)", module, m.Error)
	}
	chart, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		return err
	}
	app := regexp.MustCompile(`(?m)^appVersion:\s*"?([^"\s]+)`).FindSubmatch(chart)
	if app == nil || string(app[1]) != m.Version {
		return fmt.Errorf("%s/Chart.yaml: appVersion must be %s, go.mod's version of %s", chartDir, m.Version, module)
	}
	srcs, err := filepath.Glob(filepath.Join(m.Dir, "config", "crd", "standard", "gateway*.yaml"))
	if err != nil || len(srcs) == 0 {
		return fmt.Errorf("%s@%s: no config/crd/standard/gateway*.yaml in %s", module, m.Version, m.Dir)
	}
	dst := filepath.Join(chartDir, "files")
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
	fmt.Printf("gen: %s: %d files of %s@%s\n", dst, len(srcs), module, m.Version)
	return nil
}
