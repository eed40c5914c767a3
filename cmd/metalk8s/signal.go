package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// interruptible is signal.NotifyContext for SIGINT and SIGTERM with a way
// out: the first signal cancels ctx (the run stops starting work, and what
// is under way winds down: a Helm install rolls back, verify deletes its
// namespace) and says so on w; from then on the signals are no longer
// caught, so a second one ends the process at once, as for any program
// (exit 130 from a shell on Ctrl-C); hint, if any, is said with it (what
// that leaves behind). stop releases the signals; call it when the
// command returns.
func interruptible(parent context.Context, w io.Writer, hint string) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-ch:
			signal.Stop(ch)
			fmt.Fprintf(w, "\n%s: stopping once the work under way has finished or been undone; another ends metalk8s at once%s.\n", signalName(s), hint)
			cancel()
		case <-done:
		}
	}()
	return ctx, func() {
		close(done)
		signal.Stop(ch)
		cancel()
	}
}

// signalName is how an operator calls s.
func signalName(s os.Signal) string {
	if s == os.Interrupt {
		return "interrupt (Ctrl-C)"
	}
	return s.String()
}
