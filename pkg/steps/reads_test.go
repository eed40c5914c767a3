package steps

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
)

// TestReadOncePerRunUntilApply: checks on a host share one read of a key;
// an Apply there makes the next read fresh (and the check after it sees
// the change); other hosts and errors are never shared.
func TestReadOncePerRunUntilApply(t *testing.T) {
	var reads atomic.Int32
	var state atomic.Int32 // what the "host" holds: 0, then 1 once applied
	var failOnce atomic.Bool
	failOnce.Store(true)
	read := func(ctx context.Context, host string) (int32, error) {
		return Read(ctx, host, "state", func() (int32, error) {
			reads.Add(1)
			if host == "h2" && failOnce.Swap(false) {
				return 0, errors.New("read failed")
			}
			return state.Load(), nil
		})
	}
	// a and b only read; c applies (state 0 -> 1); d reads after it.
	reader := func(id, host string, want int32, deps ...string) *Step {
		return &Step{ID: id, Host: host, Phase: "prepare", Deps: deps,
			Check: func(ctx context.Context, _ Host) (Change, error) {
				v, err := read(ctx, host)
				if err != nil {
					return NoChange, err
				}
				if v != want {
					return NoChange, errors.New("stale read")
				}
				return NoChange, nil
			}}
	}
	a := reader("a@h1", "h1", 0)
	b := reader("b@h1", "h1", 0, "a@h1")
	c := &Step{ID: "c@h1", Host: "h1", Phase: "prepare", Deps: []string{"b@h1"},
		Check: func(ctx context.Context, _ Host) (Change, error) {
			v, err := read(ctx, "h1")
			if err != nil || v == 1 {
				return NoChange, err
			}
			return Changes("~ state 0 -> 1"), nil
		},
		Apply: func(ctx context.Context, _ Host) error { state.Store(1); return nil }}
	d := reader("d@h1", "h1", 1, "c@h1")
	// On h2 the first read fails; it is not kept, so the other step reads.
	e := reader("e@h2", "h2", 1, "c@h1")
	f := reader("f@h2", "h2", 1, "c@h1")
	g := mustGraph(t, a, b, c, d, e, f)

	r := Run(context.Background(), g, hostsFor("h1", "h2"), Options{Apply: true, Sleep: noSleep})
	for _, id := range []string{"a@h1", "b@h1", "c@h1", "d@h1"} {
		if o := r.Outcomes[id]; o.Status != StatusOK && o.Status != StatusChanged {
			t.Errorf("%s: %s %v", id, o.Status, o.Err)
		}
	}
	if e, f := r.Outcomes["e@h2"].Status, r.Outcomes["f@h2"].Status; (e == StatusFailed) == (f == StatusFailed) || e == StatusBlocked || f == StatusBlocked {
		t.Errorf("h2: e %s, f %s; want one failed (the failed read) and one ok", e, f)
	}
	// h1: a's read (b and c's check share it), the read after c's Apply
	// (c's check again, and d); h2: the failed read, then the other's.
	if n := reads.Load(); n != 4 {
		t.Errorf("%d reads, want 4", n)
	}

	// Outside a Run, nothing is kept.
	reads.Store(0)
	for range 2 {
		if _, err := read(context.Background(), "h1"); err != nil {
			t.Fatal(err)
		}
	}
	if n := reads.Load(); n != 2 {
		t.Errorf("outside a run: %d reads, want 2", n)
	}
}
