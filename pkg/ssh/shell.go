package ssh

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"

	gossh "golang.org/x/crypto/ssh"
)

// maxShells bounds the shells kept per host. Commands beyond it get a
// session of their own; sshd allows 10 sessions per connection by default
// (MaxSessions) and SFTP holds one.
const maxShells = 3

// A shell is a long-lived /bin/sh on its own session that runs commands one
// at a time, each in a subshell with stdin from /dev/null. A new session
// per command costs the host a fork of sshd, PAM and a login shell, which
// is most of what a read-only check costs; a command in a shell costs one
// fork. Markers with a random token frame each command's output on both
// streams; what a shell prints outside them (a background child writing
// late) is dropped.
type shell struct {
	conn   *gossh.Client
	sess   *gossh.Session
	stdin  io.WriteCloser
	filter *stderrFilter
	token  string
	out    chan framed // one per command, closed when the stream ends
	errs   chan framed
	ended  chan struct{} // closed when the session is over
}

// framed is one command's output on one stream.
type framed struct {
	data []byte
	code int
}

// shellFor takes an idle shell, starts one, or returns nil when the host
// already has maxShells busy ones. cmd is what the shell is for: an error
// starting it names that command.
func (c *Client) shellFor(ctx context.Context, become bool, cmd string) (*shell, error) {
	k := asRoot(become)
	c.mu.Lock()
	for len(c.idle[k]) > 0 {
		sh := c.idle[k][len(c.idle[k])-1]
		c.idle[k] = c.idle[k][:len(c.idle[k])-1]
		if sh.alive() && sh.conn == c.conn {
			c.mu.Unlock()
			return sh, nil
		}
		c.shells[k]--
		sh.close()
	}
	if c.shells[0]+c.shells[1] >= maxShells {
		// Make room by closing an idle shell of the other user, if any.
		o := 1 - k
		if len(c.idle[o]) == 0 {
			c.mu.Unlock()
			return nil, nil
		}
		c.idle[o][0].close()
		c.idle[o] = c.idle[o][1:]
		c.shells[o]--
	}
	c.shells[k]++
	c.mu.Unlock()
	sh, err := c.startShell(ctx, become, cmd)
	if err != nil {
		c.mu.Lock()
		c.shells[k]--
		c.mu.Unlock()
		return nil, err
	}
	return sh, nil
}

// asRoot indexes a client's shells: 1 for become shells, 0 for the login user's.
func asRoot(become bool) int {
	if become {
		return 1
	}
	return 0
}

// release returns a shell to the idle list, or closes it when it is broken
// or belongs to a connection that was replaced.
func (c *Client) release(sh *shell, become, reuse bool) {
	k := asRoot(become)
	c.mu.Lock()
	defer c.mu.Unlock()
	if reuse && sh.alive() && sh.conn == c.conn {
		c.idle[k] = append(c.idle[k], sh)
		return
	}
	c.shells[k]--
	sh.close()
}

// closeShellsLocked closes the idle shells; busy ones are closed when
// released, since their connection is no longer the client's.
func (c *Client) closeShellsLocked() {
	for k, list := range c.idle {
		for _, sh := range list {
			sh.close()
			c.shells[k]--
		}
		c.idle[k] = nil
	}
}

func (c *Client) startShell(ctx context.Context, become bool, cmd string) (*shell, error) {
	sess, err := c.session(ctx)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*shell, error) {
		sess.Close()
		return nil, &CommandError{Result: Result{Host: c.Name, Cmd: cmd, ExitCode: -1}, Err: err}
	}
	stdin, err := sess.StdinPipe()
	if err != nil {
		return fail(err)
	}
	stdout, err := sess.StdoutPipe()
	if err != nil {
		return fail(err)
	}
	errR, errW := io.Pipe()
	filter := newStderrFilter(errW, stdin, nil, become, c.cfg.BecomePassword)
	filter.keepStdin = true
	sess.Stderr = filter
	tag := make([]byte, 16)
	rand.Read(tag)
	sh := &shell{sess: sess, stdin: stdin, filter: filter, token: "@metalk8s-" + hex.EncodeToString(tag),
		out: make(chan framed, 1), errs: make(chan framed, 1), ended: make(chan struct{})}
	c.mu.Lock()
	sh.conn = c.conn
	c.mu.Unlock()
	if err := sess.Start(filter.wrap("exec /bin/sh", c.cfg.BecomeUser)); err != nil {
		return fail(fmt.Errorf("%w: %v", ErrConnectionLost, err))
	}
	go sh.frame(stdout, sh.out)
	go sh.frame(errR, sh.errs)
	go func() {
		sess.Wait()
		filter.flush()
		errW.Close()
		close(sh.ended)
	}()
	select {
	case <-filter.running:
		return sh, nil
	case <-sh.ended:
		if ferr := filter.failure(); ferr != nil {
			return fail(ferr)
		}
		return fail(fmt.Errorf("%w: the shell ended before it started", ErrConnectionLost))
	case <-ctx.Done():
		return fail(context.Cause(ctx))
	}
}

func (sh *shell) alive() bool {
	select {
	case <-sh.ended:
		return false
	default:
		return true
	}
}

func (sh *shell) close() { sh.sess.Close() }

// errNotSent: the command could not be written to the shell, so it did
// not run and may be sent again.
var errNotSent = errors.New("shell gone before the command was sent")

// runInShell runs one command in a shell and fills res. reuse is false
// when the shell cannot take another command.
func (c *Client) runInShell(ctx context.Context, sh *shell, cmd string, res *Result) (reuse bool, err error) {
	begin, end := Quote(sh.token+"{"), Quote(sh.token+"}")
	line := "printf %s " + begin + "; printf %s " + begin + " >&2; ( eval " + Quote(cmd) + " ) </dev/null; " +
		"r=$?; printf '%s%d\\n' " + end + " $r; printf '%s%d\\n' " + end + " $r >&2\n"
	if _, err := io.WriteString(sh.stdin, line); err != nil {
		return false, errNotSent
	}
	var out, errs *framed
	for out == nil || errs == nil {
		select {
		case f, open := <-sh.out:
			if !open {
				return false, &CommandError{Result: *res, Err: ErrConnectionLost}
			}
			out = &f
		case f, open := <-sh.errs:
			if !open {
				return false, &CommandError{Result: *res, Err: ErrConnectionLost}
			}
			errs = &f
		case <-ctx.Done():
			// The shell goes with the command's process group.
			c.killGroup(ctx, sh.filter, sh.ended)
			if out != nil {
				res.Stdout = out.data
			}
			if errs != nil {
				res.Stderr = errs.data
			}
			return false, &CommandError{Result: *res, Err: context.Cause(ctx)}
		}
	}
	res.Stdout, res.Stderr, res.ExitCode = out.data, errs.data, out.code
	if res.ExitCode != 0 {
		return true, &CommandError{Result: *res}
	}
	return true, nil
}

// frame cuts a stream into the commands' outputs, between the markers
// "<token>{" and "<token>}<exit code>\n".
func (sh *shell) frame(r io.Reader, to chan<- framed) {
	defer close(to)
	begin, end := []byte(sh.token+"{"), []byte(sh.token+"}")
	var buf []byte
	inside, from := false, 0 // from: where the next search starts
	chunk := make([]byte, 8<<10)
	for {
		n, err := r.Read(chunk)
		buf = append(buf, chunk[:n]...)
		for {
			if !inside {
				i := bytes.Index(buf[from:], begin)
				if i < 0 {
					// Stray output: keep only what may start a marker.
					if k := len(begin) - 1; len(buf) > k {
						buf = append(buf[:0], buf[len(buf)-k:]...)
					}
					from = 0
					break
				}
				buf, inside, from = buf[from+i+len(begin):], true, 0
			}
			i := bytes.Index(buf[from:], end)
			if i < 0 {
				from = max(0, len(buf)-len(end)+1)
				break
			}
			i += from
			nl := bytes.IndexByte(buf[i+len(end):], '\n')
			if nl < 0 {
				from = i
				break
			}
			code, cerr := strconv.Atoi(string(buf[i+len(end) : i+len(end)+nl]))
			if cerr != nil {
				code = -1
			}
			select {
			case to <- framed{data: bytes.Clone(buf[:i]), code: code}:
			case <-sh.ended:
				return
			}
			buf, inside, from = buf[i+len(end)+nl+1:], false, 0
		}
		if err != nil {
			return
		}
	}
}
