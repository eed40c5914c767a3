package cluster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metalk8s/metalk8s/pkg/kubeadm"
	"github.com/metalk8s/metalk8s/pkg/steps"
)

// remove-node's graph of kubeGraph's cluster: what runs where, and in
// which order.
func TestRemoveNodeGraph(t *testing.T) {
	cl, b := kubeCluster(t)
	g, skipped, err := RemoveNodeGraph(cl, b, RemoveOptions{Nodes: []string{"node3"}, WipeVolumes: []string{"node3"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(skipped) != 0 {
		t.Errorf("skipped %v, want none", skipped)
	}
	byName := map[string]*steps.Step{}
	for _, s := range g.Steps {
		if s.Phase != "remove" {
			t.Errorf("%s in phase %s, want remove", s.ID, s.Phase)
		}
		byName[s.ID] = s
		switch {
		case s.Host == "node3" && !strings.HasPrefix(s.ID, "remove/"):
			t.Errorf("%s: only removal steps run on node3", s.ID)
		case s.Host != "node3" && !kindIn(s.ID, append(afterRemoval, "remove/")):
			t.Errorf("%s: not a step remove-node runs on the hosts left", s.ID)
		}
	}
	must := func(id string) *steps.Step {
		t.Helper()
		s := byName[id]
		if s == nil {
			t.Fatalf("no step %s", id)
		}
		return s
	}
	// Each step after the one before it, and the host's after the cluster's.
	order := []string{
		"remove/etcd-quorum/node3@node1", "remove/local-volumes/node3@node1", "remove/drain/node3@node1",
		"workers/apiserver-proxy@node4", "remove/etcd-member/node3@node1", "remove/node/node3@node1",
		"volumes/prune@node1",
	}
	for i := 1; i < len(order); i++ {
		if !reaches(g, must(order[i]), order[i-1]) {
			t.Errorf("%s does not come after %s", order[i], order[i-1])
		}
	}
	for _, p := range [][2]string{
		{"remove/kubeadm-reset@node3", "remove/node/node3@node1"},
		{"remove/network-reset@node3", "remove/kubeadm-reset@node3"},
		{"remove/node-reset@node3", "remove/kubeadm-reset@node3"},
		{"remove/wipe-volumes@node3", "remove/node-reset@node3"},
	} {
		if !reaches(g, must(p[0]), p[1]) {
			t.Errorf("%s does not come after %s", p[0], p[1])
		}
	}
	for _, s := range []string{"remove/etcd-reset@node3"} {
		if !reaches(g, must(s), "remove/etcd-member/node3@node1") {
			t.Errorf("%s before the member's removal", s)
		}
	}
	// The proxy lists only the control planes left.
	if got := strings.Join(backendNames(t, must("workers/apiserver-proxy@node4")), ","); got != "node1,node2" {
		t.Errorf("node4's proxy backends %s, want node1,node2", got)
	}
	for _, s := range g.Steps {
		if strings.HasPrefix(s.ID, "addons/") && !reaches(g, s, "remove/node/node3@node1") {
			t.Errorf("%s before the Node is deleted", s.ID)
		}
	}

	// Unreachable: no step on node3, the host-side ones listed.
	g, skipped, err = RemoveNodeGraph(cl, b, RemoveOptions{Nodes: []string{"node3"}, Unreachable: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range g.Steps {
		if s.Host == "node3" {
			t.Errorf("%s runs on the unreachable host", s.ID)
		}
	}
	if len(skipped) != 1 || !strings.Contains(skipped[0], "node3: remove/kubeadm-reset, remove/network-reset, remove/etcd-reset, remove/node-reset") {
		t.Errorf("skipped %q", skipped)
	}
	// A worker only: no etcd steps.
	g, _, err = RemoveNodeGraph(cl, b, RemoveOptions{Nodes: []string{"node4"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range g.Steps {
		if strings.Contains(s.ID, "etcd") {
			t.Errorf("%s when removing a worker", s.ID)
		}
	}
}

func TestRemoveNodeRefused(t *testing.T) {
	cl, b := kubeCluster(t)
	for _, c := range []struct {
		o    RemoveOptions
		want string
	}{
		{RemoveOptions{}, "name the hosts"},
		{RemoveOptions{Nodes: []string{"node9"}}, "node9 not in the inventory"},
		{RemoveOptions{Nodes: []string{"node1", "node2", "node3"}}, "the last control plane"},
		{RemoveOptions{Nodes: []string{"node3"}, WipeVolumes: []string{"node4"}}, "--wipe-volumes node4: not a host being removed"},
		{RemoveOptions{Nodes: []string{"node3"}, WipeVolumes: []string{"node3"}, Unreachable: true}, "unreachable"},
	} {
		_, _, err := RemoveNodeGraph(cl, b, c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.o, err, c.want)
		}
	}
	if _, _, err := RemoveNodeGraph(cl, "", RemoveOptions{Nodes: []string{"node3"}}); err == nil || !strings.Contains(err.Error(), "no bundle") {
		t.Errorf("without a bundle: %v", err)
	}
}

func backendNames(t *testing.T, s *steps.Step) []string {
	t.Helper()
	bs, ok := s.Inputs.([]kubeadm.Backend)
	if !ok {
		t.Fatalf("%s inputs %T", s.ID, s.Inputs)
	}
	var out []string
	for _, b := range bs {
		out = append(out, b.Name)
	}
	return out
}

// reset's graph: every host's reset steps, in parallel across hosts, the
// volumes only where asked.
func TestResetGraph(t *testing.T) {
	cl, _ := kubeCluster(t)
	g, err := ResetGraph(cl, ResetOptions{WipeVolumes: []string{"node4"}})
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, s := range g.Steps {
		have[s.ID] = true
		for _, d := range s.Deps {
			if g.Step(d).Host != s.Host {
				t.Errorf("%s waits for %s on another host", s.ID, d)
			}
		}
	}
	for _, id := range []string{"remove/kubeadm-reset@node1", "remove/etcd-reset@node1", "remove/network-reset@node4",
		"remove/node-reset@node4", "remove/wipe-volumes@node4"} {
		if !have[id] {
			t.Errorf("no step %s", id)
		}
	}
	for _, id := range []string{"remove/etcd-reset@node4", "remove/wipe-volumes@node1"} {
		if have[id] {
			t.Errorf("step %s: node4 is no etcd member, node1's volumes are kept", id)
		}
	}
	if _, err := ResetGraph(cl, ResetOptions{WipeVolumes: []string{"node9"}}); err == nil {
		t.Error("--wipe-volumes of an unknown host accepted")
	}
}

// A bundle without the addons' images: refused unless the run skips the
// addons phase.
func TestGraphAddonImagesSelected(t *testing.T) {
	cl, b := kubeCluster(t)
	m := filepath.Join(b, "manifest.json")
	data, err := os.ReadFile(m)
	if err != nil {
		t.Fatal(err)
	}
	// Drop Traefik's image: the traefik addon is on by default.
	lean := strings.Replace(string(data), `{"name":"docker.io/library/traefik:v3.7.13","digest":"sha256:3"},`, "", 1)
	if lean == string(data) {
		t.Fatal("the test manifest has no Traefik image to drop")
	}
	if err := os.WriteFile(m, []byte(lean), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := graph(cl, b, true); err == nil || !strings.Contains(err.Error(), "traefik") {
		t.Errorf("addons selected: %v, want Traefik's image named", err)
	}
	if _, err := graph(cl, b, false); err != nil {
		t.Errorf("addons skipped: %v", err)
	}
}
