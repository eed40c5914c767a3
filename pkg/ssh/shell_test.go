package ssh

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metalk8s/metalk8s/test/fleet"

	"github.com/metalk8s/metalk8s/internal/testpeer"
)

// Commands run in long-lived shells on real sshd hosts: reuse, framing,
// isolation between commands, concurrency and become with a password.
func TestShellFleet(t *testing.T) {
	testpeer.OptOut(t, "fleet tests", false)
	f := fleet.Start(t, 1)
	t.Setenv("SSH_AUTH_SOCK", "")
	pool, err := NewPool(Options{KnownHosts: f.KnownHosts})
	if err != nil {
		t.Fatal(err)
	}
	client := func(t *testing.T, name, user string, become bool) *Client {
		return fleetClient(t, f, pool, name, user, become)
	}
	ctx := context.Background()
	run := func(t *testing.T, c *Client, cmd string) *Result {
		t.Helper()
		res, err := c.Run(ctx, cmd)
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		return res
	}

	t.Run("reused", func(t *testing.T) {
		c := client(t, "node-001", fleet.NoPasswdUser, false)
		// $$ in a subshell is its shell's PID: the same shell ran both.
		a, b := run(t, c, "echo $$"), run(t, c, "echo $$")
		if string(a.Stdout) != string(b.Stdout) {
			t.Errorf("two commands, two shells: %q %q", a.Stdout, b.Stdout)
		}
		// A command with stdin gets a session of its own.
		res, err := c.Run(ctx, "cat; echo $$", WithStdin([]byte("in:")))
		if err != nil || !strings.HasPrefix(string(res.Stdout), "in:") || string(res.Stdout) == "in:"+string(a.Stdout) {
			t.Errorf("stdin command: %q %v", res.Stdout, err)
		}
	})

	t.Run("framing", func(t *testing.T) {
		c := client(t, "node-001", fleet.NoPasswdUser, false)
		for _, tc := range []struct {
			cmd, out, errs string
			code           int
		}{
			{"printf abc", "abc", "", 0},
			{"printf 'a\\nb'; printf e >&2; exit 3", "a\nb", "e", 3},
			{"echo '@metalk8s-00{' ; echo '}0'", "@metalk8s-00{\n}0\n", "", 0},
			{"if then", "", "", 2}, // a syntax error ends only its subshell
			{"cat", "", "", 0},     // stdin is /dev/null, not the shell's commands
			{"cd /; x=1; set -e; trap 'echo trapped' EXIT; false", "trapped\n", "", 1},
			{"pwd; echo ${x-unset}; trap", "/home/mk8s\nunset\n", "", 0},
			{"exec echo replaced", "replaced\n", "", 0},
		} {
			res, err := c.Run(ctx, tc.cmd)
			code, _ := ExitCode(err)
			if tc.code == 0 && err != nil || res.ExitCode != tc.code || code != tc.code ||
				string(res.Stdout) != tc.out || tc.errs != "" && string(res.Stderr) != tc.errs {
				t.Errorf("%q: stdout %q stderr %q exit %d err %v; want %q %q %d", tc.cmd, res.Stdout, res.Stderr, res.ExitCode, err, tc.out, tc.errs, tc.code)
			}
		}
		big := run(t, c, "head -c 3000000 /dev/zero | tr '\\0' x; echo; head -c 200000 /dev/zero | tr '\\0' y >&2")
		if len(big.Stdout) != 3000001 || bytes.Count(big.Stdout, []byte("x")) != 3000000 || len(big.Stderr) != 200000 {
			t.Errorf("big output: %d bytes out, %d err", len(big.Stdout), len(big.Stderr))
		}
	})

	t.Run("stray output", func(t *testing.T) {
		c := client(t, "node-001", fleet.NoPasswdUser, false)
		run(t, c, "(sleep 0.3; echo late; echo late >&2) & echo now")
		time.Sleep(time.Second)
		if res := run(t, c, "echo next"); string(res.Stdout) != "next\n" || len(res.Stderr) != 0 {
			t.Errorf("a background child's late output reached the next command: %q %q", res.Stdout, res.Stderr)
		}
	})

	t.Run("concurrent", func(t *testing.T) {
		c := client(t, "node-001", fleet.NoPasswdUser, false)
		var wg sync.WaitGroup
		errs := make(chan error, 12)
		for i := range 12 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := c.Run(ctx, fmt.Sprintf("sleep 0.2; echo %d", i))
				if err == nil && string(res.Stdout) != fmt.Sprintf("%d\n", i) {
					err = fmt.Errorf("command %d got %q", i, res.Stdout)
				}
				if err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		c.mu.Lock()
		open, idle := c.shells[0], len(c.idle[0])
		c.mu.Unlock()
		if open > maxShells || idle != open || open == 0 {
			t.Errorf("shells: %d open, %d idle (at most %d)", open, idle, maxShells)
		}
	})

	t.Run("timeout as root", func(t *testing.T) {
		c := client(t, "node-001", fleet.NoPasswdUser, true)
		_, err := c.Run(ctx, "sleep 4343; true", WithTimeout(time.Second))
		if err == nil || !strings.Contains(err.Error(), "timed out") {
			t.Fatalf("timeout: %v", err)
		}
		if out, err := stillRunning("sleep 4343"); err == nil {
			t.Errorf("the timed-out root command still runs: pid %s", out)
		}
		if res := run(t, c, "id -u"); string(res.Stdout) != "0\n" {
			t.Errorf("after a timeout: %q", res.Stdout)
		}
	})

	t.Run("become with a password", func(t *testing.T) {
		// sudo asks for the password on every call on this host.
		c := client(t, "sudopw", fleet.SudoUser, true)
		a, b := run(t, c, "id -u; echo $$"), run(t, c, "id -u; echo $$")
		if !strings.HasPrefix(string(a.Stdout), "0\n") || string(a.Stdout) != string(b.Stdout) {
			t.Errorf("become shell: %q then %q", a.Stdout, b.Stdout)
		}
		if res := run(t, c, "id -un"); strings.TrimSpace(string(res.Stdout)) != "root" {
			t.Errorf("become: %q", res.Stdout)
		}
		if res, err := c.Run(ctx, "id -un", AsLoginUser()); err != nil || strings.TrimSpace(string(res.Stdout)) != fleet.SudoUser {
			t.Errorf("login user: %q %v", res.Stdout, err)
		}
		// Both users' shells count against the host's sessions.
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var opts []RunOption
				if i%2 == 0 {
					opts = append(opts, AsLoginUser())
				}
				if _, err := c.Run(ctx, "sleep 0.2", opts...); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		c.mu.Lock()
		open := c.shells[0] + c.shells[1]
		c.mu.Unlock()
		if open > maxShells {
			t.Errorf("%d shells open, at most %d", open, maxShells)
		}
		bad := client(t, "sudopw", fleet.SudoUser, true)
		bad.cfg.BecomePassword = "wrong"
		_, err := bad.Run(ctx, "id -u")
		if err == nil || !strings.Contains(err.Error(), "sudo rejected the become password") || !strings.Contains(err.Error(), `"id -u"`) {
			t.Errorf("wrong password: %v", err)
		}
	})
}
