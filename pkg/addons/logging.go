package addons

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/metalk8s/metalk8s/pkg/inventory"
)

// LoggingRetentionVar is how long central logs are kept: a number and s,
// h, d, w, M (31 days) or y, at least a day; default 7d (Curator's job in
// MetalK8s 0.x). It is VictoriaLogs' -retentionPeriod.
const LoggingRetentionVar = "metalk8s_logging_retention"

// loggingValues are the logging chart's images, and its ServiceMonitors
// when the monitoring addon (before it) is enabled.
func loggingValues(p Params, enabled map[string]bool) map[string]any {
	v := map[string]any{"serviceMonitor": map[string]any{"enabled": enabled["monitoring"]}}
	if p.VictoriaLogsImage != "" {
		v["victoriaLogs"] = map[string]any{"image": image(p.VictoriaLogsImage, p.Bundled)}
	}
	if p.VlagentImage != "" {
		v["collector"] = map[string]any{"image": image(p.VlagentImage, p.Bundled)}
	}
	return v
}

// loggingVars are the logging chart's values from n's
// metalk8s_logging_retention, when set.
func loggingVars(n *inventory.Node) (map[string]any, error) {
	v, ok := n.Vars[LoggingRetentionVar]
	if !ok || v == nil {
		return nil, nil
	}
	s := strings.TrimSpace(fmt.Sprint(plain(v)))
	if err := checkRetention(s); err != nil {
		return nil, varError(n, LoggingRetentionVar, "%v", err)
	}
	return map[string]any{"victoriaLogs": map[string]any{"retention": s}}, nil
}

var retentionRE = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)([shdwMy])$`)

// retentionUnits are VictoriaLogs' -retentionPeriod suffixes (a month
// as 31 days, as its flag parser counts it).
var retentionUnits = map[string]time.Duration{"s": time.Second, "h": time.Hour, "d": 24 * time.Hour,
	"w": 7 * 24 * time.Hour, "M": 31 * 24 * time.Hour, "y": 365 * 24 * time.Hour}

// checkRetention says why s is not a retention VictoriaLogs takes: a
// number and a unit (metalk8s requires the unit: VictoriaLogs reads a bare
// number as months), at least one day.
func checkRetention(s string) error {
	m := retentionRE.FindStringSubmatch(s)
	if m == nil {
		return fmt.Errorf("must be a number and a unit (s, h, d, w, M, y), e.g. 7d or 2w; found %q", s)
	}
	f, _ := strconv.ParseFloat(m[1], 64)
	if time.Duration(f*float64(retentionUnits[m[2]])) < 24*time.Hour {
		return fmt.Errorf("must be at least 1d (VictoriaLogs keeps whole days); found %q", s)
	}
	return nil
}
