package steps

import (
	"context"
	"sync"
)

// hostQueue lets one step at a time run on a host. When the host frees
// up, the waiting step with the longest chain of steps after it goes
// first (then the one added to the graph first): with one step at a time
// per host, starting the critical path early is what shortens a run, e.g.
// an etcd member whose cluster the other hosts wait for goes before a
// long image import that only this host's kubeadm needs.
type hostQueue struct {
	mu      sync.Mutex
	busy    bool
	waiting []*waiter
}

type waiter struct {
	depth, order int
	ready        chan struct{}
}

// acquire waits for the host; it fails only when ctx ends first.
func (q *hostQueue) acquire(ctx context.Context, depth, order int) error {
	q.mu.Lock()
	if !q.busy {
		q.busy = true
		q.mu.Unlock()
		return nil
	}
	w := &waiter{depth: depth, order: order, ready: make(chan struct{})}
	q.waiting = append(q.waiting, w)
	q.mu.Unlock()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		q.mu.Lock()
		defer q.mu.Unlock()
		for i, x := range q.waiting {
			if x == w {
				q.waiting = append(q.waiting[:i], q.waiting[i+1:]...)
				return ctx.Err()
			}
		}
		// Handed the host just as ctx ended: pass it on.
		q.releaseLocked()
		return ctx.Err()
	}
}

// release hands the host to the best waiting step, or frees it.
func (q *hostQueue) release() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.releaseLocked()
}

func (q *hostQueue) releaseLocked() {
	if len(q.waiting) == 0 {
		q.busy = false
		return
	}
	best := 0
	for i, w := range q.waiting {
		b := q.waiting[best]
		if w.depth > b.depth || (w.depth == b.depth && w.order < b.order) {
			best = i
		}
	}
	w := q.waiting[best]
	q.waiting = append(q.waiting[:best], q.waiting[best+1:]...)
	close(w.ready)
}

// depths returns, for each step, the number of steps on the longest chain
// that starts with it and follows dependants (1 for a step nothing
// depends on).
func (g *Graph) depths() map[string]int {
	d := make(map[string]int, len(g.Steps))
	var visit func(s *Step) int
	visit = func(s *Step) int {
		if n, ok := d[s.ID]; ok {
			return n
		}
		n := 1
		for _, u := range g.users[s.ID] {
			n = max(n, 1+visit(u))
		}
		d[s.ID] = n
		return n
	}
	for _, s := range g.Steps {
		visit(s)
	}
	return d
}
