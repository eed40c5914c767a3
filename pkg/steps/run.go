package steps

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// Status is how a step ended.
type Status string

const (
	StatusOK       Status = "ok"        // checked: nothing to do
	StatusChanged  Status = "changed"   // applied
	StatusPending  Status = "pending"   // plan: would change
	StatusFailed   Status = "failed"    // check or apply failed
	StatusBlocked  Status = "blocked"   // a dependency failed
	StatusSkipped  Status = "skipped"   // its phase was not selected
	StatusCanceled Status = "cancelled" // the run was interrupted
)

// Outcome is what happened to one step.
type Outcome struct {
	Step     *Step
	Status   Status
	Change   Change
	Err      error
	Attempts int
	Took     time.Duration
	// AfterDeps: plan only; a dependency would change first, so this
	// check saw the host as it is now, not as it will be.
	AfterDeps bool
}

// Options control one walk of the graph.
type Options struct {
	Apply bool // false: plan (checks only)
	Forks int  // steps running at once; default 50
	Only  map[string]bool
	Skip  map[string]bool
	// Pick, when set, runs only the steps it accepts within the selected
	// phases (add-node: the new hosts' steps and the cluster-side ones);
	// the others are skipped, as a skipped phase's.
	Pick func(s *Step) bool
	// Done reports whether a step recorded in the journal is done with
	// these inputs: needed when a skipped phase holds a dependency.
	Done func(s *Step) bool
	// Recheck, when set, accepts the steps outside the selection that a
	// selected step needs and the journal recorded done with other
	// inputs (Journal.Stale: an etcd member's peer list after
	// remove-node). Such a step runs its check only, never its apply:
	// ok when it finds nothing to do, else failed ("not done: ...; run up
	// first"), blocking the steps that need it.
	Recheck   func(s *Step) bool
	Transient func(error) bool // errors worth a retry
	// Confirm, when set, is asked before a destructive change
	// (Change.Destructive) is applied; its error fails the step.
	Confirm func(s *Step, ch Change) error
	Events  Events
	Sleep   func(context.Context, time.Duration) error // for tests
}

// Events hear about the walk as it goes.
type Events interface {
	Started(s *Step)
	Finished(o *Outcome)
}

type noEvents struct{}

func (noEvents) Started(*Step)     {}
func (noEvents) Finished(*Outcome) {}

// Report is the result of a walk.
type Report struct {
	Graph    *Graph
	Outcomes map[string]*Outcome
}

// Selected reports whether a phase runs under --only/--skip.
func (o *Options) Selected(phase string) bool {
	if len(o.Only) > 0 && !o.Only[phase] {
		return false
	}
	return !o.Skip[phase]
}

// Runs reports whether step s runs: its phase is selected and Pick, if
// set, accepts it.
func (o *Options) Runs(s *Step) bool {
	return o.Selected(s.Phase) && (o.Pick == nil || o.Pick(s))
}

// MissingDeps lists the steps the selected steps (Runs) need from
// skipped ones that are neither recorded as done nor to be rechecked
// (Recheck), as "ID (phase P, needed by ID)".
func MissingDeps(g *Graph, o *Options) []string {
	var missing []string
	seen := map[string]bool{}
	o.skippedDeps(g, func(s, dep *Step) {
		if !seen[dep.ID] && (o.Recheck == nil || !o.Recheck(dep)) {
			seen[dep.ID] = true
			missing = append(missing, fmt.Sprintf("%s (phase %s, needed by %s)", dep.ID, dep.Phase, s.ID))
		}
	})
	sort.Strings(missing)
	return missing
}

// rechecked: the steps outside the selection that a selected step needs,
// not recorded as done, and that Recheck accepts, by ID.
func rechecked(g *Graph, o *Options) map[string]bool {
	ids := map[string]bool{}
	if o.Recheck != nil {
		o.skippedDeps(g, func(_, dep *Step) {
			if o.Recheck(dep) {
				ids[dep.ID] = true
			}
		})
	}
	return ids
}

// skippedDeps calls f for each selected step s (Runs) and each of its
// dependencies outside the selection that Done does not vouch for.
func (o *Options) skippedDeps(g *Graph, f func(s, dep *Step)) {
	for _, s := range g.Steps {
		if !o.Runs(s) {
			continue
		}
		for _, d := range s.Deps {
			if dep := g.byID[d]; !o.Runs(dep) && (o.Done == nil || !o.Done(dep)) {
				f(s, dep)
			}
		}
	}
}

// Run walks the graph: a step starts as soon as its own dependencies are
// done, one step at a time per host (the one with the longest chain of
// dependants first, hostQueue), at most Forks at once.
func Run(ctx context.Context, g *Graph, hosts map[string]Host, o Options) *Report {
	if o.Forks <= 0 {
		o.Forks = 50
	}
	if o.Events == nil {
		o.Events = noEvents{}
	}
	if o.Sleep == nil {
		o.Sleep = sleepCtx
	}
	r := &Report{Graph: g, Outcomes: make(map[string]*Outcome, len(g.Steps))}
	ctx = WithHosts(ctx, hosts)
	ctx = context.WithValue(ctx, readsKey{}, newReads())
	done := make(map[string]chan struct{}, len(g.Steps))
	for _, s := range g.Steps {
		done[s.ID] = make(chan struct{})
		r.Outcomes[s.ID] = &Outcome{Step: s}
	}
	queues := map[string]*hostQueue{}
	for _, h := range g.Hosts() {
		queues[h] = &hostQueue{}
	}
	depth := g.depths()
	recheck := rechecked(g, &o)
	forks := make(chan struct{}, o.Forks)
	var wg sync.WaitGroup
	for order, s := range g.Steps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done[s.ID])
			out := r.Outcomes[s.ID]
			for _, d := range s.Deps {
				<-done[d]
			}
			if !o.Runs(s) && !recheck[s.ID] {
				out.Status = StatusSkipped
				return
			}
			for _, d := range s.Deps {
				dep := r.Outcomes[d]
				switch dep.Status {
				case StatusFailed, StatusBlocked, StatusCanceled:
					out.Status, out.Err = StatusBlocked, fmt.Errorf("%s did not finish", d)
					o.Events.Finished(out)
					return
				case StatusPending:
					out.AfterDeps = true
				}
				if dep.AfterDeps {
					out.AfterDeps = true
				}
			}
			q := queues[s.Host]
			if err := q.acquire(ctx, depth[s.ID], order); err != nil {
				out.Status, out.Err = StatusCanceled, err
				o.Events.Finished(out)
				return
			}
			defer q.release()
			select {
			case forks <- struct{}{}:
			case <-ctx.Done():
				out.Status, out.Err = StatusCanceled, ctx.Err()
				o.Events.Finished(out)
				return
			}
			defer func() { <-forks }()
			o.Events.Started(s)
			start := time.Now()
			so := &o
			if recheck[s.ID] {
				ro := o
				ro.Apply = false
				so = &ro
			}
			runStep(ctx, s, hosts[s.Host], so, out)
			if recheck[s.ID] && out.Status == StatusPending {
				out.Status = StatusFailed
				out.Err = fmt.Errorf("not done (recorded done with other inputs, checked again): %s; run up first",
					strings.Join(out.Change.Diff, "; "))
			}
			out.Took = time.Since(start)
			o.Events.Finished(out)
		}()
	}
	wg.Wait()
	return r
}

func runStep(ctx context.Context, s *Step, h Host, o *Options, out *Outcome) {
	if h == nil {
		out.Status, out.Err = StatusFailed, fmt.Errorf("no connection to host %s", s.Host)
		return
	}
	var err error
	var failed []string // the attempts that failed, retried
	for attempt := 1; ; attempt++ {
		out.Attempts = attempt
		err = tryStep(ctx, s, h, o, out)
		if err == nil || ctx.Err() != nil || attempt >= s.Retry.attempts() || !s.Retry.retries(err, o) {
			break
		}
		failed = append(failed, fmt.Sprintf("attempt %d: %v", attempt, err))
		if serr := o.Sleep(ctx, s.Retry.delay(attempt)); serr != nil {
			break
		}
	}
	switch {
	case err == nil && len(failed) > 0:
		// Said, not hidden: a retry that worked is still news.
		out.Change.Warnings = append(out.Change.Warnings,
			fmt.Sprintf("done at attempt %d, after a transient failure: %s", out.Attempts, strings.Join(failed, "; ")))
	case err == nil:
	case ctx.Err() != nil:
		out.Status, out.Err = StatusCanceled, err
	case out.Attempts > 1:
		out.Status, out.Err = StatusFailed, fmt.Errorf("%w (tried %d times)", err, out.Attempts)
	default:
		out.Status, out.Err = StatusFailed, err
	}
}

// tryStep is one attempt: check, and under up, apply then check again.
func tryStep(ctx context.Context, s *Step, h Host, o *Options, out *Outcome) error {
	ch, err := s.Check(ctx, h)
	if err != nil {
		if out.AfterDeps && !o.Apply {
			// The host is not ready for this check yet; say so, not fail.
			out.Status, out.Change = StatusPending, Changes("(checked after the steps it depends on are applied)")
			return nil
		}
		return fmt.Errorf("check: %w", err)
	}
	out.Change = ch
	if !ch.Needed {
		out.Status = StatusOK
		return nil
	}
	if !o.Apply {
		out.Status = StatusPending
		return nil
	}
	if s.Apply == nil {
		return fmt.Errorf("check-only step reports a change: %s", strings.Join(ch.Diff, "; "))
	}
	if ch.Destructive != "" && o.Confirm != nil {
		if err := o.Confirm(s, ch); err != nil {
			return err
		}
	}
	// Apply plans from what Check just read; what it changed is read
	// afresh by every check after it (a retry's too).
	err = s.Apply(ctx, h)
	r, _ := ctx.Value(readsKey{}).(*reads)
	r.forget(s.Host)
	if err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	again, err := s.Check(ctx, h)
	if err != nil {
		return fmt.Errorf("check after apply: %w", err)
	}
	if again.Needed {
		return fmt.Errorf("apply did not converge, still: %s", strings.Join(again.Diff, "; "))
	}
	out.Change.Warnings = again.Warnings
	out.Status = StatusChanged
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Failed lists the outcomes that failed, in graph order.
func (r *Report) Failed() []*Outcome {
	var out []*Outcome
	for _, s := range r.Graph.Steps {
		if o := r.Outcomes[s.ID]; o.Status == StatusFailed || o.Status == StatusCanceled {
			out = append(out, o)
		}
	}
	return out
}

// Count returns how many steps ended with each status.
func (r *Report) Count(st Status) int {
	n := 0
	for _, o := range r.Outcomes {
		if o.Status == st {
			n++
		}
	}
	return n
}

// Err summarizes a failed walk, or is nil.
func (r *Report) Err() error {
	failed := r.Failed()
	if len(failed) == 0 {
		return nil
	}
	var msgs []string
	for _, o := range failed {
		msgs = append(msgs, fmt.Sprintf("%s: %v", o.Step.ID, o.Err))
	}
	return errors.New(strings.Join(msgs, "\n"))
}

type hostsKey struct{}

// WithHosts is ctx carrying a run's hosts for HostFrom (Run does it; code
// outside a run, a command or a test, too).
func WithHosts(ctx context.Context, hosts map[string]Host) context.Context {
	return context.WithValue(ctx, hostsKey{}, hosts)
}

// HostFrom returns another host of the run, for the few steps that act on
// a group (etcd membership); nil when unknown.
func HostFrom(ctx context.Context, name string) Host {
	hosts, _ := ctx.Value(hostsKey{}).(map[string]Host)
	return hosts[name]
}
