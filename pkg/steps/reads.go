package steps

import (
	"context"
	"sync"
)

// reads holds what checks read from each host during one Run, so that
// several steps needing the same state (a host's LVM report, say) ask the
// host once per run instead of once per step.
type reads struct {
	mu   sync.Mutex
	gen  map[string]int            // host -> generation, bumped by forget
	vals map[string]map[string]any // host -> key -> value
}

type readsKey struct{}

func newReads() *reads {
	return &reads{gen: map[string]int{}, vals: map[string]map[string]any{}}
}

// forget drops what was read from host: its state may have changed.
func (r *reads) forget(host string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gen[host]++
	delete(r.vals, host)
}

// Read returns what read returned for key on host earlier in this run, or
// calls read and keeps its result for the steps after; an error is not
// kept (the next caller, a retry say, reads again). Every Apply on that
// host forgets all its keys once it has run (failed or not), so a check
// never sees a state older than the last change the run made there; the
// Apply itself plans from what its own Check read. Steps that
// change another host through HostFrom must not share keys with that
// host's reads. Outside a Run, read is called every time.
func Read[T any](ctx context.Context, host, key string, read func() (T, error)) (T, error) {
	r, _ := ctx.Value(readsKey{}).(*reads)
	if r == nil {
		return read()
	}
	r.mu.Lock()
	if c, ok := r.vals[host][key].(T); ok {
		r.mu.Unlock()
		return c, nil
	}
	gen := r.gen[host]
	r.mu.Unlock()

	v, err := read()
	if err != nil {
		return v, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gen[host] == gen { // no Apply on host since the read began
		if r.vals[host] == nil {
			r.vals[host] = map[string]any{}
		}
		r.vals[host][key] = v
	}
	return v, nil
}
