package ssh

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metalk8s/metalk8s/pkg/inventory"
	"github.com/metalk8s/metalk8s/test/fleet"

	"github.com/metalk8s/metalk8s/internal/testpeer"
)

// Transport behaviours against the real sshd fleet: uploads, reconnects,
// timeouts. The fleet shares this machine's filesystem, so uploads go to
// a directory of the test's own.

func TestTransportFleet(t *testing.T) {
	testpeer.OptOut(t, "fleet tests", false)
	f := fleet.Start(t, 1)
	t.Setenv("SSH_AUTH_SOCK", "")
	pool, err := NewPool(Options{KnownHosts: f.KnownHosts, KeepAlive: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	client := func(t *testing.T, name, user string, become bool) *Client {
		return fleetClient(t, f, pool, name, user, become)
	}
	ctx := context.Background()

	t.Run("upload", func(t *testing.T) {
		for _, tc := range []struct {
			host, user string
			become     bool
		}{{"node-001", "root", false}, {"sudopw", fleet.SudoUser, true}} {
			c := client(t, tc.host, tc.user, tc.become)
			dir := t.TempDir()
			os.Chmod(dir, 0o755)
			dst := filepath.Join(dir, "sub", "file.conf")
			file := File{Path: dst, Data: []byte("hello\n"), Mode: 0o640, Owner: "root:root"}
			if tc.become {
				os.MkdirAll(filepath.Dir(dst), 0o700) // only root may write there
			}
			changed, err := c.Upload(ctx, file)
			if err != nil || !changed {
				t.Fatalf("%s: first upload: changed=%v err=%v", tc.host, changed, err)
			}
			st, err := os.Stat(dst)
			if err != nil || st.Mode().Perm() != 0o640 {
				t.Fatalf("%s: %v %v", tc.host, st.Mode(), err)
			}
			if data, _ := os.ReadFile(dst); string(data) != "hello\n" {
				t.Fatalf("%s: content %q", tc.host, data)
			}
			changed, err = c.Upload(ctx, file)
			if err != nil || changed {
				t.Errorf("%s: same content uploaded again: changed=%v err=%v", tc.host, changed, err)
			}
			file.Data = []byte("hello again\n")
			if changed, err = c.Upload(ctx, file); err != nil || !changed {
				t.Errorf("%s: new content: changed=%v err=%v", tc.host, changed, err)
			}
			left, _ := filepath.Glob(filepath.Join(filepath.Dir(dst), ".metalk8s-*"))
			tmpLeft, _ := filepath.Glob("/tmp/.metalk8s-*")
			if len(left) > 0 || len(tmpLeft) > 0 {
				t.Errorf("%s: temporary files left: %v %v", tc.host, left, tmpLeft)
			}
		}
	})

	t.Run("reconnect", func(t *testing.T) {
		c := client(t, "node-001", "root", false)
		if _, err := c.Run(ctx, "true"); err != nil {
			t.Fatal(err)
		}
		// Kill this connection's sshd session process: the link drops.
		_, err := c.Run(ctx, "kill -9 $PPID")
		if err == nil {
			t.Fatal("the connection survived its sshd")
		}
		if !errors.Is(err, ErrConnectionLost) || !Transient(err) {
			t.Errorf("drop: %v (transient=%v)", err, Transient(err))
		}
		res, err := c.Run(ctx, "hostname")
		if err != nil || strings.TrimSpace(string(res.Stdout)) != "node-001" {
			t.Fatalf("after the drop: %v %q", err, res.Stdout)
		}
	})

	t.Run("keepalive", func(t *testing.T) {
		// Keepalives every second: a link counts as dead 3 s after a
		// keepalive that is not answered.
		kp, err := NewPool(Options{KnownHosts: f.KnownHosts, KeepAlive: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		c := fleetClient(t, f, kp, "node-001", "root", false)
		// sshd's session process stopped for 2 s is a busy host, not a
		// dead link: the command ends normally. (Counting one miss as dead,
		// as before, dropped it: a keepalive sent in the stall's first
		// second waits over a second.)
		stall := `p=$PPID; (sleep %s; kill -CONT $p) & kill -STOP $p; wait; echo resumed`
		res, err := c.Run(ctx, fmt.Sprintf(stall, "2"))
		if err != nil || strings.TrimSpace(string(res.Stdout)) != "resumed" {
			t.Fatalf("a 2 s stall: %v %q", err, res.Stdout)
		}
		// Stopped for 8 s, well past three unanswered keepalives: the link
		// is dropped, and the next command reconnects.
		_, err = c.Run(ctx, fmt.Sprintf(stall, "8"))
		if !errors.Is(err, ErrConnectionLost) {
			t.Fatalf("an 8 s stall: %v, want the connection lost", err)
		}
		if _, err := c.Run(ctx, "true"); err != nil {
			t.Fatalf("after the drop: %v", err)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		c := client(t, "node-001", "root", false)
		start := time.Now()
		_, err := c.Run(ctx, "sleep 4242; true", WithTimeout(time.Second))
		if err == nil || !strings.Contains(err.Error(), "timed out") || time.Since(start) > 10*time.Second {
			t.Fatalf("timeout: %v after %v", err, time.Since(start))
		}
		// The command is gone from the host, not left running.
		if out, err := stillRunning("sleep 4242"); err == nil {
			t.Errorf("the timed-out command still runs: pid %s", out)
		}
		if Transient(err) {
			t.Errorf("a command timeout is not a transient transport error")
		}
		if _, err := c.Run(ctx, "true"); err != nil {
			t.Errorf("connection unusable after a timeout: %v", err)
		}
		// The same in a session of its own (a command with stdin).
		_, err = c.Run(ctx, "sleep 4244; true", WithTimeout(time.Second), WithStdin([]byte{}))
		if err == nil || !strings.Contains(err.Error(), "timed out") {
			t.Fatalf("timeout in a session: %v", err)
		}
		if out, err := stillRunning("sleep 4244"); err == nil {
			t.Errorf("the timed-out command still runs in its session: pid %s", out)
		}
	})

	t.Run("result", func(t *testing.T) {
		c := client(t, "node-001", "root", false)
		res, err := c.Run(ctx, "echo out; echo err >&2; exit 7")
		code, ok := ExitCode(err)
		if !ok || code != 7 || res.ExitCode != 7 || string(res.Stdout) != "out\n" || string(res.Stderr) != "err\n" {
			t.Fatalf("result %+v err %v", res, err)
		}
		msg := err.Error()
		for _, want := range []string{"host node-001", `"echo out; echo err >&2; exit 7"`, "exited 7", "err"} {
			if !strings.Contains(msg, want) {
				t.Errorf("error %q lacks %q", msg, want)
			}
		}
		res, err = c.Run(ctx, "cat", WithStdin([]byte("fed")))
		if err != nil || string(res.Stdout) != "fed" {
			t.Errorf("stdin: %q %v", res.Stdout, err)
		}
	})
}

// stillRunning looks for a process by its command line for up to 3 s:
// SIGKILL takes effect when the process next runs, a moment later on a
// busy machine. It returns pgrep's output while the process runs.
func stillRunning(pattern string) ([]byte, error) {
	for i := 0; ; i++ {
		out, err := exec.Command("pgrep", "-f", pattern).Output()
		if err != nil || i == 30 {
			return out, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// fleetClient is pool's client for a fleet host as user, closed with the test.
func fleetClient(t *testing.T, f *fleet.Fleet, pool *Pool, name, user string, become bool) *Client {
	h := f.Host(name)
	cfg := inventory.SSHConfig{Host: h.Addr, Port: h.Port, User: user, KeyFile: f.Key, Become: become, BecomeUser: "root"}
	if name == "sudopw" {
		cfg.BecomePassword = f.SudoPassword
	}
	c, err := pool.Client(name, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{"abc": "abc", "a b": "'a b'", "it's": `'it'"'"'s'`, "": "''", "/dev/vdb": "/dev/vdb"} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}
