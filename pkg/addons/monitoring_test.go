package addons

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	amconfig "github.com/prometheus/alertmanager/config"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	helmkube "helm.sh/helm/v4/pkg/kube"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/metalk8s/metalk8s/assets"
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
		"KubeletCertificateExpiration", "KubePodCrashLooping"} {
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
	// the inventory's retention; values the schema refuses
	objs = monitoringObjects(t, map[string]any{"prometheus": map[string]any{"retention": "30d", "retentionSize": "8GB"}})
	prom = find(t, objs, "Prometheus", "prometheus")
	if r, _, _ := unstructured.NestedString(prom.Object, "spec", "retention"); r != "30d" {
		t.Errorf("retention %q, want 30d", r)
	}
	ch, err := LoadChart(assets.Charts, "charts/monitoring")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []map[string]any{
		{"prometheus": map[string]any{"retention": "a month"}},
		{"prometheus": map[string]any{"storage": map[string]any{"storageClassName": "local-lvm", "size": "lots"}}},
		{"nodeExporter": map[string]any{"targets": []any{map[string]any{"node": "n1"}}}},
		{"grafana": map[string]any{}},
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
}
