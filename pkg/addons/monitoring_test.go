package addons

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	amconfig "github.com/prometheus/alertmanager/config"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	helmkube "helm.sh/helm/v4/pkg/kube"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/metalk8s/metalk8s/assets"
	"github.com/metalk8s/metalk8s/pkg/kube"
	"github.com/metalk8s/metalk8s/pkg/kube/kubetest"
)

// monitoringObjects renders the monitoring chart with metalk8s's values
// for testParams and over merged in.
func monitoringObjects(t *testing.T, over map[string]any) []*unstructured.Unstructured {
	t.Helper()
	ch, err := LoadChart(assets.Charts, "charts/monitoring")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Render(ch, "monitoring", "kube-ops", "v1.36.3", merge(monitoringValues(testParams(true), allEnabled), over))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// The rules are judged as promtool judges a rule file (Prometheus's
// rulefmt: each expression through the PromQL parser, each annotation
// and label through Go's templates as Prometheus expands them), and
// Alertmanager's configuration by Alertmanager's own loader.
func TestMonitoringRulesAndConfig(t *testing.T) {
	objs := monitoringObjects(t, nil)
	rule := find(t, objs, "PrometheusRule", "metalk8s")
	groups, _, _ := unstructured.NestedSlice(rule.Object, "spec", "groups")
	data, err := yaml.Marshal(map[string]any{"groups": groups})
	if err != nil {
		t.Fatal(err)
	}
	rgs, errs := rulefmt.Parse(data, false)
	if len(errs) > 0 {
		t.Fatalf("the rules, as promtool reads them: %v", errs)
	}
	alerts := map[string]string{}
	for _, g := range rgs.Groups {
		for _, r := range g.Rules {
			if _, err := parser.ParseExpr(r.Expr); err != nil {
				t.Errorf("%s: %v", r.Alert, err)
			}
			if r.Labels["severity"] == "" {
				t.Errorf("%s has no severity", r.Alert)
			}
			alerts[r.Alert] = r.Expr
		}
	}
	// what the issue asks an alert for, each present
	for _, a := range []string{"Watchdog", "TargetDown", "KubeNodeNotReady", "NodeFilesystemFillingUp", "KubePersistentVolumeFillingUp",
		"EtcdNoLeader", "EtcdFrequentLeaderChanges", "KubeAPIServerErrorsHigh", "KubeClientCertificateExpiration",
		"KubeletCertificateExpiration", "EtcdCertificateExpiration", "KubePodCrashLooping"} {
		if alerts[a] == "" {
			t.Errorf("no alert %s", a)
		}
	}
	if !strings.Contains(alerts["KubeletCertificateExpiration"], "< 2592000") {
		t.Errorf("certificates: 30 days by default: %s", alerts["KubeletCertificateExpiration"])
	}
	// a threshold from the values
	objs = monitoringObjects(t, map[string]any{"rules": map[string]any{"certificateExpiryDays": 7}})
	groups, _, _ = unstructured.NestedSlice(find(t, objs, "PrometheusRule", "metalk8s").Object, "spec", "groups")
	if data, _ := yaml.Marshal(groups); !strings.Contains(string(data), "< 604800") {
		t.Error("certificateExpiryDays 7: no 604800 s threshold")
	}
	// a broken expression is refused by the same judge
	if _, errs := rulefmt.Parse([]byte("groups: [{name: g, rules: [{alert: A, expr: 'up =='}]}]"), false); len(errs) == 0 {
		t.Error("rulefmt accepts a broken expression")
	}

	secret := find(t, monitoringObjects(t, nil), "Secret", "alertmanager-config")
	cfg, _, _ := unstructured.NestedString(secret.Object, "stringData", "alertmanager.yaml")
	c, err := amconfig.Load(cfg)
	if err != nil {
		t.Fatalf("alertmanager.yaml: %v\n%s", err, cfg)
	}
	if c.Route.Receiver != "null" || len(c.Route.Routes) != 1 {
		t.Errorf("alertmanager.yaml: route %+v", c.Route)
	}
	if _, err := amconfig.Load("route: {receiver: nowhere}\nreceivers: [{name: other}]\n"); err == nil {
		t.Error("Alertmanager's loader accepts an undefined receiver")
	}
}

// What metalk8s sets: the images (pull policy Never from a bundle), one
// node-exporter target per node, the volumes on local-lvm.
func TestMonitoringChart(t *testing.T) {
	objs := monitoringObjects(t, nil)
	sc := find(t, objs, "ScrapeConfig", "node-exporter")
	static, _, _ := unstructured.NestedSlice(sc.Object, "spec", "staticConfigs")
	var got []string
	for _, s := range static {
		m := s.(map[string]any)
		got = append(got, m["targets"].([]any)[0].(string)+" "+m["labels"].(map[string]any)["node"].(string))
	}
	if want := []string{"10.0.0.1:9100 node1", "10.0.0.2:9100 node2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("node-exporter targets %q, want %q", got, want)
	}
	prom := find(t, objs, "Prometheus", "prometheus")
	for path, want := range map[string]string{
		"spec.image":           testMonitoringImages[2],
		"spec.imagePullPolicy": "Never",
		"spec.retention":       "15d",
		"spec.storage.volumeClaimTemplate.spec.storageClassName": "local-lvm",
		"spec.externalUrl": "http://localhost:8001/api/v1/namespaces/kube-ops/services/prometheus:web/proxy/",
	} {
		if v, _, _ := unstructured.NestedString(prom.Object, strings.Split(path, ".")...); v != want {
			t.Errorf("Prometheus %s = %q, want %q", path, v, want)
		}
	}
	am := find(t, objs, "Alertmanager", "alertmanager")
	if v, _, _ := unstructured.NestedString(am.Object, "spec", "image"); v != testMonitoringImages[3] {
		t.Errorf("Alertmanager image %q", v)
	}
	args := toStrings(container(t, find(t, objs, "Deployment", "prometheus-operator"))["args"])
	if !contains(args, "--prometheus-config-reloader="+testMonitoringImages[1]) || !contains(args, "--kubelet-service=kube-system/kubelet") {
		t.Errorf("operator args %q", args)
	}
	if c := container(t, find(t, objs, "Deployment", "prometheus-operator")); fmt.Sprint(c["startupProbe"]) != fmt.Sprint(map[string]any{"failureThreshold": int64(30), "httpGet": map[string]any{"path": "/healthz", "port": "http"}, "periodSeconds": int64(10), "timeoutSeconds": int64(5)}) {
		t.Errorf("the operator's startupProbe %v, want 5 minutes of 5 s tries", c["startupProbe"])
	}
	// the reloaders get no CPU limit ("0"), not the operator's 10m
	for _, a := range []string{"--config-reloader-cpu-request=10m", "--config-reloader-cpu-limit=0", "--config-reloader-memory-limit=50Mi"} {
		if !contains(args, a) {
			t.Errorf("operator args %q, want %s", args, a)
		}
	}
	sc = find(t, objs, "ScrapeConfig", "etcd")
	if got := fmt.Sprint(sc.Object["spec"]); !strings.Contains(got, "10.0.0.1:2381") || !strings.Contains(got, "node:node1") || strings.Contains(got, "10.0.0.2") {
		t.Errorf("etcd's scrape config %s, want the one member's metrics port", got)
	}
	// kube-state-metrics reads no Secret: neither its RBAC nor its
	// --resources name them.
	ksm := container(t, find(t, objs, "Deployment", "kube-state-metrics"))
	if ksm["image"] != testMonitoringImages[5] {
		t.Errorf("kube-state-metrics' image %v", ksm["image"])
	}
	role := find(t, objs, "ClusterRole", "metalk8s:kube-state-metrics")
	if got := fmt.Sprint(role.Object["rules"], ksm["args"]); strings.Contains(got, "secrets") || strings.Contains(got, "configmaps") {
		t.Errorf("kube-state-metrics reads Secrets or ConfigMaps: %s", got)
	}
	for _, o := range monitoringObjects(t, map[string]any{"kubeStateMetrics": map[string]any{"enabled": false}}) {
		if strings.Contains(o.GetName(), "kube-state-metrics") {
			t.Errorf("kubeStateMetrics.enabled false: %s %s still rendered", o.GetKind(), o.GetName())
		}
	}
	// the inventory's retention; values the schema refuses
	objs = monitoringObjects(t, map[string]any{"prometheus": map[string]any{"retention": "30d", "retentionSize": "8GB",
		"scrapeInterval": "1m30s", "scrapeTimeout": "1m29s500ms"}})
	prom = find(t, objs, "Prometheus", "prometheus")
	for field, want := range map[string]string{"retention": "30d", "scrapeInterval": "1m30s", "scrapeTimeout": "1m29s500ms"} {
		if got, _, _ := unstructured.NestedString(prom.Object, "spec", field); got != want {
			t.Errorf("%s %q, want %s", field, got, want)
		}
	}
	ch, err := LoadChart(assets.Charts, "charts/monitoring")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []map[string]any{
		{"prometheus": map[string]any{"retention": "a month"}},
		{"prometheus": map[string]any{"storage": map[string]any{"storageClassName": "local-lvm", "size": "lots"}}},
		{"nodeExporter": map[string]any{"targets": []any{map[string]any{"node": "n1"}}}},
		{"loki": map[string]any{}},
		{"prometheus": map[string]any{"scrapeInterval": "30s", "scrapeTimeout": "31s"}},
	} {
		if _, err := Render(ch, "monitoring", "kube-ops", "v1.36.3", bad); err == nil {
			t.Errorf("values %v: accepted", bad)
		}
	}
}

// Both releases install through their steps on a real kube-apiserver:
// prometheus-operator's CRDs fit a Helm release (its record, a Secret,
// holds at most 1 MiB), the monitoring objects are accepted by them, and
// a second check wants nothing. No operator runs here (kubetest has no
// controllers or kubelets): the lab runs it.
func TestMonitoringReleases(t *testing.T) {
	s := kubetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	connect := connector(s)
	ads, err := Defaults(testParams(true))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range ads {
		if a.Name != "monitoring-crds" && a.Name != "monitoring" {
			continue
		}
		r := &releaseStep{addon: a, wait: helmkube.HookOnlyStrategy, client: connect}
		if err := r.apply(ctx, nil); err != nil {
			t.Fatalf("%s: apply: %v", a.Name, err)
		}
		if c, err := r.check(ctx, nil); err != nil || len(c.Diff) != 0 {
			t.Errorf("%s: check after apply: %q, %v", a.Name, c.Diff, err)
		}
		if a.Name == "monitoring-crds" {
			// Helm's status watcher waits for them to be established
			// (CRDs' kstatus); without a wait, the test does.
			c, err := connect(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, gvk := range []schema.GroupVersionKind{{Group: "monitoring.coreos.com", Version: "v1", Kind: "Prometheus"},
				{Group: "monitoring.coreos.com", Version: "v1alpha1", Kind: "ScrapeConfig"}} {
				for end := time.Now().Add(time.Minute); ; time.Sleep(300 * time.Millisecond) {
					if _, _, err := c.Mapping(gvk); err == nil {
						break
					} else if time.Now().After(end) {
						t.Fatalf("%s not served: %v", gvk.Kind, err)
					}
				}
			}
		}
	}
	c, err := connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	secrets, err := c.Typed().CoreV1().Secrets("kube-ops").List(ctx, metav1.ListOptions{LabelSelector: "owner=helm,name=monitoring-crds"})
	if err != nil || len(secrets.Items) != 1 {
		t.Fatalf("the monitoring-crds release's record: %v, %v", secrets, err)
	}
	size := 0
	for _, v := range secrets.Items[0].Data {
		size += len(v)
	}
	t.Logf("the monitoring-crds release's record: %d bytes", size)

	testOperator(ctx, t, s, c, ads)
}

// testOperator runs the lab's prometheus-operator binary with the
// chart's arguments, as its service account (impersonated: the chart's
// ClusterRole is what it may do), against the releases just installed,
// and judges what it makes of them: Prometheus's configuration by
// Prometheus's own checker (every scrape job metalk8s asks for in it, the
// node-exporter targets; promtool of the lab's build), the rule files (metalk8s's, then a user's
// PrometheusRule from another namespace), Alertmanager's configuration by
// Alertmanager's loader, the kubelets' EndpointSlice from the Nodes.
func testOperator(ctx context.Context, t *testing.T, s *kubetest.Server, c *kube.Client, ads []*Addon) {
	bin := kubetest.Binary(t, "operator", "prometheus-operator")
	mon := addon(t, ads, "monitoring")
	// the StorageClass the volumes phase makes, which the operator checks
	// the claims' against
	sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "local-lvm"}, Provisioner: "kubernetes.io/no-provisioner"}
	if _, err := c.Typed().StorageV1().StorageClasses().Create(ctx, sc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// a Node, whose address the operator lists for its kubelet
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node1"}}
	node, err := c.Typed().CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.1"}}
	if _, err := c.Typed().CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	ca, cert, key := s.AdminFiles()
	var args []string
	for _, a := range toStrings(container(t, find(t, mon.Objects, "Deployment", "prometheus-operator"))["args"]) {
		if !strings.HasPrefix(a, "--web.listen-address=") {
			args = append(args, a)
		}
	}
	args = append(args, fmt.Sprintf("--web.listen-address=127.0.0.1:%d", kubetest.FreePort(t)),
		fmt.Sprintf("--apiserver=https://127.0.0.1:%d", s.Port), "--ca-file="+ca, "--cert-file="+cert, "--key-file="+key,
		"--as=system:serviceaccount:kube-ops:prometheus-operator")
	startLogged(t, "prometheus-operator", exec.Command(bin, args...))

	secretKey := func(ns, name, key string) ([]byte, error) {
		sec, err := c.Typed().CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		zr, err := gzip.NewReader(bytes.NewReader(sec.Data[key]))
		if err != nil {
			return nil, fmt.Errorf("%s/%s %s: %w", ns, name, key, err)
		}
		return io.ReadAll(zr)
	}
	// promtool, of the Prometheus version the chart runs, judges it
	// (--syntax-only: the token and CA files exist only in a pod)
	promtool := kubetest.Binary(t, "promtool", "promtool")
	var prom struct {
		ScrapeConfigs []struct {
			JobName       string                       `json:"job_name"`
			StaticConfigs []struct{ Targets []string } `json:"static_configs"`
		} `json:"scrape_configs"`
		Alerting struct {
			Alertmanagers []any
		}
	}
	waitFor(t, "Prometheus's configuration", func() error {
		data, err := secretKey("kube-ops", "prometheus-prometheus", "prometheus.yaml.gz")
		if err != nil {
			return err
		}
		f := filepath.Join(t.TempDir(), "prometheus.yaml")
		if err := os.WriteFile(f, data, 0o600); err != nil {
			return err
		}
		if out, err := exec.Command(promtool, "check", "config", "--syntax-only", f).CombinedOutput(); err != nil {
			return fmt.Errorf("promtool check config: %v\n%s\n%s", err, out, data)
		}
		if err := yaml.Unmarshal(data, &prom); err != nil {
			return err
		}
		jobs := map[string]bool{}
		for _, sc := range prom.ScrapeConfigs {
			jobs[sc.JobName] = true
		}
		for _, j := range []string{"serviceMonitor/kube-ops/apiserver/0", "serviceMonitor/kube-ops/kubelet/0", "serviceMonitor/kube-ops/kubelet/1",
			"serviceMonitor/kube-ops/prometheus-operator/0", "serviceMonitor/kube-ops/prometheus/0", "serviceMonitor/kube-ops/alertmanager/0",
			"podMonitor/kube-ops/traefik/0", "scrapeConfig/kube-ops/node-exporter", "scrapeConfig/kube-ops/etcd",
			"serviceMonitor/kube-ops/kube-state-metrics/0", "serviceMonitor/kube-ops/kube-state-metrics/1"} {
			if !jobs[j] {
				return fmt.Errorf("no scrape job %s in %v", j, jobs)
			}
		}
		return nil
	})
	for _, sc := range prom.ScrapeConfigs {
		if sc.JobName == "scrapeConfig/kube-ops/node-exporter" {
			if got := fmt.Sprint(sc.StaticConfigs); !strings.Contains(got, "10.0.0.1:9100") || !strings.Contains(got, "10.0.0.2:9100") {
				t.Errorf("node-exporter targets: %s", got)
			}
		}
		if sc.JobName == "scrapeConfig/kube-ops/etcd" {
			if got := fmt.Sprint(sc.StaticConfigs); !strings.Contains(got, "10.0.0.1:2381") || strings.Contains(got, "10.0.0.2") {
				t.Errorf("etcd targets: %s, want the one member's metrics port", got)
			}
		}
	}
	if len(prom.Alerting.Alertmanagers) == 0 {
		t.Error("Prometheus has no Alertmanager to send alerts to")
	}

	rules := func(want string) func() error {
		return func() error {
			cms, err := c.Typed().CoreV1().ConfigMaps("kube-ops").List(ctx, metav1.ListOptions{LabelSelector: "prometheus-name=prometheus"})
			if err != nil {
				return err
			}
			for _, cm := range cms.Items {
				for _, v := range cm.Data {
					if strings.Contains(v, want) {
						return nil
					}
				}
			}
			return fmt.Errorf("no rule file holds %q (%d config maps)", want, len(cms.Items))
		}
	}
	waitFor(t, "metalk8s's rules loaded", rules("alert: Watchdog"))
	user := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
		"metadata": map[string]any{"name": "team", "namespace": "default"},
		"spec": map[string]any{"groups": []any{map[string]any{"name": "team", "rules": []any{
			map[string]any{"alert": "TeamRuleLoaded", "expr": "vector(0) > 1"}}}}},
	}}
	if _, err := c.Apply(ctx, []*unstructured.Unstructured{user}, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a user's PrometheusRule loaded", rules("alert: TeamRuleLoaded"))

	waitFor(t, "Alertmanager's configuration", func() error {
		data, err := secretKey("kube-ops", "alertmanager-alertmanager-generated", "alertmanager.yaml.gz")
		if err != nil {
			return err
		}
		if _, err := amconfig.Load(string(data)); err != nil {
			return fmt.Errorf("Alertmanager's loader refuses it: %w\n%s", err, data)
		}
		return nil
	})
	waitFor(t, "the StatefulSets", func() error {
		for _, n := range []string{"prometheus-prometheus", "alertmanager-alertmanager"} {
			if _, err := c.Typed().AppsV1().StatefulSets("kube-ops").Get(ctx, n, metav1.GetOptions{}); err != nil {
				return err
			}
		}
		return nil
	})
	waitFor(t, "the kubelets' EndpointSlice", func() error {
		sl, err := c.Typed().DiscoveryV1().EndpointSlices("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=kubelet"})
		if err != nil {
			return err
		}
		for _, s := range sl.Items {
			for _, e := range s.Endpoints {
				if len(e.Addresses) > 0 && e.Addresses[0] == "10.0.0.1" {
					return nil
				}
			}
		}
		return fmt.Errorf("node1's 10.0.0.1 not in %d slices", len(sl.Items))
	})
}

// The dashboards are judged by what they ask: every panel's query
// through Prometheus's PromQL parser ($var as a regular expression), the
// metric selector of every variable's label_values too; and the
// rendered ConfigMap holds each as Grafana's JSON model, its panels laid
// out without overlap. The seven are there.
func TestDashboards(t *testing.T) {
	files, err := fs.Glob(assets.Charts, "charts/monitoring/dashboards/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("dashboards: %v, %v", files, err)
	}
	labelValues := regexp.MustCompile(`^label_values\((.+), *[a-z_]+\)$`)
	specs := map[string]int{} // uid -> panels
	for _, f := range files {
		data, err := fs.ReadFile(assets.Charts, f)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			Title, UID string
			Variables  []struct{ Name, Query string }
			Panels     []struct {
				Title, Unit, Type string
				Targets           []struct{ Expr, Legend string }
			}
		}
		if err := yaml.UnmarshalStrict(data, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		specs[d.UID] = len(d.Panels)
		for _, v := range d.Variables {
			m := labelValues.FindStringSubmatch(v.Query)
			if m == nil {
				t.Errorf("%s: variable %s: %q is not label_values(SELECTOR, LABEL)", f, v.Name, v.Query)
				continue
			}
			if _, err := parser.ParseExpr(m[1]); err != nil {
				t.Errorf("%s: variable %s: %v", f, v.Name, err)
			}
		}
		for _, p := range d.Panels {
			if p.Unit == "" || len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no unit or no query", f, p.Title)
			}
			for _, q := range p.Targets {
				if _, err := parser.ParseExpr(dashboardVar.ReplaceAllString(q.Expr, ".+")); err != nil {
					t.Errorf("%s: panel %q: %v\n%s", f, p.Title, err, q.Expr)
				}
			}
		}
	}
	for _, uid := range []string{"metalk8s-cluster", "metalk8s-nodes", "metalk8s-workloads", "metalk8s-etcd",
		"metalk8s-apiserver", "metalk8s-ingress", "metalk8s-volumes"} {
		if specs[uid] == 0 {
			t.Errorf("no dashboard %s", uid)
		}
	}

	cm := find(t, monitoringObjects(t, nil), "ConfigMap", "grafana-dashboards")
	data, _, _ := unstructured.NestedStringMap(cm.Object, "data")
	if len(data) != len(files) {
		t.Errorf("%d dashboards in the ConfigMap, %d files", len(data), len(files))
	}
	for name, js := range data {
		var d struct {
			UID    string
			Panels []struct {
				Type    string
				GridPos struct{ X, Y, W, H int }
				Targets []struct{ Expr, RefID string }
			}
		}
		if err := json.Unmarshal([]byte(js), &d); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(d.Panels) != specs[d.UID] {
			t.Errorf("%s: %d panels, its spec %d", name, len(d.Panels), specs[d.UID])
		}
		cells := map[[2]int]bool{}
		for _, p := range d.Panels {
			if p.GridPos.W == 0 || p.GridPos.X+p.GridPos.W > 24 || len(p.Targets) == 0 || p.Targets[0].RefID != "A" {
				t.Errorf("%s: panel %+v", name, p)
			}
			for x := p.GridPos.X; x < p.GridPos.X+p.GridPos.W; x++ {
				for y := p.GridPos.Y; y < p.GridPos.Y+p.GridPos.H; y++ {
					if cells[[2]int{x, y}] {
						t.Errorf("%s: panels overlap at %d,%d", name, x, y)
					}
					cells[[2]int{x, y}] = true
				}
			}
		}
	}
	// Grafana off: none of its objects
	for _, o := range monitoringObjects(t, map[string]any{"grafana": map[string]any{"enabled": false}}) {
		if strings.HasPrefix(o.GetName(), "grafana") {
			t.Errorf("grafana disabled: %s %s rendered", o.GetKind(), o.GetName())
		}
	}
}
