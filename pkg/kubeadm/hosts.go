package kubeadm

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/metalk8s/metalk8s/pkg/ssh"
	"github.com/metalk8s/metalk8s/pkg/steps"
)

// hostsMark ends the one /etc/hosts line metalk8s owns: the control-plane
// endpoint's name and the address it resolves to on this node.
const hostsMark = "# metalk8s: control-plane endpoint"

// hostsFile is the nodes' /etc/hosts, and podHosts the copies the kubelet
// gives host-network pods when they start (kube-proxy reaches the API by
// the endpoint name through one); a test points them elsewhere.
var (
	hostsFile = "/etc/hosts"
	podHosts  = "/var/lib/kubelet/pods/*/etc-hosts"
)

// endpointDiff says what differs from the endpoint name resolving to want
// on the node: its line in /etc/hosts, another line of /etc/hosts that maps
// the name first (glibc takes the first), and the copies in running
// host-network pods. Nothing when all agree.
func endpointDiff(ctx context.Context, h steps.Host, name, want string) ([]string, error) {
	script := fmt.Sprintf(`grep -HF %[1]s %[2]s %[3]s 2>/dev/null; awk -v n=%[4]s 'index($0, m) == 0 && $1 !~ /^#/ { for (i = 2; i <= NF; i++) if ($i == n) { print "other:" $0; next } }' m=%[1]s %[2]s`,
		ssh.Quote(hostsMark), ssh.Quote(hostsFile), podHosts, ssh.Quote(name))
	out, err := h.Run(ctx, script+"; true")
	if err != nil {
		return nil, err
	}
	have := map[string]string{} // file -> address
	var diff []string
	for _, line := range strings.Split(string(out), "\n") {
		if other, ok := strings.CutPrefix(line, "other:"); ok {
			diff = append(diff, fmt.Sprintf("~ %s: comment out %q (it maps %s first)", hostsFile, other, name))
			continue
		}
		file, rest, ok := strings.Cut(line, ":")
		if f := strings.Fields(rest); ok && len(f) >= 2 && f[1] == name {
			have[file] = f[0]
		}
	}
	if a, ok := have[hostsFile]; !ok || a != want {
		diff = append(diff, fmt.Sprintf("~ %s: %s -> %s (was %q)", hostsFile, name, want, a))
	}
	var pods []string
	for file, a := range have {
		if file != hostsFile && a != want {
			pods = append(pods, file)
		}
	}
	sort.Strings(pods)
	for _, f := range pods {
		diff = append(diff, fmt.Sprintf("~ %s: %s -> %s (was %s)", f, name, want, have[f]))
	}
	return diff, nil
}

// setEndpointAddress points the endpoint name at addr in /etc/hosts (its
// own line replaced, any other line mapping the name commented out, every
// other line kept) and in the running host-network pods' copies that
// carry metalk8s's line. Files are rewritten in place (same inode: the
// pods' copies are bind mounts) from a complete copy.
func setEndpointAddress(ctx context.Context, h steps.Host, name, addr string) error {
	if strings.ContainsAny(name+addr, " \t\n'\"#") {
		return fmt.Errorf("endpoint %q -> %q: not usable in /etc/hosts", name, addr)
	}
	line := fmt.Sprintf("%s %s %s", addr, name, hostsMark)
	script := fmt.Sprintf(`set -e
rewrite() {
  t=$(mktemp "$1.metalk8s.XXXXXX")
  awk -v n=%[3]s -v m=%[1]s 'index($0, m) > 0 { next }
    $1 !~ /^#/ { for (i = 2; i <= NF; i++) if ($i == n) { print "# " $0 " # metalk8s: the endpoint name is set below"; next } }
    { print }' "$1" > "$t" || { rm -f "$t"; return 1; }
  printf '%%s\n' %[2]s >> "$t"
  cat "$t" > "$1"; rm -f "$t"
}
rewrite %[4]s
for f in %[5]s; do if [ -f "$f" ] && grep -qF %[1]s "$f"; then rewrite "$f"; fi; done`,
		ssh.Quote(hostsMark), ssh.Quote(line), ssh.Quote(name), ssh.Quote(hostsFile), podHosts)
	_, err := h.Run(ctx, script)
	return err
}
