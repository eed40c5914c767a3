package addons

import (
	"fmt"
	"io/fs"
	"regexp"

	"sigs.k8s.io/yaml"

	"github.com/metalk8s/metalk8s/assets"
)

// PanelQuery is one query of one panel of the dashboards the monitoring
// chart provisions (charts/monitoring/dashboards/*.yaml).
type PanelQuery struct {
	Dashboard string // the dashboard's uid, e.g. metalk8s-nodes
	Panel     string // the panel's title
	Expr      string // PromQL, each $variable replaced by ".+"
}

// dashboardVar is a Grafana template variable in a query ($node).
var dashboardVar = regexp.MustCompile(`\$[a-z_]+`)

// DashboardQueries returns every panel query of the monitoring chart's
// dashboards, file by file and panel by panel, each Grafana variable
// replaced by ".+" (every value, as the dashboards' "All"), so each is
// PromQL a Prometheus can run as is. An error names a file that does not
// parse.
func DashboardQueries() ([]PanelQuery, error) {
	files, err := fs.Glob(assets.Charts, "charts/monitoring/dashboards/*.yaml")
	if err != nil {
		return nil, err
	}
	var out []PanelQuery
	for _, f := range files {
		data, err := fs.ReadFile(assets.Charts, f)
		if err != nil {
			return nil, err
		}
		var d struct {
			UID    string
			Panels []struct {
				Title   string
				Targets []struct{ Expr string }
			}
		}
		if err := yaml.Unmarshal(data, &d); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		for _, p := range d.Panels {
			for _, q := range p.Targets {
				out = append(out, PanelQuery{Dashboard: d.UID, Panel: p.Title, Expr: dashboardVar.ReplaceAllString(q.Expr, ".+")})
			}
		}
	}
	return out, nil
}
