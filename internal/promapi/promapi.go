// Package promapi asks a running Prometheus, through its HTTP API
// (/api/v1), what the tests judge the monitoring addon's dashboards and
// rules by: how many series a query returns, and the rules it loaded.
package promapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client asks the Prometheus at Base, e.g. http://127.0.0.1:9090 or a
// `kubectl proxy` service URL (no trailing slash needed).
type Client struct {
	Base string
	// HTTP is the client used; nil: one with a 2-minute timeout.
	HTTP *http.Client
}

// Rule is one rule Prometheus loaded, as /api/v1/rules reports it.
type Rule struct {
	Group     string
	Name      string
	Query     string
	Health    string // "ok", "err" or "unknown" (not evaluated yet)
	LastError string
	State     string // an alerting rule's: "inactive", "pending", "firing"
}

// get decodes the JSON answer to GET path?q into out; an error for a
// status other than 200 or an answer whose status is not "success".
func (c Client) get(path string, q url.Values, out any) error {
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 2 * time.Minute}
	}
	resp, err := hc.Get(strings.TrimSuffix(c.Base, "/") + path + "?" + q.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var r struct {
		Status, Error string
		Data          json.RawMessage
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return fmt.Errorf("%s: HTTP %s: %w", path, resp.Status, err)
	}
	if r.Status != "success" {
		return fmt.Errorf("%s: HTTP %s: %s", path, resp.Status, r.Error)
	}
	return json.Unmarshal(r.Data, out)
}

// Query runs the PromQL query q at the current time and returns how many
// series (or 1 for a scalar) it returned; an error is Prometheus's own
// (a parse error, an evaluation error) or the transport's.
func (c Client) Query(q string) (int, error) {
	var d struct{ Result json.RawMessage }
	if err := c.get("/api/v1/query", url.Values{"query": {q}}, &d); err != nil {
		return 0, fmt.Errorf("%s: %w", q, err)
	}
	var series []json.RawMessage
	if json.Unmarshal(d.Result, &series) != nil {
		return 1, nil // a scalar or a string
	}
	return len(series), nil
}

// QueryRange runs the PromQL query q over the last `over` (up to now),
// one evaluation every step, as a dashboard's graph does, and returns how
// many series had at least one point; errors as Query's.
func (c Client) QueryRange(q string, over, step time.Duration) (int, error) {
	end := time.Now()
	v := url.Values{"query": {q},
		"start": {fmt.Sprint(end.Add(-over).Unix())}, "end": {fmt.Sprint(end.Unix())},
		"step": {fmt.Sprint(int64(step.Seconds()))}}
	var d struct {
		Result []struct{ Values []json.RawMessage }
	}
	if err := c.get("/api/v1/query_range", v, &d); err != nil {
		return 0, fmt.Errorf("%s: %w", q, err)
	}
	n := 0
	for _, s := range d.Result {
		if len(s.Values) > 0 {
			n++
		}
	}
	return n, nil
}

// Rules returns every rule Prometheus loaded, group by group.
func (c Client) Rules() ([]Rule, error) {
	var d struct {
		Groups []struct {
			Name  string
			Rules []Rule
		}
	}
	if err := c.get("/api/v1/rules", nil, &d); err != nil {
		return nil, err
	}
	var out []Rule
	for _, g := range d.Groups {
		for _, r := range g.Rules {
			r.Group = g.Name
			out = append(out, r)
		}
	}
	return out, nil
}

// Problem says what is wrong with r as loaded in a healthy Prometheus,
// or "": its last evaluation failed, or it is the always-firing Watchdog
// and does not fire.
func (r Rule) Problem() string {
	if r.Health != "ok" {
		return fmt.Sprintf("health %q: %s", r.Health, r.LastError)
	}
	if r.Name == "Watchdog" && r.State != "firing" {
		return fmt.Sprintf("Watchdog is %q, want firing", r.State)
	}
	return ""
}
