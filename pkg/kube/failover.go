package kube

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// failover dials the API through the control-plane hosts in turn: each
// new connection goes to the host that last accepted one, else to the next
// in order. An apiserver that stops (a static pod restarted by its
// liveness probe, a control plane powered off) so costs one failed request
// at most, which retrying then sends elsewhere. Safe for concurrent use.
type failover struct {
	hosts []string
	dial  func(host string) (Dialer, error)

	mu     sync.Mutex
	cur    int  // index in hosts of the host that last accepted
	pinned bool // only hosts[cur] is dialled (until unpin)
}

// newFailover starts at preferred (one of hosts), pinned to it until
// unpin: Connect first asks that host's /readyz.
func newFailover(hosts []string, preferred string, dial func(string) (Dialer, error)) *failover {
	f := &failover{hosts: hosts, dial: dial, pinned: true}
	for i, h := range hosts {
		if h == preferred {
			f.cur = i
		}
	}
	return f
}

// unpin lets connections go to the other hosts.
func (f *failover) unpin() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pinned = false
}

func (f *failover) isPinned() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pinned
}

// host is the host that last accepted a connection.
func (f *failover) host() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hosts[f.cur]
}

// DialContext connects to 127.0.0.1:APIServerPort on the first host that
// accepts, whatever addr says (the kubeconfig's endpoint name).
func (f *failover) DialContext(ctx context.Context, network, _ string) (net.Conn, error) {
	f.mu.Lock()
	start, n := f.cur, len(f.hosts)
	if f.pinned {
		n = 1
	}
	f.mu.Unlock()
	target := net.JoinHostPort("127.0.0.1", strconv.Itoa(APIServerPort))
	var why []string
	for i := range n {
		k := (start + i) % len(f.hosts)
		d, err := f.dial(f.hosts[k])
		if err == nil {
			var conn net.Conn
			if conn, err = d.DialContext(ctx, network, target); err == nil {
				f.mu.Lock()
				f.cur = k
				f.mu.Unlock()
				return conn, nil
			}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		why = append(why, fmt.Sprintf("%s: %v", f.hosts[k], err))
	}
	return nil, fmt.Errorf("no control plane accepts a connection on 127.0.0.1:%d: %s", APIServerPort, strings.Join(why, "; "))
}

// Retries of a request that got no answer (the connection refused, reset
// or closed): after 1, 2, 4, 8 and 8 s, 23 s in all, within the client's
// one-minute timeout.
var retryBackoff = []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second}

// retrying sends a request again when it got no response at all; every
// request metalk8s makes can be repeated (reads, server-side applies,
// deletes with preconditions, token creation with a random name). An HTTP
// error status is an answer and is returned as is.
// While f is pinned (Connect asking one host's /readyz), nothing is
// retried.
type retrying struct {
	rt http.RoundTripper
	f  *failover
}

// WrappedRoundTripper is the transport retrying wraps, so that client-go
// reaches it to cancel a timed-out request (k8s.io/apimachinery's
// utilnet.RoundTripperWrapper) instead of logging "unable to cancel
// request" on the operator's terminal.
func (r retrying) WrappedRoundTripper() http.RoundTripper { return r.rt }

func (r retrying) RoundTrip(req *http.Request) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		resp, err := r.rt.RoundTrip(req)
		if err == nil || attempt >= len(retryBackoff) || r.f.isPinned() || req.Context().Err() != nil ||
			errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return resp, err
		}
		if req.Body != nil && req.Body != http.NoBody {
			if req.GetBody == nil {
				return resp, err // the body cannot be sent twice
			}
			body, berr := req.GetBody()
			if berr != nil {
				return resp, err
			}
			req = req.Clone(req.Context())
			req.Body = body
		}
		t := time.NewTimer(retryBackoff[attempt])
		select {
		case <-req.Context().Done():
			t.Stop()
			return nil, req.Context().Err()
		case <-t.C:
		}
	}
}
