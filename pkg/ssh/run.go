package ssh

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// ErrConnectionLost: the connection dropped while a command ran; the
// command may or may not have finished.
var ErrConnectionLost = errors.New("connection lost")

var errCommandTimeout = errors.New("command timed out")

// Result is what a command did on a host.
type Result struct {
	Host     string
	Cmd      string
	ExitCode int
	Stdout   []byte
	Stderr   []byte
}

// CommandError is a command that failed on a host: a non-zero exit, or
// Err when it could not run to the end.
type CommandError struct {
	Result
	Err error
}

func (e *CommandError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "host %s: command %q", e.Host, e.Cmd)
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	} else {
		fmt.Fprintf(&b, " exited %d", e.ExitCode)
	}
	if s := tail(e.Stderr, 600); s != "" {
		fmt.Fprintf(&b, "; stderr: %s", s)
	} else if s := tail(e.Stdout, 300); s != "" && e.Err == nil {
		fmt.Fprintf(&b, "; stdout: %s", s)
	}
	return b.String()
}

func (e *CommandError) Unwrap() error { return e.Err }

func tail(b []byte, n int) string {
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}

// RunOption changes how one command runs.
type RunOption func(*runOpts)

type runOpts struct {
	stdin   []byte
	timeout time.Duration
	noSudo  bool
}

// WithStdin feeds data to the command's standard input.
func WithStdin(data []byte) RunOption { return func(o *runOpts) { o.stdin = data } }

// WithTimeout bounds the command's run time.
func WithTimeout(d time.Duration) RunOption { return func(o *runOpts) { o.timeout = d } }

// AsLoginUser runs the command as the SSH user even on a become host.
func AsLoginUser() RunOption { return func(o *runOpts) { o.noSudo = true } }

// Run runs a shell command on the host (through sudo on become hosts), in
// one of the host's shells (shell.go), or in a session of its own when it
// has stdin or every shell is busy. A non-zero exit is a *CommandError
// that still carries the output.
func (c *Client) Run(ctx context.Context, cmd string, options ...RunOption) (*Result, error) {
	o := runOpts{timeout: c.pool.opts.CommandTimeout}
	for _, opt := range options {
		opt(&o)
	}
	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, o.timeout, errCommandTimeout)
		defer cancel()
	}
	res := &Result{Host: c.Name, Cmd: cmd, ExitCode: -1}
	if c.cfg.Local() {
		return c.runLocal(ctx, cmd, o, res)
	}
	become := c.cfg.Become && !o.noSudo
	for try := 0; o.stdin == nil && try < 2; try++ {
		sh, err := c.shellFor(ctx, become, cmd)
		if err != nil {
			return res, err
		}
		if sh == nil {
			break // all of this host's shells are busy
		}
		reuse, err := c.runInShell(ctx, sh, cmd, res)
		c.release(sh, become, reuse)
		if !errors.Is(err, errNotSent) {
			return res, err
		}
	}
	sess, err := c.session(ctx)
	if err != nil {
		return res, err
	}
	defer sess.Close()

	var stdout, stderr bytes.Buffer
	sess.Stdout = &stdout
	stdin, err := sess.StdinPipe()
	if err != nil {
		return res, &CommandError{Result: *res, Err: err}
	}
	filter := newStderrFilter(&stderr, stdin, o.stdin, become, c.cfg.BecomePassword)
	sess.Stderr = filter
	if err := sess.Start(filter.wrap(cmd, c.cfg.BecomeUser)); err != nil {
		return res, &CommandError{Result: *res, Err: fmt.Errorf("%w: %v", ErrConnectionLost, err)}
	}
	var waitErr error
	ended := make(chan struct{})
	go func() { waitErr = sess.Wait(); close(ended) }()
	select {
	case <-ended:
		err = waitErr
	case <-ctx.Done():
		c.killGroup(ctx, filter, ended)
		sess.Close()
		err = context.Cause(ctx)
	}
	filter.flush()
	res.Stdout, res.Stderr = stdout.Bytes(), stderr.Bytes()
	if ferr := filter.failure(); ferr != nil {
		return res, &CommandError{Result: *res, Err: ferr}
	}
	var exit *gossh.ExitError
	var missing *gossh.ExitMissingError
	switch {
	case err == nil:
		res.ExitCode = 0
		return res, nil
	case errors.As(err, &exit):
		res.ExitCode = exit.ExitStatus()
		return res, &CommandError{Result: *res}
	case errors.As(err, &missing), errors.Is(err, io.EOF):
		return res, &CommandError{Result: *res, Err: ErrConnectionLost}
	}
	return res, &CommandError{Result: *res, Err: err}
}

// pidWait is how long a timed-out command that has not said its pid yet
// is given to say it, so that it can be killed.
const pidWait = 10 * time.Second

// killGroup kills the process group of a command whose context is done,
// and waits up to 2 s for sshd to report the session over (ended). sshd
// ignores signal requests on root sessions, so the kill is a command of
// its own. A command whose pid is not known yet is waited for (pidWait).
func (c *Client) killGroup(ctx context.Context, f *stderrFilter, ended <-chan struct{}) {
	if f.pgid() == 0 {
		// Started, but it has not said its pid yet: on a busy host sshd's
		// fork and PAM can take longer than a short timeout. Wait for the
		// pid a while, so the command is not left running.
		select {
		case <-f.running:
		case <-ended:
		case <-time.After(pidWait):
		}
	}
	if pgid := f.pgid(); pgid > 0 {
		kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		c.Run(kctx, fmt.Sprintf("kill -9 -%d 2>/dev/null || true", pgid))
		cancel()
	}
	select {
	case <-ended:
	case <-time.After(2 * time.Second):
	}
}

// session opens a session, reconnecting once if the connection is stale.
func (c *Client) session(ctx context.Context) (*gossh.Session, error) {
	for attempt := 0; ; attempt++ {
		conn, err := c.connection(ctx)
		if err != nil {
			return nil, err
		}
		sess, err := conn.NewSession()
		if err == nil {
			return sess, nil
		}
		c.mu.Lock()
		if c.conn == conn {
			c.closeLocked()
		}
		c.mu.Unlock()
		if attempt > 0 {
			return nil, &ConnectError{Host: c.Name, Addr: c.Addr(), Err: fmt.Errorf("%w: open session: %v", ErrConnectionLost, err)}
		}
	}
}

// ExitCode returns the exit status carried by err, if it is one.
func ExitCode(err error) (int, bool) {
	var ce *CommandError
	if errors.As(err, &ce) && ce.Err == nil {
		return ce.ExitCode, true
	}
	return 0, false
}

// stderrFilter reads the markers our wrapper prints on stderr: the
// process group of the command (to kill it on timeout), and under sudo the
// password prompt (answered once) and the start of the command. Stdin is
// fed only once the command runs, so the password can never reach the
// command and the command's input never reaches sudo.
type stderrFilter struct {
	out      io.Writer
	stdin    io.WriteCloser
	input    []byte
	become   bool
	password string
	pidMark  string
	prompt   string
	ready    string

	keepStdin bool          // a shell: stdin carries its commands
	running   chan struct{} // closed once the command runs

	mu       sync.Mutex
	buf      []byte
	pid      int
	started  bool
	answered bool
	err      error
}

func newStderrFilter(out io.Writer, stdin io.WriteCloser, input []byte, become bool, password string) *stderrFilter {
	tag := make([]byte, 8)
	rand.Read(tag)
	id := hex.EncodeToString(tag)
	return &stderrFilter{out: out, stdin: stdin, input: input, become: become, password: password, running: make(chan struct{}),
		pidMark: "[metalk8s-pid-" + id + "] ", prompt: "[metalk8s-sudo-" + id + "]", ready: "[metalk8s-ready-" + id + "]"}
}

// wrap builds the remote command line. The login shell is the session
// leader, so its PID is the process group of everything the command starts.
func (f *stderrFilter) wrap(cmd, user string) string {
	head := "printf '%s%s\\n' " + Quote(f.pidMark) + ` "$$" >&2; `
	if !f.become {
		return head + "exec /bin/sh -c " + Quote(cmd)
	}
	inner := "printf '%s\\n' " + Quote(f.ready) + ` >&2; exec /bin/sh -c "$1"`
	return head + "exec sudo -H -S -p " + Quote(f.prompt) + " -u " + Quote(user) + " -- /bin/sh -c " + Quote(inner) + " metalk8s " + Quote(cmd)
}

func (f *stderrFilter) pgid() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pid
}

func (f *stderrFilter) failure() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// flush passes on what was held back when the command never started.
func (f *stderrFilter) flush() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.buf) > 0 {
		f.out.Write(f.buf)
		f.buf = nil
	}
}

func (f *stderrFilter) start() {
	f.started = true
	close(f.running)
	if f.keepStdin {
		return
	}
	go func() {
		if len(f.input) > 0 {
			f.stdin.Write(f.input)
		}
		f.stdin.Close()
	}()
}

func (f *stderrFilter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.started {
		return f.out.Write(p)
	}
	f.buf = append(f.buf, p...)
	if f.pid == 0 {
		i := bytes.Index(f.buf, []byte(f.pidMark))
		if i < 0 {
			return len(p), nil
		}
		end := bytes.IndexByte(f.buf[i:], '\n')
		if end < 0 {
			return len(p), nil
		}
		fmt.Sscan(string(f.buf[i+len(f.pidMark):i+end]), &f.pid)
		if f.pid == 0 {
			f.pid = -1
		}
		f.buf = append(f.buf[:i:i], f.buf[i+end+1:]...)
		if !f.become {
			f.out.Write(f.buf)
			f.buf = nil
			f.start()
			return len(p), nil
		}
	}
	for {
		if i := bytes.Index(f.buf, []byte(f.prompt)); i >= 0 {
			f.buf = append(f.buf[:i:i], f.buf[i+len(f.prompt):]...)
			if f.password == "" || f.answered {
				if f.password == "" {
					f.err = errors.New("sudo asks for a password: set ansible_become_password or use --ask-become-pass")
				} else {
					f.err = errors.New("sudo rejected the become password")
				}
				f.stdin.Close()
				continue
			}
			f.answered = true
			io.WriteString(f.stdin, f.password+"\n")
			continue
		}
		if i := bytes.Index(f.buf, []byte(f.ready+"\n")); i >= 0 {
			rest := f.buf[i+len(f.ready)+1:]
			// Keep what sudo said (a lecture, a warning) but not blank noise.
			f.out.Write(bytes.TrimSpace(f.buf[:i]))
			f.out.Write(rest)
			f.buf = nil
			f.start()
		}
		return len(p), nil
	}
}

// Quote quotes s for a POSIX shell.
func Quote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./-_") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}

// QuoteAll quotes each of list for a POSIX shell, space-separated.
func QuoteAll(list ...string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = Quote(s)
	}
	return strings.Join(q, " ")
}
