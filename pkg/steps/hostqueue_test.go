package steps

import (
	"context"
	"reflect"
	"testing"
	"time"
)

// Waiting steps get the host longest chain first, then in graph order.
func TestHostQueueOrder(t *testing.T) {
	var q hostQueue
	if err := q.acquire(context.Background(), 1, 0); err != nil {
		t.Fatal(err)
	}
	got := make(chan int, 4)
	for _, w := range []struct{ depth, order int }{{1, 1}, {5, 4}, {3, 2}, {5, 3}} {
		go func() {
			if err := q.acquire(context.Background(), w.depth, w.order); err != nil {
				t.Error(err)
			}
			got <- w.order
			q.release()
		}()
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		q.mu.Lock()
		n := len(q.waiting)
		q.mu.Unlock()
		if n == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d waiters, want 4", n)
		}
	}
	q.release()
	var order []int
	for range 4 {
		order = append(order, <-got)
	}
	if want := []int{3, 4, 2, 1}; !reflect.DeepEqual(order, want) {
		t.Errorf("ran in order %v, want %v", order, want)
	}
	// Free again: the next acquire does not wait.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := q.acquire(ctx, 1, 9); err != nil {
		t.Errorf("the host was not freed: %v", err)
	}
}

// A waiter whose context ends leaves the queue; the host stays usable.
func TestHostQueueCancel(t *testing.T) {
	var q hostQueue
	q.acquire(context.Background(), 1, 0)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() { errc <- q.acquire(ctx, 2, 1) }()
	for q.waitingCount() == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("a cancelled acquire succeeded")
	}
	q.release()
	if q.busy || q.waitingCount() != 0 {
		t.Errorf("busy=%v, %d waiting after the release", q.busy, q.waitingCount())
	}
}

func (q *hostQueue) waitingCount() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.waiting)
}

// depths counts the longest chain of dependants, the step included.
func TestDepths(t *testing.T) {
	a, _ := toggle("a", "h", "prepare")
	b, _ := toggle("b", "h", "prepare", "a")
	c, _ := toggle("c", "h", "prepare", "b")
	d, _ := toggle("d", "h", "prepare", "a")
	e, _ := toggle("e", "h", "prepare")
	got := mustGraph(t, a, b, c, d, e).depths()
	if want := map[string]int{"a": 3, "b": 2, "c": 1, "d": 1, "e": 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("depths %v, want %v", got, want)
	}
}
