package ssh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"syscall"
)

// Local connections (ansible_connection=local, Ansible's
// plugins/connection/local.py) run commands on this machine with /bin/sh,
// as the user running metalk8s, through sudo under become, with the same
// wrapper as over SSH: the process group marker (to kill a command that
// times out) and the sudo password on stdin, never on a command line. No
// address, port, user or key is used.

// runLocal runs cmd on this machine.
func (c *Client) runLocal(ctx context.Context, cmd string, o runOpts, res *Result) (*Result, error) {
	become := c.cfg.Become && !o.noSudo && !alreadyBecome(c.cfg.BecomeUser)
	var stdout, stderr bytes.Buffer
	sh := exec.Command("/bin/sh", "-c", "")
	sh.Stdout = &stdout
	sh.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := sh.StdinPipe()
	if err != nil {
		return res, &CommandError{Result: *res, Err: err}
	}
	filter := newStderrFilter(&stderr, stdin, o.stdin, become, c.cfg.BecomePassword)
	sh.Stderr = filter
	sh.Args[2] = filter.wrap(cmd, c.cfg.BecomeUser)
	if err := sh.Start(); err != nil {
		return res, &CommandError{Result: *res, Err: err}
	}
	ended := make(chan struct{})
	var waitErr error
	go func() { waitErr = sh.Wait(); close(ended) }()
	select {
	case <-ended:
		err = waitErr
	case <-ctx.Done():
		// Under sudo the group is root's: kill it as the command's user.
		if become {
			c.killGroup(ctx, filter, ended)
		} else {
			syscall.Kill(-sh.Process.Pid, syscall.SIGKILL)
		}
		<-ended
		err = context.Cause(ctx)
	}
	filter.flush()
	res.Stdout, res.Stderr = stdout.Bytes(), stderr.Bytes()
	if ferr := filter.failure(); ferr != nil {
		return res, &CommandError{Result: *res, Err: ferr}
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
		res.ExitCode = 0
		return res, nil
	case errors.As(err, &exit) && exit.ExitCode() >= 0:
		res.ExitCode = exit.ExitCode()
		return res, &CommandError{Result: *res}
	}
	return res, &CommandError{Result: *res, Err: err}
}

// alreadyBecome: metalk8s already runs as the become user, so sudo (which
// a minimal machine may lack) changes nothing.
func alreadyBecome(becomeUser string) bool {
	u, err := user.Current()
	return err == nil && (u.Username == becomeUser || (becomeUser == "" || becomeUser == "root") && u.Uid == "0")
}

// stageLocal copies the content into a private temporary file on this
// machine, for the install script (upload.go) to put in place.
func (c *Client) stageLocal(f File) (string, error) {
	w, err := os.CreateTemp("", ".metalk8s-")
	if err != nil {
		return "", fmt.Errorf("host %s: upload %s: %w", c.Name, f.Path, err)
	}
	tmp := w.Name()
	err = f.write(w)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("host %s: upload %s: write %s: %w", c.Name, f.Path, tmp, err)
	}
	return tmp, nil
}
