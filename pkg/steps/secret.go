package steps

import (
	"context"
	"fmt"

	"github.com/metalk8s/metalk8s/pkg/ssh"
)

// SecretRunner is a Host that can run a command without its output
// reaching the run log (SSHHost does).
type SecretRunner interface {
	RunSecret(ctx context.Context, cmd string) ([]byte, error)
}

// ReadSecret returns a file of the host (a key, a kubeconfig) without
// writing its content to the run log. A host that cannot keep output out
// of its log is refused rather than trusted.
func ReadSecret(ctx context.Context, h Host, path string) ([]byte, error) {
	s, ok := h.(SecretRunner)
	if !ok {
		return nil, fmt.Errorf("%s: cannot read %s without logging it (host type %T)", h.Name(), path, h)
	}
	return s.RunSecret(ctx, "cat "+ssh.Quote(path))
}
