package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/metalk8s/metalk8s/pkg/ssh"
	"github.com/metalk8s/metalk8s/pkg/steps"
)

// The plan's verdict from reports of in-memory steps: it counts what
// could not be checked and says "No changes" only when all was checked.

type memHost string

func (h memHost) Name() string                                { return string(h) }
func (h memHost) Run(context.Context, string) ([]byte, error) { return nil, nil }
func (h memHost) Put(context.Context, ssh.File) (bool, error) { return false, nil }

// planReport plans a connect step per host and n prepare steps after it;
// down hosts fail to connect, and the prepare steps of host "b" would change.
func planReport(t *testing.T, n int, o steps.Options, down ...string) *steps.Report {
	t.Helper()
	hosts := map[string]steps.Host{}
	var all []*steps.Step
	for _, h := range []string{"a", "b"} {
		hosts[h] = memHost(h)
		failing := slices.Contains(down, h)
		connect := steps.ID("preflight/connect", h)
		all = append(all, &steps.Step{ID: connect, Host: h, Phase: "preflight",
			Check: func(context.Context, steps.Host) (steps.Change, error) {
				if failing {
					return steps.NoChange, errors.New("connection refused")
				}
				return steps.NoChange, nil
			}})
		for i := range n {
			all = append(all, &steps.Step{ID: steps.ID(fmt.Sprintf("prepare/s%d", i), h), Host: h, Phase: "prepare", Deps: []string{connect},
				Check: func(context.Context, steps.Host) (steps.Change, error) {
					if h == "b" {
						return steps.Changes("+ s"), nil
					}
					return steps.NoChange, nil
				}, Apply: func(context.Context, steps.Host) error { return nil }})
		}
	}
	g, err := steps.NewGraph(all)
	if err != nil {
		t.Fatal(err)
	}
	o.Transient = func(error) bool { return false }
	return steps.Run(context.Background(), g, hosts, o)
}

func TestPlanVerdict(t *testing.T) {
	for _, c := range []struct {
		name     string
		report   *steps.Report
		text     string
		complete bool
		changes  int
	}{
		{"a failed host", planReport(t, 22, steps.Options{}, "a"), "Plan incomplete: 1 failed, 22 blocked, 22 would change.", false, 22},
		{"every host down", planReport(t, 3, steps.Options{}, "a", "b"), "Plan incomplete: 2 failed, 6 blocked, 0 would change.", false, 0},
		{"all checked", planReport(t, 2, steps.Options{}), "2 steps would change.", true, 2},
		{"nothing to change", planReport(t, 0, steps.Options{}), "No changes: the cluster matches the inventory.", true, 0},
		{"phases not selected", planReport(t, 2, steps.Options{Only: map[string]bool{"preflight": true}}),
			"No changes in the selected steps (4 steps not selected, not checked).", false, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			PlanText(&b, c.report)
			lines := strings.Split(strings.TrimSpace(b.String()), "\n")
			if last := lines[len(lines)-1]; last != c.text {
				t.Errorf("last line %q, want %q\n%s", last, c.text, b.String())
			}
			data, _ := json.Marshal(Plan("run", c.report))
			var p struct {
				Verdict Verdict
				Failed  []PlanChange
			}
			if err := json.Unmarshal(data, &p); err != nil {
				t.Fatal(err)
			}
			v := p.Verdict
			if v.Text != c.text || v.Complete != c.complete || v.WouldChange != c.changes ||
				len(p.Failed) != v.Failed+v.Blocked+v.Canceled {
				t.Errorf("json %s", data)
			}
		})
	}
}
