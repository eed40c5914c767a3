package steps

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestPoll(t *testing.T) {
	ctx := context.Background()
	calls := 0
	err := Poll(ctx, time.Second, time.Millisecond, func(context.Context) error {
		if calls++; calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Errorf("success on the 3rd call: %v after %d calls", err, calls)
	}

	err = Poll(ctx, 20*time.Millisecond, time.Millisecond, func(context.Context) error { return errors.New("not yet") })
	if err == nil || !strings.HasPrefix(err.Error(), "after 20ms: not yet") {
		t.Errorf("timeout: %v", err)
	}

	calls = 0
	cause := errors.New("unit failed")
	err = Poll(ctx, time.Second, time.Millisecond, func(context.Context) error { calls++; return Stop(cause) })
	if err != cause || calls != 1 {
		t.Errorf("Stop: %v after %d calls, want the error itself after 1", err, calls)
	}
}
