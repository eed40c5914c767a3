package cluster

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/metalk8s/metalk8s/pkg/etcd"
	"github.com/metalk8s/metalk8s/pkg/inventory"
	"github.com/metalk8s/metalk8s/pkg/kube"
	"github.com/metalk8s/metalk8s/pkg/kubeadm"
	"github.com/metalk8s/metalk8s/pkg/lvm"
	"github.com/metalk8s/metalk8s/pkg/network"
	"github.com/metalk8s/metalk8s/pkg/node"
	"github.com/metalk8s/metalk8s/pkg/steps"
)

// RemoveOptions are remove-node's settings.
type RemoveOptions struct {
	Nodes []string // inventory names of the hosts to remove
	// Unreachable: the hosts cannot be reached (a dead machine); the
	// cluster-side steps run and the host-side ones are skipped (Skipped).
	Unreachable bool
	// WipeVolumes names the removed hosts whose LVM volumes (the
	// inventory's) are deleted with their data; the others' are kept.
	WipeVolumes []string
	Drain       kubeadm.DrainOptions
}

// afterRemoval are the kinds of the remaining cluster's steps that
// remove-node runs (on the hosts left), besides its own: the read-only
// preflight checks, pki/recover (the etcd client's certificates), the
// workers' lists of API servers, the PersistentVolumes of the removed
// nodes (volumes/prune: unbound ones deleted, bound ones reported) and the
// addons' values (the node-exporters and etcd members monitoring scrapes).
var afterRemoval = []string{"preflight/", "pki/recover", "workers/apiserver-proxy", lvm.PruneStep, "addons/"}

// RemoveNodeGraph is remove-node's graph: on the first control plane left,
// etcd's quorum checked (refused before any change when removal would
// lose it), each node cordoned and drained, the workers' API proxy lists
// updated, each etcd member removed one at a time, the Node objects
// deleted, then their PersistentVolumes and the addons' values; on each
// removed host, unless o.Unreachable, kubeadm reset, the etcd member's
// files, the network's chains and CNI state, node-exporter and metalk8s's
// state deleted, and with WipeVolumes its logical volumes. Every step
// checks first, so a re-run resumes. skipped lists the host-side steps
// o.Unreachable leaves out. Errors: an unknown host, removing every
// control plane or etcd member, WipeVolumes of a host not removed or with
// Unreachable, no bundle.
func RemoveNodeGraph(cl *inventory.Cluster, bundleDir string, o RemoveOptions) (g *steps.Graph, skipped []string, err error) {
	removing, err := removedNodes(cl, o)
	if err != nil {
		return nil, nil, &InputError{err}
	}
	if bundleDir == "" {
		return nil, nil, inputErrorf("remove-node: no bundle: give the one the cluster was made with (--bundle DIR or metalk8s_bundle in %s)", cl.Inventory.Path)
	}
	names := map[string]bool{}
	for _, n := range removing {
		names[n.Name] = true
	}
	after := cl.Without(names)
	base, err := Graph(after, bundleDir)
	if err != nil {
		return nil, nil, err
	}
	first := after.ControlPlane[0].Name
	art := ArtifactsDir(cl)
	var cps []string
	for _, n := range after.ControlPlane {
		cps = append(cps, n.Name)
	}
	connect := func(ctx context.Context) (*kube.Client, error) {
		return kube.FromRun(ctx, kube.AdminConfPath(art), cps)
	}

	kept := map[string]*steps.Step{}
	for _, s := range base.Steps {
		if kindIn(s.ID, afterRemoval) {
			kept[s.ID] = s
		}
	}
	recoverID := steps.ID("pki/recover", first)
	var out, quorums, drains, members, deletes []*steps.Step
	prev := []string{recoverID}
	for _, n := range removing {
		if !n.Etcd {
			continue
		}
		q, m := etcd.RemovalSteps(filepath.Join(art, "pki", "etcd"), after.Etcd, n, o.Unreachable, []string{recoverID})
		m.Deps = append(m.Deps, prev...)
		prev = []string{m.ID}
		quorums, members = append(quorums, q), append(members, m)
	}
	for _, n := range removing {
		if !n.ControlPlane && !n.Worker {
			continue
		}
		pods := lvm.LocalVolumesStep(first, connect, n.Name, ids(quorums))
		d, del := kubeadm.RemovalSteps(first, connect, n.Name, o.Drain, []string{pods.ID}, nil)
		out = append(out, pods)
		drains, deletes = append(drains, d), append(deletes, del)
	}
	// The workers' proxies drop the removed API servers once those are
	// drained; the members go after that; the Nodes after the members.
	for _, m := range members {
		m.Deps = append(m.Deps, ids(drains)...)
	}
	for _, del := range deletes {
		del.Deps = append(del.Deps, ids(members)...)
	}
	for _, s := range base.Steps {
		s = kept[s.ID]
		if s == nil {
			continue
		}
		c := *s
		c.Phase = "remove"
		c.Deps = nil
		for _, d := range s.Deps {
			if kept[d] != nil {
				c.Deps = append(c.Deps, d)
			}
		}
		switch {
		case strings.HasPrefix(s.ID, "workers/apiserver-proxy@"):
			c.Deps = append(c.Deps, ids(drains)...)
			for _, m := range members {
				m.Deps = append(m.Deps, c.ID)
			}
		case kindIn(s.ID, []string{lvm.PruneStep, "addons/"}):
			c.Deps = append(c.Deps, ids(deletes)...)
			c.Deps = append(c.Deps, ids(members)...)
		}
		out = append(out, &c)
	}
	out = append(append(append(append(out, quorums...), drains...), members...), deletes...)
	wipe := map[string]bool{}
	for _, w := range o.WipeVolumes {
		wipe[w] = true
	}
	for _, n := range removing {
		host := hostSteps(n, wipe[n.Name], append(ids(deletes), ids(members)...))
		if o.Unreachable {
			var names []string
			for _, s := range host {
				names = append(names, s.Name())
			}
			skipped = append(skipped, fmt.Sprintf("%s: %s (unreachable)", n.Name, strings.Join(names, ", ")))
			continue
		}
		out = append(out, host...)
	}
	g, err = steps.NewGraph(out)
	return g, skipped, err
}

// InputError is a run refused for what it was asked (bad names, a
// removal that would leave no control plane): nothing was changed.
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

func inputErrorf(format string, args ...any) error {
	return &InputError{fmt.Errorf(format, args...)}
}

// hostSteps are the steps on a removed host n, after the cluster-side
// ones (deps): kubeadm reset and the network's cleanup (Kubernetes
// nodes), the etcd member's files (members), node-exporter and metalk8s's
// state, and the volumes when wipe.
func hostSteps(n *inventory.Node, wipe bool, deps []string) []*steps.Step {
	var out []*steps.Step
	last := deps
	if n.ControlPlane || n.Worker {
		r := kubeadm.ResetStep(n.Name, deps)
		out = append(out, r, network.ResetStep(n.Name, []string{r.ID}))
		last = []string{r.ID}
	}
	if n.Etcd {
		e := etcd.ResetStep(n, deps)
		out = append(out, e)
		last = append(last, e.ID)
	}
	nr := node.ResetStep(n.Name, last)
	out = append(out, nr)
	if wipe {
		out = append(out, lvm.WipeStep(n, []string{nr.ID}))
	}
	return out
}

// removedNodes checks o against cl: known hosts, a control plane and an
// etcd member left, --wipe-volumes on removed, reachable hosts.
func removedNodes(cl *inventory.Cluster, o RemoveOptions) ([]*inventory.Node, error) {
	if len(o.Nodes) == 0 {
		return nil, fmt.Errorf("remove-node: name the hosts to remove (inventory names)")
	}
	var out []*inventory.Node
	var unknown []string
	seen := map[string]bool{}
	for _, name := range o.Nodes {
		n := cl.Node(name)
		switch {
		case n == nil:
			unknown = append(unknown, name)
		case !seen[name]:
			out = append(out, n)
		}
		seen[name] = true
	}
	if len(unknown) > 0 {
		var names []string
		for _, n := range cl.Nodes {
			names = append(names, n.Name)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("remove-node: %s not in the inventory %s (its hosts: %s): keep a host in the inventory until it is removed",
			strings.Join(unknown, ", "), cl.Inventory.Path, strings.Join(names, ", "))
	}
	after := cl.Without(seen)
	if len(after.ControlPlane) == 0 {
		return nil, fmt.Errorf("remove-node: refused: %s would remove the last control plane (use reset to tear the cluster down)", strings.Join(o.Nodes, ", "))
	}
	if len(after.Etcd) == 0 {
		return nil, fmt.Errorf("remove-node: refused: %s would remove the last etcd member and the cluster's data (use reset to tear the cluster down)", strings.Join(o.Nodes, ", "))
	}
	for _, w := range o.WipeVolumes {
		switch {
		case !seen[w]:
			return nil, fmt.Errorf("remove-node: --wipe-volumes %s: not a host being removed (%s)", w, strings.Join(o.Nodes, ", "))
		case o.Unreachable:
			return nil, fmt.Errorf("remove-node: --wipe-volumes %s: the host is unreachable (--unreachable), its volumes cannot be wiped", w)
		}
	}
	return out, nil
}

// kindIn says whether the step id's kind is one of kinds, or in a phase
// prefix ("addons/") of them.
func kindIn(id string, kinds []string) bool {
	kind, _, _ := strings.Cut(id, "@")
	for _, c := range kinds {
		if kind == c || strings.HasSuffix(c, "/") && strings.HasPrefix(kind, c) {
			return true
		}
	}
	return false
}

func ids(ss []*steps.Step) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.ID
	}
	return out
}

// ResetOptions are reset's settings.
type ResetOptions struct {
	// WipeVolumes names the hosts whose LVM volumes (the inventory's) are
	// deleted with their data; the others' are kept.
	WipeVolumes []string
}

// ResetGraph tears the whole cluster down, every host in parallel, the
// scoped way remove-node resets a removed host (hostSteps): kubeadm reset,
// the etcd member's files and data, Kubernetes' and the pod network's
// chains and CNI state, node-exporter and metalk8s's state; the LVM
// volumes and their data stay unless WipeVolumes names the host. A
// WipeVolumes name not in the inventory is an InputError.
func ResetGraph(cl *inventory.Cluster, o ResetOptions) (*steps.Graph, error) {
	wipe := map[string]bool{}
	for _, w := range o.WipeVolumes {
		if cl.Node(w) == nil {
			return nil, inputErrorf("reset: --wipe-volumes %s: not a host of %s", w, cl.Inventory.Path)
		}
		wipe[w] = true
	}
	var out []*steps.Step
	for _, n := range cl.Nodes {
		out = append(out, hostSteps(n, wipe[n.Name], nil)...)
	}
	return steps.NewGraph(out)
}
