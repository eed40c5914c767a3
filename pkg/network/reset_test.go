package network

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metalk8s/metalk8s/internal/testpeer"
	"github.com/metalk8s/metalk8s/pkg/ssh"
)

// nsHost runs commands in a network namespace of this machine.
type nsHost struct{ ns string }

func (h nsHost) Name() string { return h.ns }
func (h nsHost) Run(ctx context.Context, cmd string) ([]byte, error) {
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", h.ns, "sh", "-c", cmd).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%v: %s", err, out)
	}
	return out, nil
}
func (h nsHost) Put(context.Context, ssh.File) (bool, error) { return false, fmt.Errorf("not here") }

// TestResetStepScoped runs the network reset in a fresh network namespace
// with real iptables (nf_tables), ipset and nft, and checks it deletes
// Kubernetes' and the pod network's chains, sets, tables, bridge and
// files and keeps the rules, sets and tables of others. IPVS is not in
// this machine's kernel: its part is left to the lab.
func TestResetStepScoped(t *testing.T) {
	testpeer.Root(t, "the reset runs in a network namespace")
	for _, tool := range []string{"iptables-restore", "ipset", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			testpeer.Missing(t, tool, "make deps (iptables, ipset, nftables)")
		}
	}
	ns := fmt.Sprintf("mk8s-reset-%d", os.Getpid())
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "delete", ns).Run() })
	in := func(args ...string) string { return run(t, "ip", append([]string{"netns", "exec", ns}, args...)...) }

	in("iptables", "-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT")
	in("iptables", "-N", "OPERATOR")
	in("iptables", "-A", "OPERATOR", "-j", "RETURN")
	in("iptables", "-A", "INPUT", "-j", "OPERATOR")
	in("iptables", "-t", "nat", "-N", "KUBE-SERVICES")
	in("iptables", "-t", "nat", "-N", "KUBE-SVC-ABC")
	in("iptables", "-t", "nat", "-A", "KUBE-SERVICES", "-j", "KUBE-SVC-ABC")
	in("iptables", "-t", "nat", "-A", "PREROUTING", "-m", "comment", "--comment", "kubernetes service portals", "-j", "KUBE-SERVICES")
	in("iptables", "-N", "FLANNEL-FWD")
	in("iptables", "-A", "FORWARD", "-m", "comment", "--comment", "flanneld forward", "-j", "FLANNEL-FWD")
	in("iptables", "-t", "nat", "-N", "CNI-HOSTPORT-DNAT")
	in("iptables", "-t", "nat", "-A", "OUTPUT", "-j", "CNI-HOSTPORT-DNAT")
	in("ip6tables", "-t", "nat", "-N", "KUBE-POSTROUTING")
	in("ip6tables", "-t", "nat", "-A", "POSTROUTING", "-j", "KUBE-POSTROUTING")
	in("ipset", "create", "KUBE-CLUSTER-IP", "hash:ip,port")
	in("ipset", "create", "operator-set", "hash:ip")
	in("nft", "add", "table", "inet", "kube-network-policies")
	in("nft", "add", "table", "ip", "kube-proxy")
	in("nft", "add", "table", "inet", "operator")
	in("ip", "link", "add", "cni0", "type", "bridge")
	in("ip", "link", "add", "operator0", "type", "bridge")
	dir := t.TempDir()
	cniState, conf := filepath.Join(dir, "cni"), filepath.Join(dir, "10-metalk8s.conflist")
	if err := os.MkdirAll(filepath.Join(cniState, "networks"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	kept := filepath.Join(dir, "kept")
	if err := os.WriteFile(kept, nil, 0o644); err != nil {
		t.Fatal(err)
	}

	s := resetStep(ns, nil, []string{cniState, conf, filepath.Join(dir, "absent")})
	h := nsHost{ns}
	ctx := context.Background()
	ch, err := s.Check(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"- iptables filter: chains FLANNEL-FWD", "- iptables nat: chains CNI-HOSTPORT-DNAT KUBE-SERVICES KUBE-SVC-ABC",
		"- ip6tables nat: chains KUBE-POSTROUTING", "- ipset KUBE-CLUSTER-IP", "- nftables table inet kube-network-policies",
		"- nftables table ip kube-proxy", "- interface cni0", "- " + cniState, "- " + conf}
	if got := strings.Join(ch.Diff, "\n"); !ch.Needed || got != strings.Join(want, "\n") {
		t.Fatalf("check:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	if err := s.Apply(ctx, h); err != nil {
		t.Fatal(err)
	}
	if ch, err := s.Check(ctx, h); err != nil || ch.Needed {
		t.Fatalf("check after apply: %v %v", ch.Diff, err)
	}
	save := in("iptables-save")
	for _, rule := range []string{"-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT", "-A INPUT -j OPERATOR", "-A OPERATOR -j RETURN"} {
		if !strings.Contains(save, rule) {
			t.Errorf("the operator's rule %q is gone:\n%s", rule, save)
		}
	}
	if strings.Contains(save, "KUBE-") || strings.Contains(save, "FLANNEL-") || strings.Contains(save, "CNI-") {
		t.Errorf("Kubernetes chains left:\n%s", save)
	}
	if got := in("ipset", "list", "-n"); strings.TrimSpace(got) != "operator-set" {
		t.Errorf("ipsets after reset: %q, want only operator-set", got)
	}
	if got := in("nft", "list", "tables"); strings.Contains(got, "kube-") || !strings.Contains(got, "inet operator") {
		t.Errorf("nftables tables after reset:\n%s", got)
	}
	if got := in("ip", "-o", "link"); strings.Contains(got, "cni0") || !strings.Contains(got, "operator0") {
		t.Errorf("links after reset:\n%s", got)
	}
	for _, p := range []string{cniState, conf} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s still there (%v)", p, err)
		}
	}
	if _, err := os.Stat(kept); err != nil {
		t.Errorf("a file not named was touched: %v", err)
	}
}
