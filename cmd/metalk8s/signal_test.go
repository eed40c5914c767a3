package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestInterruptible runs itself as a child: the first SIGINT cancels the
// context and says so, the second ends the process by the signal.
func TestInterruptible(t *testing.T) {
	if os.Getenv("METALK8S_SIGNAL_CHILD") == "1" {
		ctx, stop := interruptible(context.Background(), os.Stderr, " (the hint)")
		defer stop()
		fmt.Println("ready")
		<-ctx.Done()
		fmt.Println("cancelled")
		time.Sleep(time.Minute) // until the second signal
		os.Exit(3)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestInterruptible$")
	cmd.Env = append(os.Environ(), "METALK8S_SIGNAL_CHILD=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(out)
	expect := func(want string) {
		t.Helper()
		if !lines.Scan() || lines.Text() != want {
			t.Fatalf("child said %q, want %q (stderr %q)", lines.Text(), want, stderr.String())
		}
	}
	expect("ready")
	cmd.Process.Signal(syscall.SIGINT)
	expect("cancelled")
	cmd.Process.Signal(syscall.SIGINT)
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || !ee.Sys().(syscall.WaitStatus).Signaled() || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGINT {
		t.Errorf("after the second SIGINT the child ended with %v, want killed by SIGINT", err)
	}
	if want := "interrupt (Ctrl-C): stopping once the work under way has finished or been undone; another ends metalk8s at once (the hint)."; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr %q lacks %q", stderr.String(), want)
	}
}

// Without a signal, stop cancels the context and catches nothing more.
func TestInterruptibleStop(t *testing.T) {
	ctx, stop := interruptible(context.Background(), os.Stderr, "")
	if ctx.Err() != nil {
		t.Fatal("cancelled before any signal")
	}
	stop()
	if ctx.Err() == nil {
		t.Error("stop left the context running")
	}
}
