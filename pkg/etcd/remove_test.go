package etcd

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/metalk8s/metalk8s/pkg/kube/kubetest"
)

func TestCheckRemoval(t *testing.T) {
	h := func(states string) []Health { // "n1+ n2- n3+": healthy or not
		var out []Health
		for _, f := range strings.Fields(states) {
			out = append(out, Health{Name: f[:len(f)-1], Healthy: f[len(f)-1] == '+'})
		}
		return out
	}
	for _, c := range []struct {
		members, remove, err string
	}{
		{"n1+ n2+ n3+", "n3", ""},
		{"n1+ n2- n3+", "n2", ""}, // the member that is down
		{"n1+ n2- n3+", "n3", "would leave 2 members with 1 healthy (n2 down), fewer than a quorum of 2"},
		{"n1+ n2+", "n2", ""},
		{"n1+", "n1", "the only etcd member"},
		{"n1+ n2+ n3+ n4- n5-", "n1", "would leave 4 members with 2 healthy (n4, n5 down), fewer than a quorum of 3"},
		{"n1+ n2+ n3+ n4+ n5-", "n5", ""},
		{"n1+ n2+", "n9", "n9 is not an etcd member"},
	} {
		err := CheckRemoval(h(c.members), c.remove)
		if (err == nil) != (c.err == "") || err != nil && !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s, remove %s: %v, want %q", c.members, c.remove, err, c.err)
		}
	}
}

// RemoveMember on a real three-member etcd cluster (the lab's etcd
// build): the member goes by its peer URL, the two left keep serving, and
// a second removal finds nothing to do.
func TestRemoveMember(t *testing.T) {
	bin := kubetest.Binary(t, "etcd", "etcd")
	dir := t.TempDir()
	type member struct{ name, client, peer string }
	var ms []member
	var initial []string
	for i := 1; i <= 3; i++ {
		m := member{fmt.Sprintf("m%d", i), fmt.Sprintf("http://127.0.0.1:%d", kubetest.FreePort(t)), fmt.Sprintf("http://127.0.0.1:%d", kubetest.FreePort(t))}
		ms = append(ms, m)
		initial = append(initial, m.name+"="+m.peer)
	}
	for _, m := range ms {
		cmd := exec.Command(bin, "--name="+m.name, "--data-dir="+filepath.Join(dir, m.name), "--listen-client-urls="+m.client,
			"--advertise-client-urls="+m.client, "--listen-peer-urls="+m.peer, "--initial-advertise-peer-urls="+m.peer,
			"--initial-cluster="+strings.Join(initial, ","), "--initial-cluster-state=new", "--unsafe-no-fsync", "--log-level=error")
		logf, err := os.Create(filepath.Join(dir, m.name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{ms[0].client, ms[1].client}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if _, err := c.Put(ctx, "k", "v"); err == nil {
			break
		} else if time.Now().After(end) {
			t.Fatalf("the cluster never served a write: %v", err)
		}
	}
	// etcd itself refuses a removal until every member has been connected
	// for a few seconds ("unhealthy cluster")
	var removed bool
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(time.Second) {
		removed, err = RemoveMember(ctx, c, ms[2].peer)
		if err == nil || !strings.Contains(err.Error(), "unhealthy cluster") || time.Now().After(end) {
			break
		}
	}
	if err != nil || !removed {
		t.Fatalf("RemoveMember(%s): %v, %v", ms[2].peer, removed, err)
	}
	urls, _, err := Members(ctx, c)
	if err != nil || len(urls) != 2 || urls["m3"] != nil {
		t.Errorf("members after removing m3: %v, %v", urls, err)
	}
	if _, err := c.Put(ctx, "k", "after"); err != nil {
		t.Errorf("the two members left: %v", err)
	}
	if removed, err := RemoveMember(ctx, c, ms[2].peer); err != nil || removed {
		t.Errorf("removing m3 again: %v, %v", removed, err)
	}
}
