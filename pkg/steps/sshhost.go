package steps

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/metalk8s/metalk8s/pkg/ssh"
)

// SSHHost is a Host reached over SSH, with every command written to the
// run log.
type SSHHost struct {
	Client *ssh.Client
	Log    *RunLog
}

// Name is the inventory name.
func (h *SSHHost) Name() string { return h.Client.Name }

// Run runs a command and returns its stdout; a failure carries the host,
// the command, the exit code and stderr.
func (h *SSHHost) Run(ctx context.Context, cmd string) ([]byte, error) {
	start := time.Now()
	res, err := h.Client.Run(ctx, cmd)
	h.Log.Command(h.Name(), cmd, res, err, time.Since(start))
	if res == nil {
		return nil, err
	}
	return res.Stdout, err
}

// Put writes a file if its content differs.
func (h *SSHHost) Put(ctx context.Context, f ssh.File) (bool, error) {
	changed, err := h.Client.Upload(ctx, f)
	src := f.Local
	if src == "" {
		src = fmt.Sprintf("%d bytes", len(f.Data))
	}
	h.Log.Upload(h.Name(), f.Path, src, changed, err)
	return changed, err
}

// DialContext connects to addr as seen from the host, through SSH.
func (h *SSHHost) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return h.Client.DialContext(ctx, network, addr)
}

// RunSecret runs a command whose stdout is a secret (a private key, a
// kubeconfig): the run log records the command, its exit code, stderr and
// the output's size, never the output itself, and a failed command's error
// does not quote its stdout.
func (h *SSHHost) RunSecret(ctx context.Context, cmd string) ([]byte, error) {
	start := time.Now()
	res, err := h.Client.Run(ctx, cmd)
	var stdout []byte
	if res != nil {
		stdout = res.Stdout
	}
	logged, err := withoutStdout(res, err)
	h.Log.Command(h.Name(), cmd, logged, err, time.Since(start))
	return stdout, err
}

// withoutStdout is res with its stdout replaced by its size, and err
// without the stdout a failed command's error would quote.
func withoutStdout(res *ssh.Result, err error) (*ssh.Result, error) {
	var ce *ssh.CommandError
	if errors.As(err, &ce) {
		clean := *ce
		clean.Stdout = nil
		err = &clean
	}
	if res != nil {
		logged := *res
		logged.Stdout = []byte(fmt.Sprintf("(secret output, %d bytes, not logged)", len(res.Stdout)))
		res = &logged
	}
	return res, err
}
