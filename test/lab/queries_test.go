package lab

import (
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/metalk8s/metalk8s/internal/promapi"
	"github.com/metalk8s/metalk8s/pkg/addons"
)

// TestLabQueries judges the monitoring addon's dashboards and rules by
// what they ask of the lab's Prometheus, whose base URL is in
// METALK8S_LAB_PROMETHEUS (make lab-monitoring sets it to a kubectl
// proxy URL; skipped without it). Every dashboard panel's query returns
// data over the last 15 minutes (as its graph would show), and so does
// every selector of the loaded rules (the rules themselves are empty when
// healthy; so are the alerts a panel counts, whose selectors are checked
// as ALERTS, which Watchdog keeps, and the 5xx responses a panel counts,
// whose selectors are checked without their code); every rule evaluates
// without error and Watchdog fires. Series of kube-state-metrics, whose image
// cannot be built here, are not expected: queries using them are listed,
// not checked.
func TestLabQueries(t *testing.T) {
	base := os.Getenv("METALK8S_LAB_PROMETHEUS")
	if base == "" {
		t.Skip("METALK8S_LAB_PROMETHEUS is not set (make lab-monitoring sets it)")
	}
	prom := promapi.Client{Base: base}
	// query: how many series q showed over the last 15 minutes, as a
	// dashboard's graph does (a scrape of a loaded lab node may fail and
	// leave a series stale for a while), asked again on an error (the
	// proxy's, on a loaded control plane)
	query := func(q string) (n int, err error) {
		for try := 0; try < 3; try++ {
			if n, err = prom.QueryRange(q, 15*time.Minute, 30*time.Second); err == nil {
				return n, nil
			}
			time.Sleep(10 * time.Second)
		}
		return n, err
	}
	var unchecked, failures []string
	// ksm: whether expr reads kube-state-metrics' series (kube_*)
	ksm := func(expr parser.Expr) bool {
		for _, vs := range parser.ExtractSelectors(expr) {
			for _, m := range vs {
				if m.Name == labels.MetricName && strings.HasPrefix(m.Value, "kube_") {
					return true
				}
			}
		}
		return false
	}
	// alerts: vs selects ALERTS, the series of alerts firing, which is
	// empty when healthy but for Watchdog's
	alerts := func(vs []*labels.Matcher) bool {
		return slices.ContainsFunc(vs, func(m *labels.Matcher) bool {
			return m.Name == labels.MetricName && m.Type == labels.MatchEqual && m.Value == "ALERTS"
		})
	}
	// serverErrors: m selects responses with a 5xx code only (a panel
	// counting failures, empty when healthy)
	serverErrors := func(m *labels.Matcher) bool {
		return m.Name == "code" && m.Type == labels.MatchRegexp && strings.HasPrefix(m.Value, "5")
	}
	checkExpr := func(what, expr string, whole bool) {
		e, err := parser.ParseExpr(expr)
		if err != nil {
			t.Errorf("%s: %v", what, err)
			return
		}
		if ksm(e) {
			unchecked = append(unchecked, what)
			return
		}
		for _, vs := range parser.ExtractSelectors(e) {
			if alerts(vs) {
				// Prometheus's own series of firing alerts: only
				// Watchdog's is there when healthy
				vs = []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, "ALERTS")}
			}
			if slices.ContainsFunc(vs, serverErrors) {
				// the series it counts failures among must be there
				vs = slices.DeleteFunc(slices.Clone(vs), serverErrors)
				if whole {
					failures = append(failures, what)
				}
				whole = false
			}
			sel := (&parser.VectorSelector{LabelMatchers: vs}).String()
			if n, err := query(sel); err != nil || n == 0 {
				t.Errorf("%s: %s returns nothing (%v)", what, sel, err)
			}
		}
		if whole && !slices.ContainsFunc(parser.ExtractSelectors(e), alerts) {
			if n, err := query(expr); err != nil || n == 0 {
				t.Errorf("%s returns nothing (%v):\n%s", what, err, expr)
			}
		}
	}

	queries, err := addons.DashboardQueries()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range queries {
		checkExpr(fmt.Sprintf("dashboard %s, panel %q", q.Dashboard, q.Panel), q.Expr, true)
	}

	rules, err := prom.Rules()
	if err != nil {
		t.Fatal(err)
	}
	n := len(rules)
	for _, r := range rules {
		if p := r.Problem(); p != "" {
			t.Errorf("rule %s (group %s): %s", r.Name, r.Group, p)
		}
		checkExpr("rule "+r.Name, r.Query, false)
	}
	if n == 0 {
		t.Fatal("Prometheus loaded no rule")
	}
	sort.Strings(unchecked)
	t.Logf("%d dashboard queries and %d rules run; reading kube-state-metrics (not run in the lab), not checked:\n  %s",
		len(queries), n, strings.Join(unchecked, "\n  "))
	t.Logf("counting 5xx responses, empty when healthy: their selectors checked without the code, not the panel:\n  %s",
		strings.Join(failures, "\n  "))
}
