package steps

import (
	"context"
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
