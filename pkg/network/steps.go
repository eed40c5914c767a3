package network

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/metalk8s/metalk8s/pkg/inventory"
	"github.com/metalk8s/metalk8s/pkg/kube"
	"github.com/metalk8s/metalk8s/pkg/ssh"
	"github.com/metalk8s/metalk8s/pkg/steps"
)

// NodesReadyStepID is done when every Kubernetes node of the inventory is
// Ready; it runs on the first control plane.
const NodesReadyStepID = "workers/nodes-ready"

var nodesGVR = schema.GroupVersionResource{Version: "v1", Resource: "nodes"}

// Steps apply the pod network's objects once the API answers, write each
// node's CNI configuration from its podCIDR once it is joined, and wait
// for every node to be Ready. joined maps each Kubernetes node to the ID
// of the step that joins it; art is the inventory's artifacts directory.
func Steps(cl *inventory.Cluster, art string, p Params, joined map[string]string) ([]*steps.Step, error) {
	objs, err := Objects(p)
	if err != nil {
		return nil, err
	}
	var cps []string
	for _, n := range cl.ControlPlane {
		cps = append(cps, n.Name)
	}
	first := cps[0]
	client := func(ctx context.Context) (*kube.Client, error) {
		return kube.FromRun(ctx, kube.AdminConfPath(art), cps)
	}
	applyID := steps.ID("control-plane/pod-network", first)
	out := []*steps.Step{{ID: applyID, Host: first, Phase: "control-plane", Deps: []string{steps.ID(kube.ReadyStepID, first)},
		Inputs: objs,
		Check: func(ctx context.Context, h steps.Host) (steps.Change, error) {
			c, err := client(ctx)
			if err != nil {
				return steps.NoChange, err
			}
			diff, err := c.Apply(ctx, objs, true)
			return steps.Changes(diff...), err
		},
		Apply: func(ctx context.Context, h steps.Host) error {
			c, err := client(ctx)
			if err != nil {
				return err
			}
			_, err = c.Apply(ctx, objs, false)
			return err
		}}}
	var names, cniIDs []string
	for _, n := range cl.Nodes {
		joinID, ok := joined[n.Name]
		if !ok {
			continue
		}
		host := n.Name
		names = append(names, host)
		phase, _, _ := strings.Cut(joinID, "/")
		id := steps.ID(phase+"/cni", host)
		cniIDs = append(cniIDs, id)
		// want is the node's conflist, nil while the node has no podCIDR.
		want := func(ctx context.Context) ([]ssh.File, error) {
			c, err := client(ctx)
			if err != nil {
				return nil, err
			}
			cidr, err := podCIDR(ctx, c, host)
			if err != nil || cidr == "" {
				return nil, err
			}
			conf, err := CNIConfig(cidr, 0)
			if err != nil {
				return nil, fmt.Errorf("node %s: %w", host, err)
			}
			return []ssh.File{{Path: CNIConfPath, Data: conf, Mode: 0o644}}, nil
		}
		out = append(out, &steps.Step{ID: id, Host: host, Phase: phase, Deps: []string{joinID, steps.ID(kube.ReadyStepID, first)},
			Check: func(ctx context.Context, h steps.Host) (steps.Change, error) {
				files, err := want(ctx)
				if err != nil {
					return steps.NoChange, err
				}
				if files == nil {
					return steps.Changes(fmt.Sprintf("+ write %s (once node %s is registered with a podCIDR)", CNIConfPath, host)), nil
				}
				return steps.FilesChange(ctx, h, files)
			},
			Apply: func(ctx context.Context, h steps.Host) error {
				// A node registers a moment after its join returns, and
				// kube-controller-manager then gives it a podCIDR.
				var files []ssh.File
				err := steps.Poll(ctx, 5*time.Minute, 5*time.Second, func(ctx context.Context) error {
					var err error
					if files, err = want(ctx); err == nil && files == nil {
						return fmt.Errorf("node %s has no podCIDR (kube-controller-manager assigns it from kube_pods_subnet)", host)
					}
					return err
				})
				if err != nil {
					return err
				}
				_, err = steps.PutFiles(ctx, h, files)
				return err
			}})
	}
	ready := func(ctx context.Context) error {
		c, err := client(ctx)
		if err != nil {
			return err
		}
		notReady, err := notReadyNodes(ctx, c, names)
		if err != nil {
			return err
		}
		if len(notReady) > 0 {
			return fmt.Errorf("not Ready: %s", strings.Join(notReady, ", "))
		}
		return nil
	}
	out = append(out, &steps.Step{ID: steps.ID(NodesReadyStepID, first), Host: first, Phase: "workers",
		Deps: append([]string{applyID}, cniIDs...), Inputs: names,
		Check: func(ctx context.Context, h steps.Host) (steps.Change, error) {
			if err := ready(ctx); err != nil {
				return steps.Changes("~ wait for the nodes to be Ready (" + err.Error() + ")"), nil
			}
			return steps.NoChange, nil
		},
		Apply: func(ctx context.Context, h steps.Host) error {
			return steps.Poll(ctx, 10*time.Minute, 5*time.Second, ready)
		}})
	return out, nil
}

// podCIDR is the node's spec.podCIDR, from the run's one list of nodes
// (re-listed while the controller manager has not assigned one yet); ""
// while the node is not registered or has none.
func podCIDR(ctx context.Context, c *kube.Client, name string) (string, error) {
	n, err := node(ctx, c, name)
	if err == nil && (n == nil || n.Spec.PodCIDR == "") {
		c.Forget(nodesGVR)
		n, err = node(ctx, c, name)
	}
	if err != nil || n == nil {
		return "", err
	}
	return n.Spec.PodCIDR, nil
}

func node(ctx context.Context, c *kube.Client, name string) (*corev1.Node, error) {
	list, err := c.List(ctx, nodesGVR)
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	for _, u := range list {
		if u.GetName() != name {
			continue
		}
		var n corev1.Node
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &n); err != nil {
			return nil, fmt.Errorf("node %s: %w", name, err)
		}
		return &n, nil
	}
	return nil, nil
}

// notReadyNodes lists the names (sorted) that are not registered or not
// Ready, from a fresh list of nodes.
func notReadyNodes(ctx context.Context, c *kube.Client, names []string) ([]string, error) {
	c.Forget(nodesGVR)
	var out []string
	for _, name := range names {
		n, err := node(ctx, c, name)
		if err != nil {
			return nil, err
		}
		if n == nil || !kube.NodeReady(n) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out, nil
}
