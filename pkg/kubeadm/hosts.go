package kubeadm

import (
	"context"
	"fmt"
	"strings"

	"github.com/metalk8s/metalk8s/pkg/ssh"
	"github.com/metalk8s/metalk8s/pkg/steps"
)

// hostsMark ends the one /etc/hosts line metalk8s owns: the control-plane
// endpoint's name and the address it resolves to on this node.
const hostsMark = "# metalk8s: control-plane endpoint"

// hostsFile is the nodes' /etc/hosts (a test points it elsewhere).
var hostsFile = "/etc/hosts"

// endpointAddress reads the address the endpoint name maps to in the
// node's /etc/hosts ("" when metalk8s wrote no line).
func endpointAddress(ctx context.Context, h steps.Host, name string) (string, error) {
	out, err := h.Run(ctx, "grep -F "+ssh.Quote(hostsMark)+" "+hostsFile+" || true")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[1] == name {
			return f[0], nil
		}
	}
	return "", nil
}

// setEndpointAddress points the endpoint name at addr in /etc/hosts,
// replacing metalk8s's line and keeping every other line; the file is
// rewritten in place (same inode) from a complete copy.
func setEndpointAddress(ctx context.Context, h steps.Host, name, addr string) error {
	if strings.ContainsAny(name+addr, " \t\n'\"#") {
		return fmt.Errorf("endpoint %q -> %q: not usable in /etc/hosts", name, addr)
	}
	line := fmt.Sprintf("%s %s %s", addr, name, hostsMark)
	script := fmt.Sprintf(`set -e; f=%s; t=$(mktemp "$f.metalk8s.XXXXXX"); trap 'rm -f "$t"' EXIT
grep -vF %s "$f" > "$t" || true
printf '%%s\n' %s >> "$t"
cat "$t" > "$f"`, ssh.Quote(hostsFile), ssh.Quote(hostsMark), ssh.Quote(line))
	_, err := h.Run(ctx, script)
	return err
}
