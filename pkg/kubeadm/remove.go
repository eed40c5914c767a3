package kubeadm

import (
	"context"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/kubectl/pkg/drain"

	"github.com/metalk8s/metalk8s/pkg/kube"
	"github.com/metalk8s/metalk8s/pkg/ssh"
	"github.com/metalk8s/metalk8s/pkg/steps"
)

// Removal step names: the drain and the Node's deletion run on the first
// control plane left ("remove/drain/node3@node1"), the reset on the node.
const (
	DrainStepName  = "remove/drain"
	NodeStepName   = "remove/node"
	ResetStepName  = "remove/kubeadm-reset"
	DefaultDrainTO = 5 * time.Minute
)

// DrainOptions are remove-node's drain settings, kubectl drain's flags.
type DrainOptions struct {
	// Timeout bounds the whole drain (kubectl drain --timeout); 0 is
	// DefaultDrainTO.
	Timeout time.Duration
	// DisableEviction deletes pods instead of evicting them, so
	// PodDisruptionBudgets are not asked (kubectl drain --disable-eviction).
	DisableEviction bool
	// SkipWaitForDeleteTimeout: pods whose deletion began more than this
	// long ago (their deletionTimestamp, which includes their grace
	// period) no longer hold the drain, neither listed nor waited for
	// (kubectl drain --skip-wait-for-delete-timeout); for a node whose
	// kubelet or runtime cannot stop them. 0 waits for every pod. Whole
	// seconds; a fraction counts as a second more.
	SkipWaitForDeleteTimeout time.Duration
	// Unreachable: the node's kubelet cannot stop its pods, so the node
	// is only cordoned; deleting its Node object then lets the pod
	// garbage collector delete them and their controllers start them
	// elsewhere (Kubernetes' procedure for a lost node).
	Unreachable bool
}

// Connect opens the cluster's API client for a step.
type Connect func(ctx context.Context) (*kube.Client, error)

// RemovalSteps are remove-node's cluster-side Kubernetes steps for node,
// on host (a control plane left), after deps: the drain (cordon, then
// evict every pod but DaemonSets' and static ones, honouring
// PodDisruptionBudgets, k8s.io/kubectl/pkg/drain as kubectl drain
// --ignore-daemonsets --delete-emptydir-data --force) and the Node
// object's deletion after the drain and the nodeDeps. A Node already gone
// changes nothing.
func RemovalSteps(host string, connect Connect, node string, o DrainOptions, deps, nodeDeps []string) (drainStep, deleteStep *steps.Step) {
	if o.Timeout <= 0 {
		o.Timeout = DefaultDrainTO
	}
	get := func(ctx context.Context) (*kube.Client, *corev1.Node, error) {
		c, err := connect(ctx)
		if err != nil {
			return nil, nil, err
		}
		n, err := c.Typed().CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return c, nil, nil
		}
		if err != nil {
			return nil, nil, fmt.Errorf("Node %s: %w", node, err)
		}
		return c, n, nil
	}
	helper := func(ctx context.Context, c *kube.Client) *drain.Helper {
		return &drain.Helper{Ctx: ctx, Client: c.Typed(), Force: true, IgnoreAllDaemonSets: true,
			DeleteEmptyDirData: true, GracePeriodSeconds: -1, Timeout: o.Timeout,
			SkipWaitForDeleteTimeoutSeconds: int(math.Ceil(o.SkipWaitForDeleteTimeout.Seconds())),
			DisableEviction:                 o.DisableEviction, Out: io.Discard, ErrOut: io.Discard}
	}
	drainStep = &steps.Step{ID: steps.ID(DrainStepName+"/"+node, host), Host: host, Phase: "remove", Deps: deps,
		Inputs: o,
		Check: func(ctx context.Context, _ steps.Host) (steps.Change, error) {
			c, n, err := get(ctx)
			if err != nil || n == nil {
				return steps.NoChange, err
			}
			var ch steps.Change
			if !n.Spec.Unschedulable {
				ch.Diff = append(ch.Diff, "~ cordon Node "+node)
			}
			if o.Unreachable {
				ch.Diff = append(ch.Diff, "  (unreachable: its pods are deleted with the Node, not evicted)")
				ch.Needed = !n.Spec.Unschedulable
				return ch, nil
			}
			list, errs := helper(ctx, c).GetPodsForDeletion(node)
			if len(errs) > 0 {
				return steps.NoChange, fmt.Errorf("drain %s: %v", node, errs)
			}
			verb := "evict"
			if o.DisableEviction {
				verb = "delete"
			}
			for _, p := range list.Pods() {
				ch.Diff = append(ch.Diff, fmt.Sprintf("- %s pod %s/%s", verb, p.Namespace, p.Name))
			}
			if w := list.Warnings(); w != "" {
				ch.Warnings = append(ch.Warnings, w)
			}
			ch.Needed = len(ch.Diff) > 0
			return ch, nil
		},
		Apply: func(ctx context.Context, _ steps.Host) error {
			c, n, err := get(ctx)
			if err != nil || n == nil {
				return err
			}
			d := helper(ctx, c)
			if err := drain.RunCordonOrUncordon(d, n, true); err != nil {
				return fmt.Errorf("cordon %s: %w", node, err)
			}
			if o.Unreachable {
				return nil
			}
			if err := drain.RunNodeDrain(d, node); err != nil {
				return fmt.Errorf("drain %s (timeout %s; PodDisruptionBudgets are honoured, --disable-eviction bypasses them; "+
					"pods stuck terminating are waited for, --skip-wait-for-delete-timeout stops that): %w", node, o.Timeout, err)
			}
			return nil
		}}
	deleteStep = &steps.Step{ID: steps.ID(NodeStepName+"/"+node, host), Host: host, Phase: "remove",
		Deps: append([]string{drainStep.ID}, nodeDeps...),
		Check: func(ctx context.Context, _ steps.Host) (steps.Change, error) {
			_, n, err := get(ctx)
			if err != nil || n == nil {
				return steps.NoChange, err
			}
			ch := steps.Changes("- delete Node " + node)
			ch.Destructive = "remove Node " + node + " from the cluster"
			return ch, nil
		},
		Apply: func(ctx context.Context, _ steps.Host) error {
			c, n, err := get(ctx)
			if err != nil || n == nil {
				return err
			}
			err = c.Typed().CoreV1().Nodes().Delete(ctx, node, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &n.UID}})
			if err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("delete Node %s: %w", node, err)
			}
			return nil
		}}
	return drainStep, deleteStep
}

// resetLeftovers are what kubeadm reset leaves of a node's Kubernetes
// files (the API proxy's configuration, the kubelet's state). The
// kubelet's binary, unit and drop-in stay, as every prepared package.
var resetLeftovers = []string{"/etc/kubernetes", "/var/lib/kubelet"}

// ResetStep runs `kubeadm reset` on a removed node (its kubelet stopped
// and disabled, its containers removed, /etc/kubernetes's kubeconfigs,
// manifests and PKI and /var/lib/kubelet deleted), then deletes what
// reset leaves of resetLeftovers. kubeadm reset does not touch firewall
// rules or CNI state (network.ResetStep does, scoped). The etcd member
// is external: reset's remove-etcd-member phase is skipped.
func ResetStep(host string, deps []string) *steps.Step {
	return &steps.Step{ID: steps.ID(ResetStepName, host), Host: host, Phase: "remove", Deps: deps,
		Units: []string{"kubelet"},
		Check: func(ctx context.Context, h steps.Host) (steps.Change, error) {
			have, err := steps.Existing(ctx, h, append([]string{"/etc/systemd/system/multi-user.target.wants/kubelet.service"}, resetLeftovers...))
			if err != nil {
				return steps.NoChange, err
			}
			if len(have) == 0 {
				return steps.NoChange, nil
			}
			return steps.Changes("- kubeadm reset: stop and disable the kubelet, remove its containers, delete " + strings.Join(resetLeftovers, ", ")), nil
		},
		Apply: func(ctx context.Context, h steps.Host) error {
			_, err := h.Run(ctx, "if command -v kubeadm >/dev/null; then kubeadm reset --force --skip-phases=remove-etcd-member >/dev/null || exit 1; fi; "+
				"systemctl disable --now kubelet 2>/dev/null; rm -rf "+ssh.QuoteAll(resetLeftovers...))
			return err
		}}
}
