package steps

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// stop marks an error that ends Poll at once.
type stop struct{ err error }

func (s stop) Error() string { return s.err.Error() }
func (s stop) Unwrap() error { return s.err }

// Stop wraps err so that Poll returns it at once, as it is, instead of
// trying again: for a state no wait will change (a unit that failed) or an
// error of the transport.
func Stop(err error) error { return stop{err} }

// Poll calls f every interval until it returns nil, the context ends, or
// limit has passed; then it returns f's last error, saying how long it
// waited. An error made by Stop is returned at once, unwrapped. For an
// Apply that waits on the cluster (a node registering, the API answering).
func Poll(ctx context.Context, limit, interval time.Duration, f func(context.Context) error) error {
	deadline := time.Now().Add(limit)
	for {
		err := f(ctx)
		if err == nil {
			return nil
		}
		var s stop
		if errors.As(err, &s) {
			return s.err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s: %w", limit, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}
