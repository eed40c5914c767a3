package cluster

import (
	"strings"
	"testing"

	"github.com/metalk8s/metalk8s/pkg/steps"
)

// add-node's selection on the full graph: every step of the added host;
// elsewhere only preflight and the cluster-side kinds; what it leaves out
// must be done (MissingDeps names it when the journal has nothing).
func TestAddNodePick(t *testing.T) {
	g, cl := kubeGraph(t)
	for _, c := range []struct {
		adding       []string
		want, absent []string
	}{
		// a worker: its own steps, the first control plane's waits and
		// addons; no other host's preparation or kubeadm
		{[]string{"node4"},
			[]string{"prepare/containerd@node4", "workers/kubeadm@node4", "preflight/facts@node1", "workers/nodes-ready@node1",
				"addons/monitoring@node1", "etcd/pki@node1", "volumes/storage-class@node1",
				// check-only facts the join decides from
				"control-plane/node-state@node1", "control-plane/node-state@node2", "etcd/data@node1"},
			[]string{"prepare/containerd@node1", "etcd/member@node1", "control-plane/kubeadm@node2", "control-plane/certs@node1"}},
		// a control plane and etcd member: its own etcd member and kubeadm
		// join, the workers' API proxy lists
		{[]string{"node3"},
			// the members' etcd/data (read-only): without it node3 would
			// bootstrap a cluster of its own (seen on the lab after
			// remove-node node3)
			[]string{"etcd/member@node3", "control-plane/kubeadm@node3", "workers/apiserver-proxy@node4", "etcd/health@node1",
				"etcd/data@node1", "etcd/data@node2"},
			[]string{"etcd/member@node2", "prepare/images@node4", "workers/kubeadm@node4"}},
	} {
		pick, err := AddNodePick(cl, c.adding)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range c.want {
			if s := g.Step(id); s == nil || !pick(s) {
				t.Errorf("adding %v: %s not run (%v)", c.adding, id, s)
			}
		}
		for _, id := range c.absent {
			if s := g.Step(id); s == nil || pick(s) {
				t.Errorf("adding %v: %s run, or missing (%v)", c.adding, id, s)
			}
		}
		// on a cluster up never made, what add-node needs is named
		missing := steps.MissingDeps(g, &steps.Options{Pick: pick})
		if len(missing) == 0 || !strings.Contains(strings.Join(missing, "\n"), "@node1") {
			t.Errorf("adding %v to nothing: missing %q", c.adding, missing)
		}
		for _, m := range missing {
			if strings.Contains(m, c.adding[0]+" (") {
				t.Errorf("adding %v: a step of the added host is reported missing: %s", c.adding, m)
			}
		}
		// done (the journal), nothing is missing
		if m := steps.MissingDeps(g, &steps.Options{Pick: pick, Done: func(*steps.Step) bool { return true }}); len(m) != 0 {
			t.Errorf("adding %v to a cluster up made: missing %q", c.adding, m)
		}
	}
	if _, err := AddNodePick(cl, []string{"node4", "node9"}); err == nil || !strings.Contains(err.Error(), "node9 not in the inventory") ||
		!strings.Contains(err.Error(), "node1, node2, node3, node4") {
		t.Errorf("an unknown host: %v", err)
	}
}
