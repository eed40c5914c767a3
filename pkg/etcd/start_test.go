package etcd

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/metalk8s/metalk8s/pkg/ssh"
)

// systemdHost answers `systemctl is-active` with each state in turn, the
// last one for ever after.
type systemdHost struct {
	states []string
	asked  int
}

func (h *systemdHost) Name() string { return "n1" }
func (h *systemdHost) Put(context.Context, ssh.File) (bool, error) {
	return false, nil
}
func (h *systemdHost) Run(_ context.Context, cmd string) ([]byte, error) {
	if !strings.HasPrefix(cmd, "systemctl is-active etcd") {
		return nil, nil
	}
	s := h.states[min(h.asked, len(h.states)-1)]
	h.asked++
	return []byte(s + "\n"), nil
}

func TestWaitStarted(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		states []string
		err    string // "" for none
	}{
		{[]string{"inactive", "inactive", "activating"}, ""},
		{[]string{"active"}, ""},
		{[]string{"inactive", "failed"}, "failed to start"},
		{[]string{"inactive"}, "not started"},
	} {
		h := &systemdHost{states: c.states}
		err := waitStarted(ctx, h, 50*time.Millisecond, time.Millisecond)
		if (err == nil) != (c.err == "") || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%v: %v, want %q", c.states, err, c.err)
		}
	}
}
