package steps

import (
	"context"
	"fmt"
	"time"
)

// Poll calls f every interval until it returns nil, the context ends, or
// limit has passed; then it returns f's last error, saying how long it
// waited. For an Apply that waits on the cluster (a node registering, the
// API answering).
func Poll(ctx context.Context, limit, interval time.Duration, f func(context.Context) error) error {
	deadline := time.Now().Add(limit)
	for {
		err := f(ctx)
		if err == nil {
			return nil
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
