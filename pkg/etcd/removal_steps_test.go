package etcd

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metalk8s/metalk8s/pkg/inventory"
	"github.com/metalk8s/metalk8s/pkg/kube/kubetest"
	"github.com/metalk8s/metalk8s/pkg/ssh"
	"github.com/metalk8s/metalk8s/pkg/steps"
)

// memberHost stands in for a member's SSH connection: its dials reach the
// member's client port on this machine.
type memberHost struct{ name, client string }

func (h *memberHost) Name() string { return h.name }
func (h *memberHost) Run(context.Context, string) ([]byte, error) {
	return nil, fmt.Errorf("no shell here")
}
func (h *memberHost) Put(context.Context, ssh.File) (bool, error) {
	return false, fmt.Errorf("no files here")
}
func (h *memberHost) DialContext(ctx context.Context, network, _ string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, h.client)
}

// tlsMember is one etcd of a real three-member TLS cluster made with this
// package's PKI, its peer URL the one the inventory gives
// (https://<ip>:2380) on its own loopback address.
type tlsMember struct {
	node   *inventory.Node
	client string
	cmd    *exec.Cmd
}

// RemovalSteps on a real three-member TLS etcd: removing a member while
// another is down is refused by the quorum step and changes nothing; with
// the member to remove down (--unreachable), the two left keep a quorum
// and it goes; a re-run finds nothing to do.
func TestRemovalStepsRealEtcd(t *testing.T) {
	bin := kubetest.Binary(t, "etcd", "etcd")
	dir := t.TempDir()
	p := &PKI{Dir: filepath.Join(dir, "pki")}
	var ms []*tlsMember
	var members []Member
	var initial []string
	for i := 1; i <= 3; i++ {
		n := &inventory.Node{Name: fmt.Sprintf("m%d", i), IP: fmt.Sprintf("127.0.0.%d", 30+i), Etcd: true}
		ms = append(ms, &tlsMember{node: n, client: fmt.Sprintf("127.0.0.1:%d", kubetest.FreePort(t))})
		members = append(members, Member{Name: n.Name, SANs: []string{n.Name, n.IP}})
		initial = append(initial, n.Name+"="+peerURL(n))
	}
	if _, err := p.Ensure(members); err != nil {
		t.Fatal(err)
	}
	start := func(m *tlsMember) {
		t.Helper()
		pk := filepath.Join(p.Dir, m.node.Name)
		m.cmd = exec.Command(bin, "--name="+m.node.Name, "--data-dir="+filepath.Join(dir, m.node.Name),
			"--listen-client-urls=https://"+m.client, "--advertise-client-urls=https://"+m.client,
			"--listen-peer-urls="+peerURL(m.node), "--initial-advertise-peer-urls="+peerURL(m.node),
			"--initial-cluster="+strings.Join(initial, ","), "--initial-cluster-state=new",
			"--cert-file="+filepath.Join(pk, "server.crt"), "--key-file="+filepath.Join(pk, "server.key"),
			"--peer-cert-file="+filepath.Join(pk, "peer.crt"), "--peer-key-file="+filepath.Join(pk, "peer.key"),
			"--client-cert-auth", "--peer-client-cert-auth",
			"--trusted-ca-file="+filepath.Join(p.Dir, "ca.crt"), "--peer-trusted-ca-file="+filepath.Join(p.Dir, "ca.crt"),
			"--unsafe-no-fsync", "--log-level=error")
		logf, err := os.OpenFile(filepath.Join(dir, m.node.Name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		m.cmd.Stdout, m.cmd.Stderr = logf, logf
		if err := m.cmd.Start(); err != nil {
			t.Fatal(err)
		}
	}
	stop := func(m *tlsMember) { _ = m.cmd.Process.Kill(); _ = m.cmd.Wait() }
	for _, m := range ms {
		start(m)
		t.Cleanup(func() { stop(m) })
	}
	hosts := map[string]steps.Host{}
	for _, m := range ms {
		hosts[m.node.Name] = &memberHost{name: m.node.Name, client: m.client}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	left := []*inventory.Node{ms[0].node, ms[1].node}
	run := func(unreachable bool) *steps.Report {
		t.Helper()
		q, r := RemovalSteps(p.Dir, left, ms[2].node, unreachable, nil)
		g, err := steps.NewGraph([]*steps.Step{q, r})
		if err != nil {
			t.Fatal(err)
		}
		return steps.Run(ctx, g, hosts, steps.Options{Apply: true})
	}
	memberCount := func() int {
		t.Helper()
		c, err := clientTo(steps.WithHosts(ctx, hosts), p, []string{"m1"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		urls, _, err := Members(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		return len(urls)
	}
	if err := waitHealthy(steps.WithHosts(ctx, hosts), p, []string{"m1", "m2", "m3"}, time.Minute); err != nil {
		t.Fatal(err)
	}

	// m2 down: removing m3 would leave m1 alone of two. Refused.
	stop(ms[1])
	rep := run(false)
	q := rep.Outcomes[steps.ID(QuorumStepName+"/m3", "m1")]
	if q.Status != steps.StatusFailed || !strings.Contains(fmt.Sprint(q.Err), "fewer than a quorum") {
		t.Fatalf("quorum step with m2 down: %s %v", q.Status, q.Err)
	}
	if r := rep.Outcomes[steps.ID(MemberStepName+"/m3", "m1")]; r.Status != steps.StatusBlocked {
		t.Errorf("member step after a refusal: %s", r.Status)
	}
	start(ms[1])
	if err := waitHealthy(steps.WithHosts(ctx, hosts), p, []string{"m1", "m2", "m3"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if n := memberCount(); n != 3 {
		t.Fatalf("%d members after a refused removal, want 3", n)
	}

	// m3 down for good: removed, the two left healthy.
	stop(ms[2])
	delete(hosts, "m3")
	// etcd refuses a removal for a few seconds after a member (m2) came back.
	var err error
	for end := time.Now().Add(45 * time.Second); ; time.Sleep(2 * time.Second) {
		rep = run(true)
		err = rep.Err()
		if err == nil || !strings.Contains(err.Error(), "unhealthy cluster") || time.Now().After(end) {
			break
		}
	}
	if err != nil {
		t.Fatalf("removing m3, unreachable: %v", err)
	}
	if n := memberCount(); n != 2 {
		t.Errorf("%d members after removing m3, want 2", n)
	}
	rep = run(true)
	for id, o := range rep.Outcomes {
		if o.Status != steps.StatusOK {
			t.Errorf("re-run: %s %s %v", id, o.Status, o.Err)
		}
	}
}
