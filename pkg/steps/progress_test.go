package steps

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

// Lines prints finished steps; Verbose adds the starts, a pending step's
// changes and what a blocked step waited for.
func TestLinesVerbose(t *testing.T) {
	s := &Step{ID: ID("prepare/state-dir", "node1"), Host: "node1"}
	pending := &Outcome{Step: s, Status: StatusPending, Change: Changes("+ create /var/lib/metalk8s/node1")}
	blocked := &Outcome{Step: s, Status: StatusBlocked, Err: errors.New("preflight/connect@node1 did not finish")}
	for _, c := range []struct {
		verbose bool
		want    []string // lines, without the time
		not     string
	}{
		{false, []string{"node1        prepare/state-dir            would change", "node1        prepare/state-dir            blocked"}, "create"},
		{true, []string{"node1        prepare/state-dir            started",
			"node1        prepare/state-dir            would change",
			"                        + create /var/lib/metalk8s/node1",
			"node1        prepare/state-dir            blocked: preflight/connect@node1 did not finish"}, ""},
	} {
		var b strings.Builder
		l := &Lines{W: &b, Verbose: c.verbose}
		l.Started(s)
		l.Finished(pending)
		l.Finished(blocked)
		got := regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d `).ReplaceAllString(b.String(), "")
		if want := strings.Join(c.want, "\n") + "\n"; got != want {
			t.Errorf("verbose %v:\n got %q\nwant %q", c.verbose, got, want)
		}
		if c.not != "" && strings.Contains(got, c.not) {
			t.Errorf("verbose %v prints %q:\n%s", c.verbose, c.not, got)
		}
	}
}

// A step with nothing to do says why on its line when its Note is set
// (a disabled addon), not a bare "ok".
func TestLinesNote(t *testing.T) {
	var b strings.Builder
	s := &Step{ID: ID("addons/logging", "node1"), Host: "node1"}
	(&Lines{W: &b}).Finished(&Outcome{Step: s, Status: StatusOK, Change: Change{Note: "disabled: metalk8s_logging_enabled is false, no release"}})
	if want := "node1        addons/logging               ok (disabled: metalk8s_logging_enabled is false, no release)\n"; b.String()[9:] != want {
		t.Errorf("got %q, want %q", b.String()[9:], want)
	}
}
