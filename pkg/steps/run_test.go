package steps

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metalk8s/metalk8s/pkg/ssh"
)

// These tests use an in-memory host: they check the executor's own logic
// (order, parallelism, retries, isolation), not any transport.

type memHost struct{ name string }

func (h memHost) Name() string                                { return h.name }
func (h memHost) Run(context.Context, string) ([]byte, error) { return nil, nil }
func (h memHost) Put(context.Context, ssh.File) (bool, error) { return false, nil }

func hostsFor(names ...string) map[string]Host {
	m := map[string]Host{}
	for _, n := range names {
		m[n] = memHost{n}
	}
	return m
}

// toggle is a step whose state is a flag: Check wants it set, Apply sets it.
func toggle(id, host, phase string, deps ...string) (*Step, *atomic.Bool) {
	var set atomic.Bool
	return &Step{ID: id, Host: host, Phase: phase, Deps: deps,
		Check: func(context.Context, Host) (Change, error) {
			if set.Load() {
				return NoChange, nil
			}
			return Changes("+ " + id), nil
		},
		Apply: func(context.Context, Host) error { set.Store(true); return nil },
	}, &set
}

var errTransient = errors.New("connection lost")

func isTransient(err error) bool { return errors.Is(err, errTransient) }

func noSleep(context.Context, time.Duration) error { return nil }

func mustGraph(t *testing.T, steps ...*Step) *Graph {
	t.Helper()
	g, err := NewGraph(steps)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestOrderAndNoPhaseBarrier(t *testing.T) {
	var mu sync.Mutex
	var events []string
	record := func(e string) { mu.Lock(); events = append(events, e); mu.Unlock() }
	slowGate := make(chan struct{})
	mk := func(id, host, phase string, wait chan struct{}, deps ...string) *Step {
		return &Step{ID: id, Host: host, Phase: phase, Deps: deps,
			Check: func(context.Context, Host) (Change, error) {
				record("start " + id)
				if wait != nil {
					<-wait
				}
				record("end " + id)
				return NoChange, nil
			}}
	}
	// a1 (slow, preflight) on host a; b1 -> b2 (prepare) on host b. b2 must
	// not wait for a1: there is no phase-wide barrier.
	g := mustGraph(t,
		mk("a1", "a", "preflight", slowGate),
		mk("b1", "b", "preflight", nil),
		mk("b2", "b", "prepare", nil, "b1"),
	)
	go func() {
		for {
			mu.Lock()
			doneB2 := strings.Contains(strings.Join(events, ","), "end b2")
			mu.Unlock()
			if doneB2 {
				close(slowGate)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	r := Run(context.Background(), g, hostsFor("a", "b"), Options{Forks: 4})
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	pos := func(e string) int {
		for i, x := range events {
			if x == e {
				return i
			}
		}
		t.Fatalf("no event %q in %v", e, events)
		return -1
	}
	if pos("end b1") > pos("start b2") {
		t.Errorf("b2 started before its dependency b1 ended: %v", events)
	}
	if pos("end b2") > pos("end a1") {
		t.Errorf("b2 waited for a1 of another host: %v", events)
	}
}

func TestOneStepAtATimePerHostAndForks(t *testing.T) {
	var running, maxRunning, perHostOverlap atomic.Int32
	busy := map[string]*atomic.Int32{"a": {}, "b": {}, "c": {}}
	var steps []*Step
	for _, h := range []string{"a", "b", "c"} {
		for i := 0; i < 5; i++ {
			steps = append(steps, &Step{ID: ID("s"+string(rune('0'+i)), h), Host: h, Phase: "preflight",
				Check: func(context.Context, Host) (Change, error) {
					if busy[h].Add(1) > 1 {
						perHostOverlap.Add(1)
					}
					n := running.Add(1)
					for {
						m := maxRunning.Load()
						if n <= m || maxRunning.CompareAndSwap(m, n) {
							break
						}
					}
					time.Sleep(2 * time.Millisecond)
					running.Add(-1)
					busy[h].Add(-1)
					return NoChange, nil
				}})
		}
	}
	r := Run(context.Background(), mustGraph(t, steps...), hostsFor("a", "b", "c"), Options{Forks: 2})
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if perHostOverlap.Load() != 0 {
		t.Errorf("two steps ran at once on one host")
	}
	if m := maxRunning.Load(); m > 2 || m < 2 {
		t.Errorf("at most %d steps ran at once, want exactly the 2 forks", m)
	}
}

func TestRetryTransient(t *testing.T) {
	var calls atomic.Int32
	flaky := &Step{ID: "flaky@a", Host: "a", Phase: "preflight", Retry: Retry{Attempts: 3},
		Check: func(context.Context, Host) (Change, error) {
			if calls.Add(1) < 3 {
				return NoChange, errTransient
			}
			return NoChange, nil
		}}
	var hard atomic.Int32
	broken := &Step{ID: "broken@b", Host: "b", Phase: "preflight", Retry: Retry{Attempts: 3},
		Check: func(context.Context, Host) (Change, error) {
			hard.Add(1)
			return NoChange, errors.New("disk on fire")
		}}
	r := Run(context.Background(), mustGraph(t, flaky, broken), hostsFor("a", "b"),
		Options{Transient: isTransient, Sleep: noSleep})
	if o := r.Outcomes["flaky@a"]; o.Status != StatusOK || o.Attempts != 3 {
		t.Errorf("flaky: %s after %d attempts, want ok after 3", o.Status, o.Attempts)
	}
	// the retries are said, not hidden
	if w := r.Outcomes["flaky@a"].Change.Warnings; len(w) != 1 || !strings.Contains(w[0], "done at attempt 3") ||
		!strings.Contains(w[0], "attempt 1: check: "+errTransient.Error()) || !strings.Contains(w[0], "attempt 2: ") {
		t.Errorf("flaky's warnings: %q", w)
	}
	if o := r.Outcomes["broken@b"]; o.Status != StatusFailed || hard.Load() != 1 {
		t.Errorf("broken: %s after %d calls, want failed after 1 (not transient)", o.Status, hard.Load())
	} else if strings.Contains(o.Err.Error(), "tried") {
		t.Errorf("broken: %v, want no count of tries after one", o.Err)
	}
	// Transient for ever: gives up after the attempts.
	var n atomic.Int32
	down := &Step{ID: "down@a", Host: "a", Phase: "preflight", Retry: Retry{Attempts: 4},
		Check: func(context.Context, Host) (Change, error) { n.Add(1); return NoChange, errTransient }}
	r = Run(context.Background(), mustGraph(t, down), hostsFor("a"), Options{Transient: isTransient, Sleep: noSleep})
	if o := r.Outcomes["down@a"]; o.Status != StatusFailed || n.Load() != 4 ||
		!errors.Is(o.Err, errTransient) || !strings.HasSuffix(o.Err.Error(), " (tried 4 times)") {
		t.Errorf("down: %s after %d tries (%v), want failed after 4, saying so", o.Status, n.Load(), o.Err)
	}
}

// A step's own Retry.If replaces the run's transient test: its errors
// are tried again, and a transient one is not.
func TestRetryIf(t *testing.T) {
	errSlow := errors.New("preflight timed out")
	var slow, dropped atomic.Int32
	own := Retry{Attempts: 3, If: func(err error) bool { return errors.Is(err, errSlow) }}
	flaky := &Step{ID: "join@a", Host: "a", Phase: "control-plane", Retry: own,
		Check: func(context.Context, Host) (Change, error) {
			if slow.Add(1) < 3 {
				return NoChange, errSlow
			}
			return NoChange, nil
		}}
	cut := &Step{ID: "join@b", Host: "b", Phase: "control-plane", Retry: own,
		Check: func(context.Context, Host) (Change, error) { dropped.Add(1); return NoChange, errTransient }}
	r := Run(context.Background(), mustGraph(t, flaky, cut), hostsFor("a", "b"),
		Options{Transient: isTransient, Sleep: noSleep})
	if o := r.Outcomes["join@a"]; o.Status != StatusOK || o.Attempts != 3 {
		t.Errorf("join@a: %s after %d attempts, want ok after 3", o.Status, o.Attempts)
	}
	if o := r.Outcomes["join@b"]; o.Status != StatusFailed || dropped.Load() != 1 {
		t.Errorf("join@b: %s after %d calls, want failed after 1 (If says no)", o.Status, dropped.Load())
	}
}

func TestFailureIsolation(t *testing.T) {
	failA := &Step{ID: "connect@a", Host: "a", Phase: "preflight",
		Check: func(context.Context, Host) (Change, error) { return NoChange, errors.New("host down") }}
	a2, a2set := toggle("prepare@a", "a", "prepare", "connect@a")
	okB, _ := toggle("connect@b", "b", "preflight")
	b2, b2set := toggle("prepare@b", "b", "prepare", "connect@b")
	// A cluster step on b that needs both hosts is blocked too.
	both, bothSet := toggle("cluster@b", "b", "etcd", "prepare@a", "prepare@b")
	r := Run(context.Background(), mustGraph(t, failA, a2, okB, b2, both), hostsFor("a", "b"), Options{Apply: true})
	want := map[string]Status{"connect@a": StatusFailed, "prepare@a": StatusBlocked, "connect@b": StatusChanged,
		"prepare@b": StatusChanged, "cluster@b": StatusBlocked}
	for id, st := range want {
		if got := r.Outcomes[id].Status; got != st {
			t.Errorf("%s: %s, want %s", id, got, st)
		}
	}
	if a2set.Load() || bothSet.Load() || !b2set.Load() {
		t.Errorf("applied: prepare@a=%v cluster@b=%v prepare@b=%v", a2set.Load(), bothSet.Load(), b2set.Load())
	}
	if r.Err() == nil || !strings.Contains(r.Err().Error(), "host down") {
		t.Errorf("report error %v does not name the failure", r.Err())
	}
}

func TestPlanAppliesNothingAndUpAppliesWhatPlanShows(t *testing.T) {
	s1, set1 := toggle("one@a", "a", "preflight")
	s2, set2 := toggle("two@a", "a", "prepare", "one@a")
	g := mustGraph(t, s1, s2)
	plan := Run(context.Background(), g, hostsFor("a"), Options{})
	if set1.Load() || set2.Load() {
		t.Fatal("plan applied something")
	}
	if plan.Outcomes["one@a"].Status != StatusPending || plan.Outcomes["two@a"].Status != StatusPending {
		t.Fatalf("plan: %v %v", plan.Outcomes["one@a"].Status, plan.Outcomes["two@a"].Status)
	}
	if !plan.Outcomes["two@a"].AfterDeps {
		t.Error("two@a depends on a pending step: plan must say so")
	}
	up := Run(context.Background(), g, hostsFor("a"), Options{Apply: true})
	for _, id := range []string{"one@a", "two@a"} {
		if up.Outcomes[id].Status != StatusChanged {
			t.Errorf("up %s: %s", id, up.Outcomes[id].Status)
		}
	}
	again := Run(context.Background(), g, hostsFor("a"), Options{Apply: true})
	if n := again.Count(StatusOK); n != 2 {
		t.Errorf("second up: %d steps unchanged, want 2", n)
	}
}

func TestApplyMustConverge(t *testing.T) {
	stuck := &Step{ID: "stuck@a", Host: "a", Phase: "prepare",
		Check: func(context.Context, Host) (Change, error) { return Changes("~ x"), nil },
		Apply: func(context.Context, Host) error { return nil }}
	r := Run(context.Background(), mustGraph(t, stuck), hostsFor("a"), Options{Apply: true})
	if o := r.Outcomes["stuck@a"]; o.Status != StatusFailed || !strings.Contains(o.Err.Error(), "converge") {
		t.Errorf("stuck: %s %v", o.Status, o.Err)
	}
}

func TestOnlySkipAndMissingDeps(t *testing.T) {
	pre, _ := toggle("pre@a", "a", "preflight")
	prep, prepSet := toggle("prep@a", "a", "prepare", "pre@a")
	g := mustGraph(t, pre, prep)
	o := Options{Apply: true, Only: map[string]bool{"prepare": true}}
	if m := MissingDeps(g, &o); len(m) != 1 || !strings.Contains(m[0], "pre@a") {
		t.Fatalf("missing deps: %v", m)
	}
	o.Done = func(s *Step) bool { return s.ID == "pre@a" }
	if m := MissingDeps(g, &o); len(m) != 0 {
		t.Fatalf("recorded dependency still missing: %v", m)
	}
	r := Run(context.Background(), g, hostsFor("a"), o)
	if r.Outcomes["pre@a"].Status != StatusSkipped || r.Outcomes["prep@a"].Status != StatusChanged || !prepSet.Load() {
		t.Errorf("only prepare: pre=%s prep=%s", r.Outcomes["pre@a"].Status, r.Outcomes["prep@a"].Status)
	}
}

func TestGraphValidation(t *testing.T) {
	a, _ := toggle("a@h", "h", "preflight", "b@h")
	b, _ := toggle("b@h", "h", "preflight", "a@h")
	if _, err := NewGraph([]*Step{a, b}); err == nil || !strings.Contains(err.Error(), "loop") {
		t.Errorf("cycle: %v", err)
	}
	c, _ := toggle("c@h", "h", "preflight", "nope@h")
	if _, err := NewGraph([]*Step{c}); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("unknown dep: %v", err)
	}
	early, _ := toggle("early@h", "h", "preflight", "late@h")
	late, _ := toggle("late@h", "h", "addons")
	if _, err := NewGraph([]*Step{early, late}); err == nil || !strings.Contains(err.Error(), "later phase") {
		t.Errorf("backwards phase: %v", err)
	}
}

func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	first := &Step{ID: "first@a", Host: "a", Phase: "preflight",
		Check: func(ctx context.Context, h Host) (Change, error) { cancel(); return NoChange, ctx.Err() }}
	second, set := toggle("second@a", "a", "prepare", "first@a")
	r := Run(ctx, mustGraph(t, first, second), hostsFor("a"), Options{Apply: true})
	if r.Outcomes["first@a"].Status != StatusCanceled || r.Outcomes["second@a"].Status != StatusBlocked || set.Load() {
		t.Errorf("cancel: first=%s second=%s", r.Outcomes["first@a"].Status, r.Outcomes["second@a"].Status)
	}
}

// A destructive change is applied only when Confirm accepts it; plan
// reports it without asking.
func TestConfirmDestructive(t *testing.T) {
	wipe := func(id string) (*Step, *atomic.Bool) {
		s, set := toggle(id, "a", "storage")
		check := s.Check
		s.Check = func(ctx context.Context, h Host) (Change, error) {
			ch, err := check(ctx, h)
			if ch.Needed {
				ch.Destructive = "wipe /dev/" + id
			}
			return ch, err
		}
		return s, set
	}
	yes, yesSet := wipe("yes@a")
	no, noSet := wipe("no@a")
	var asked []string
	confirm := func(s *Step, ch Change) error {
		asked = append(asked, ch.Destructive)
		if s.ID == "no@a" {
			return errors.New("not confirmed: " + ch.Destructive)
		}
		return nil
	}
	g := mustGraph(t, yes, no)
	r := Run(context.Background(), g, hostsFor("a"), Options{Confirm: confirm, Forks: 1})
	if len(asked) != 0 || r.Outcomes["no@a"].Change.Destructive != "wipe /dev/no@a" {
		t.Fatalf("plan asked %v, reported %+v", asked, r.Outcomes["no@a"].Change)
	}
	r = Run(context.Background(), g, hostsFor("a"), Options{Apply: true, Confirm: confirm, Forks: 1})
	if !yesSet.Load() || r.Outcomes["yes@a"].Status != StatusChanged {
		t.Errorf("confirmed: %s", r.Outcomes["yes@a"].Status)
	}
	if o := r.Outcomes["no@a"]; noSet.Load() || o.Status != StatusFailed || !strings.Contains(o.Err.Error(), "not confirmed: wipe /dev/no@a") {
		t.Errorf("refused: %s %v", o.Status, o.Err)
	}
}

// A step outside the selection recorded done with other inputs (Recheck)
// is checked, never applied: ok lets the selected steps run, a change
// needed fails it and blocks them.
func TestRecheck(t *testing.T) {
	for _, done := range []bool{true, false} {
		pre, preSet := toggle("pre@a", "a", "etcd")
		other, _ := toggle("other@a", "a", "etcd") // stale, but no selected step needs it
		add, addSet := toggle("add@b", "b", "etcd", "pre@a")
		preSet.Store(done)
		g := mustGraph(t, pre, other, add)
		o := Options{Apply: true, Pick: func(s *Step) bool { return s.Host == "b" },
			Done: func(*Step) bool { return false }, Recheck: func(*Step) bool { return true }}
		if m := MissingDeps(g, &o); len(m) != 0 {
			t.Fatalf("done=%v: a rechecked step counted missing: %v", done, m)
		}
		r := Run(context.Background(), g, hostsFor("a", "b"), o)
		p, a := r.Outcomes["pre@a"], r.Outcomes["add@b"]
		if st := r.Outcomes["other@a"].Status; st != StatusSkipped {
			t.Errorf("done=%v: a step no selected step needs was rechecked: %s", done, st)
		}
		if done {
			if p.Status != StatusOK || a.Status != StatusChanged || !addSet.Load() {
				t.Errorf("rechecked, done: pre=%s %v add=%s", p.Status, p.Err, a.Status)
			}
			continue
		}
		if p.Status != StatusFailed || !strings.Contains(fmt.Sprint(p.Err), "not done") ||
			!strings.Contains(fmt.Sprint(p.Err), "+ pre@a") || preSet.Load() {
			t.Errorf("rechecked, not done: pre=%s %v (applied %v)", p.Status, p.Err, preSet.Load())
		}
		if a.Status != StatusBlocked || addSet.Load() {
			t.Errorf("rechecked, not done: add=%s (applied %v)", a.Status, addSet.Load())
		}
	}
}
