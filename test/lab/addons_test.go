package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// testAddons checks the addons up installed: each a deployed Helm release
// (Helm's own storage: a Secret per revision, labelled by Helm), and
// metrics-server serving the metrics API (kubectl top nodes).
func (l *lab) testAddons(t *testing.T) {
	out := l.mustKubectl(t, "", "get", "secrets", "-n", "kube-system", "-l", "owner=helm,name=metrics-server",
		"-o", `jsonpath={range .items[*]}{.metadata.labels.version} {.metadata.labels.status}{"\n"}{end}`)
	t.Logf("metrics-server's Helm revisions:\n%s", out)
	if !strings.Contains(out, " deployed\n") {
		t.Errorf("no deployed revision of the metrics-server release")
	}
	// The bundle's helm CLI reads the releases the SDK wrote.
	out, err := l.helm(time.Minute, "list", "-A", "-o", "json")
	t.Logf("helm list -A: %v\n%s", err, out)
	var rels []struct{ Name, Namespace, Status, Chart string }
	if err == nil {
		err = json.Unmarshal([]byte(out), &rels)
	}
	found := false
	for _, r := range rels {
		found = found || r == struct{ Name, Namespace, Status, Chart string }{"metrics-server", "kube-system", "deployed", "metrics-server-0.1.0"}
	}
	if err != nil || !found {
		t.Errorf("helm list -A: no deployed metrics-server release of chart metrics-server-0.1.0 in kube-system (%v)", err)
	}
	out, err = l.helm(time.Minute, "history", "metrics-server", "-n", "kube-system")
	t.Logf("helm history metrics-server: %v\n%s", err, out)
	if err != nil || !strings.Contains(out, "metalk8s up") {
		t.Errorf("helm history shows no revision described \"metalk8s up\"")
	}
	eventually(t, 5*time.Minute, "kubectl top nodes lists the 3 nodes", func() error {
		out, err := l.kubectl(time.Minute, "", "top", "nodes", "--no-headers")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		for i := 1; i <= nodes; i++ {
			if !strings.Contains(out, fmt.Sprintf("node%d ", i)) {
				return fmt.Errorf("no node%d:\n%s", i, out)
			}
		}
		return nil
	})
	out, err = l.kubectl(time.Minute, "", "top", "pods", "-n", "kube-system", "--no-headers")
	t.Logf("kubectl top pods -n kube-system: %v\n%s", err, out)
	if err != nil || !strings.Contains(out, "kube-apiserver-node1 ") {
		t.Errorf("kubectl top pods lists no kube-apiserver-node1")
	}

	// Headlamp's image cannot be had here (ghcr.io only, not buildable
	// from the Go proxy): the lab disables it, and its chart's objects,
	// rendered by the bundle's helm, pass the API server's validation in
	// a server-side dry run instead of running.
	out, err = l.helm(time.Minute, "template", "headlamp", filepath.Join(l.repo, "assets/charts/headlamp"), "-n", "kube-system", "--kube-version", "v1.36.3")
	if err != nil {
		t.Fatalf("helm template headlamp: %v\n%s", err, out)
	}
	dry := l.mustKubectl(t, out, "apply", "--dry-run=server", "-f", "-")
	t.Logf("headlamp's objects, server-side dry run:\n%s", dry)
	for _, want := range []string{"serviceaccount/headlamp created (server dry run)", "service/headlamp created (server dry run)", "deployment.apps/headlamp created (server dry run)"} {
		if !strings.Contains(dry, want) {
			t.Errorf("the dry run lacks %q", want)
		}
	}

	// A HorizontalPodAutoscaler reads its deployment's CPU from the
	// metrics API (the pod image was imported by the kubernetes checks).
	l.mustKubectl(t, hpaManifests, "apply", "-f", "-")
	eventually(t, 8*time.Minute, "the HPA reads its pods' CPU", func() error {
		out, err := l.kubectl(time.Minute, "", "get", "hpa", "-n", "e2e-hpa", "idle", "-o",
			`jsonpath={.status.currentMetrics[0].resource.current.averageUtilization} {.status.conditions[?(@.type=="ScalingActive")].reason}`)
		if err != nil || !strings.HasSuffix(out, " ValidMetricFound") {
			return fmt.Errorf("%v: %q", err, out)
		}
		return nil
	})
	l.mustKubectl(t, "", "delete", "namespace", "e2e-hpa", "--wait=false")
}

// hpaManifests: an idle deployment with a CPU request and its HPA.
const hpaManifests = `apiVersion: v1
kind: Namespace
metadata: {name: e2e-hpa}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: idle, namespace: e2e-hpa}
spec:
  selector: {matchLabels: {app: idle}}
  template:
    metadata: {labels: {app: idle}}
    spec:
      containers:
      - name: idle
        image: ` + podImage + `
        imagePullPolicy: Never
        command: [sleep, "36000"]
        resources: {requests: {cpu: 10m}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: idle, namespace: e2e-hpa}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: idle}
  minReplicas: 1
  maxReplicas: 2
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 80}}
`

// testAddonChanges changes the addons through the inventory: one value
// (plan: that release only; up upgrades it; the next up changes nothing),
// the addon disabled (uninstalled) and enabled again (installed), and a
// bundle without the addon's image (plan refuses, naming it).
func (l *lab) testAddonChanges(t *testing.T, bundleDir string) {
	// The lab's values (group_vars/all.yml) with one more replica, in a
	// group file that wins over all.yml (Ansible replaces the dict).
	all, err := os.ReadFile(filepath.Join(filepath.Dir(l.inv), "group_vars/all.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var vars map[string]any
	if err := yaml.Unmarshal(all, &vars); err != nil {
		t.Fatal(err)
	}
	values, _ := vars["metalk8s_metrics_server_values"].(map[string]any)
	if values == nil {
		values = map[string]any{}
	}
	values["replicas"] = 2
	override := filepath.Join(filepath.Dir(l.inv), "group_vars/kube-master.yml")
	write := func(v map[string]any) {
		t.Helper()
		data, err := yaml.Marshal(v)
		if err == nil {
			err = os.WriteFile(override, data, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	defer os.Remove(override)
	write(map[string]any{"metalk8s_metrics_server_values": values})
	plan := l.planJSON(t, bundleDir, 3)
	if len(plan.Changes) != 1 || plan.Changes[0].Step != "addons/metrics-server" ||
		!contains(plan.Changes[0].Diff, "  ~ update Deployment kube-system/metrics-server: spec.replicas 1 -> 2") {
		t.Errorf("plan with replicas 2: want one change, addons/metrics-server's replicas: %+v", plan.Changes)
	}
	out := l.metalk8s(t, 20*time.Minute, "up", l.inv, "--known-hosts", l.known, "--bundle", bundleDir)
	t.Logf("up with replicas 2:\n%s", lastLines(out, 5))
	if r := l.mustKubectl(t, "", "get", "deployment", "-n", "kube-system", "metrics-server", "-o", "jsonpath={.status.readyReplicas}"); r != "2" {
		t.Errorf("metrics-server has %q ready replicas after the upgrade, want 2", r)
	}
	l.checkNoOp(t, bundleDir)

	// Disabled: uninstalled; enabled again (the lab's inventory): installed.
	write(map[string]any{"metalk8s_metrics_server_enabled": false})
	plan = l.planJSON(t, bundleDir, 3)
	if len(plan.Changes) != 1 || plan.Changes[0].Step != "addons/metrics-server" || len(plan.Changes[0].Diff) == 0 ||
		!strings.HasPrefix(plan.Changes[0].Diff[0], "- uninstall release kube-system/metrics-server") {
		t.Errorf("plan with metrics-server disabled: want its uninstall only: %+v", plan.Changes)
	}
	l.metalk8s(t, 20*time.Minute, "up", l.inv, "--known-hosts", l.known, "--bundle", bundleDir)
	if out, err := l.helm(time.Minute, "list", "-A", "-q"); err != nil || strings.Contains(out, "metrics-server") {
		t.Errorf("helm list after disabling metrics-server: %v\n%s", err, out)
	}
	os.Remove(override)
	l.metalk8s(t, 20*time.Minute, "up", l.inv, "--known-hosts", l.known, "--bundle", bundleDir)
	if out, err := l.helm(time.Minute, "status", "metrics-server", "-n", "kube-system"); err != nil || !strings.Contains(out, "STATUS: deployed") {
		t.Errorf("helm status after enabling metrics-server again: %v\n%s", err, out)
	}

	// A bundle whose manifest lacks metrics-server's image.
	lacking := bundleWithout(t, bundleDir, "registry.k8s.io/metrics-server/")
	out, err = l.metalk8sErr(5*time.Minute, "plan", l.inv, "--known-hosts", l.known, "--bundle", lacking)
	t.Logf("plan with a bundle lacking metrics-server's image: exit %d\n%s", exitCode(err), lastLines(out, 8))
	if exitCode(err) != 2 || !strings.Contains(out, "lacks images the addons run") ||
		!strings.Contains(out, "registry.k8s.io/metrics-server/metrics-server:") || !strings.Contains(out, "(addon metrics-server, chart metrics-server ") {
		t.Errorf("plan with a bundle lacking metrics-server's image: exit %d, want 2 (bad input) naming the image and chart", exitCode(err))
	}
}

// planJSON runs plan -o json, checks its exit code and decodes it.
func (l *lab) planJSON(t *testing.T, bundleDir string, wantExit int) planOutput {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, l.bin, "plan", l.inv, "--known-hosts", l.known, "--bundle", bundleDir, "-o", "json")
	cmd.Dir = l.repo
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var p planOutput
	if jerr := json.Unmarshal(out, &p); jerr != nil || exitCode(err) != wantExit {
		t.Fatalf("plan -o json: exit %d (want %d), %v\n%s\n%s", exitCode(err), wantExit, jerr, out, stderr.String())
	}
	return p
}

// planOutput is what the test reads of plan -o json.
type planOutput struct {
	Changes []struct {
		Host, Step string
		Diff       []string
	}
}

// bundleWithout makes a bundle beside dir's files (linked) whose manifest
// lists no image starting with prefix.
func bundleWithout(t *testing.T, dir, prefix string) string {
	t.Helper()
	out := t.TempDir()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "manifest.json" {
			if err := os.Symlink(filepath.Join(dir, e.Name()), filepath.Join(out, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	var kept []any
	for _, img := range m["images"].([]any) {
		if !strings.HasPrefix(img.(map[string]any)["name"].(string), prefix) {
			kept = append(kept, img)
		}
	}
	if len(kept) == len(m["images"].([]any)) {
		t.Fatalf("the bundle has no image %s*", prefix)
	}
	m["images"] = kept
	if data, err = json.Marshal(m); err == nil {
		err = os.WriteFile(filepath.Join(out, "manifest.json"), data, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func contains(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

// helm runs the bundle's helm CLI on this machine with the admin.conf
// metalk8s wrote; it returns its standard output, and an error carrying
// its standard error.
func (l *lab) helm(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, l.helmBin, append([]string{"--kubeconfig", filepath.Join(filepath.Dir(l.inv), "artifacts/admin.conf")}, args...)...)
	cmd.WaitDelay = 5 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output() // stdout alone: it is parsed (JSON) or applied (manifests)
	if err != nil {
		err = fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return string(out), err
}
