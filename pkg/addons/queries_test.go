package addons

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/metalk8s/metalk8s/internal/promapi"
	"github.com/metalk8s/metalk8s/pkg/kube/kubetest"
)

// hereJobs are the scrape jobs TestQueriesReturnData runs real peers for,
// under the chart's job names.
var hereJobs = map[string]bool{"node-exporter": true, "etcd": true, "apiserver": true, "prometheus": true}

// jobOf is where a selector's series come from: its job="..." matcher,
// else its metric name's exporter.
func jobOf(vs *parser.VectorSelector) string {
	for _, m := range vs.LabelMatchers {
		if m.Name == "job" && m.Type == labels.MatchEqual {
			return m.Value
		}
	}
	if vs.Name == "up" || vs.Name == "ALERTS" {
		return "prometheus" // Prometheus's own series, for every job
	}
	for prefix, job := range map[string]string{"node_": "node-exporter", "etcd_": "etcd", "apiserver_": "apiserver",
		"prometheus_": "prometheus", "kube_": "kube-state-metrics", "kubelet_": "kubelet", "container_": "kubelet", "traefik_": "traefik"} {
		if strings.HasPrefix(vs.Name, prefix) {
			return job
		}
	}
	return "?" + vs.Name
}

// TestQueriesReturnData runs the real Prometheus (the version the addon
// runs; build.sh prometheus) with the chart's rules, scraping real peers
// on this machine under the chart's job names: node_exporter (job
// node-exporter, label node), etcd and kube-apiserver (kubetest's; the
// apiserver with the admin's certificate) and itself. Every rule evaluates
// without error and Watchdog fires. Every dashboard query whose series
// come only from those jobs returns data, and so does each of its
// selectors and each selector of the rules (the rules themselves are
// empty when healthy): a metric misspelled or gone in a new version is
// found. The kubelet's, cAdvisor's, kube-state-metrics' and Traefik's
// metrics do not run here: queries of theirs are listed, not checked.
func TestQueriesReturnData(t *testing.T) {
	promBin := kubetest.Binary(t, "prometheus", "prometheus")
	neBin := kubetest.Binary(t, "node_exporter", "node-exporter")
	s := kubetest.Start(t)
	dir := t.TempDir()

	// node_exporter with a textfile as the etcd/certs step writes it
	// (pkg/etcd's TestCertMetrics checks the writer's side)
	textfiles := t.TempDir()
	cert := fmt.Sprintf("metalk8s_certificate_expiration_timestamp_seconds{component=\"etcd\",file=\"/etc/kubernetes/pki/etcd/ca.crt\",subject=\"CN=etcd-ca\"} %d\n",
		time.Now().Add(365*24*time.Hour).Unix())
	if err := os.WriteFile(filepath.Join(textfiles, "metalk8s-etcd-certificates.prom"), []byte(cert), 0o644); err != nil {
		t.Fatal(err)
	}
	neAddr := fmt.Sprintf("127.0.0.1:%d", kubetest.FreePort(t))
	startLogged(t, "node_exporter", exec.Command(neBin, "--web.listen-address="+neAddr, "--collector.textfile.directory="+textfiles))
	promAddr := fmt.Sprintf("127.0.0.1:%d", kubetest.FreePort(t))
	etcd, err := url.Parse(s.EtcdURL)
	if err != nil {
		t.Fatal(err)
	}
	ca, crt, key := s.AdminFiles()
	config := map[string]any{
		"global":     map[string]any{"scrape_interval": "1s", "evaluation_interval": "1s"},
		"rule_files": []string{filepath.Join(dir, "rules.yaml")},
		"scrape_configs": []any{
			map[string]any{"job_name": "node-exporter", "static_configs": []any{map[string]any{"targets": []string{neAddr}, "labels": map[string]string{"node": "node1"}}}},
			map[string]any{"job_name": "etcd", "static_configs": []any{map[string]any{"targets": []string{etcd.Host}, "labels": map[string]string{"node": "node1"}}}},
			map[string]any{"job_name": "apiserver", "scheme": "https", "tls_config": map[string]string{"ca_file": ca, "cert_file": crt, "key_file": key},
				"static_configs": []any{map[string]any{"targets": []string{fmt.Sprintf("127.0.0.1:%d", s.Port)}}}},
			map[string]any{"job_name": "prometheus", "static_configs": []any{map[string]any{"targets": []string{promAddr}}}},
		},
	}
	groups, _, _ := unstructured.NestedSlice(find(t, monitoringObjects(t, nil), "PrometheusRule", "metalk8s").Object, "spec", "groups")
	for name, v := range map[string]any{"prometheus.yaml": config, "rules.yaml": map[string]any{"groups": groups}} {
		data, err := yaml.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	startLogged(t, "prometheus", exec.Command(promBin, "--config.file="+filepath.Join(dir, "prometheus.yaml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+promAddr))

	query := promapi.Client{Base: "http://" + promAddr}.Query
	// every job up, a few scrapes in (rate() needs two samples)
	waitFor(t, "every job up", func() error {
		n, err := query(`count(up == 1) >= 4 and count(count_over_time(up{job="node-exporter"}[1m]) >= 4)`)
		if err == nil && n == 0 {
			err = fmt.Errorf("not yet")
		}
		return err
	})
	time.Sleep(3 * time.Second) // a rule evaluation or two

	// LVM's device-mapper disks, which the volumes dashboard selects, exist
	// only on a machine with logical volumes
	dm, _ := filepath.Glob("/sys/block/dm-*")
	var unchecked []string
	checkExpr := func(what, expr string, whole bool) {
		e, err := parser.ParseExpr(expr)
		if err != nil {
			t.Errorf("%s: %v", what, err)
			return
		}
		if len(dm) == 0 && strings.Contains(expr, `"dm-`) {
			unchecked = append(unchecked, what+" (no device-mapper disk on this machine)")
			return
		}
		all := true
		for _, vs := range parser.ExtractSelectors(e) {
			sel := &parser.VectorSelector{LabelMatchers: vs}
			for _, m := range vs {
				if m.Name == labels.MetricName {
					sel.Name = m.Value
				}
			}
			job := jobOf(sel)
			if !hereJobs[job] {
				all = false
				unchecked = append(unchecked, fmt.Sprintf("%s (%s)", what, job))
				continue
			}
			if n, err := query(sel.String()); err != nil || n == 0 {
				t.Errorf("%s: %s returns nothing (%v)", what, sel, err)
			}
		}
		if whole && all {
			if n, err := query(expr); err != nil || n == 0 {
				t.Errorf("%s returns nothing (%v):\n%s", what, err, expr)
			}
		}
	}

	queries, err := DashboardQueries()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range queries {
		checkExpr(fmt.Sprintf("dashboard %s, panel %q", q.Dashboard, q.Panel), q.Expr, true)
	}
	panels := len(queries)

	// the rules: evaluated without error; their selectors find series
	rules, err := promapi.Client{Base: "http://" + promAddr}.Rules()
	if err != nil {
		t.Fatal(err)
	}
	n := len(rules)
	for _, r := range rules {
		if p := r.Problem(); p != "" {
			t.Errorf("rule %s: %s", r.Name, p)
		}
		checkExpr("rule "+r.Name, r.Query, false)
	}
	if n == 0 {
		t.Fatal("Prometheus loaded no rule")
	}
	sort.Strings(unchecked)
	t.Logf("%d dashboard queries and %d rules run; selectors of jobs that do not run here, not checked:\n  %s",
		panels, n, strings.Join(unchecked, "\n  "))
}
