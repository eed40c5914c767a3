package lvm

import (
	"context"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/metalk8s/metalk8s/pkg/kube"
	"github.com/metalk8s/metalk8s/pkg/steps"
)

// PVResource is the PersistentVolumes' API resource.
var PVResource = corev1.SchemeGroupVersion.WithResource("persistentvolumes")

// Prune finds metalk8s's PersistentVolumes (those labelled with LabelNode
// and LabelVG, and not being deleted) whose names are not in expected (the PVName of every
// volume of the inventory) and, unless dryRun, deletes those that are
// unbound: no spec.claimRef and phase Available, Pending or Failed. A PV
// with a claimRef (Bound, or Released: its claim is gone but the data was
// the claim's) is kept, with a warning naming it and its claim: the
// operator deletes it by hand. Deletes carry the UID and resourceVersion
// read, so a PV bound meanwhile is not deleted (the API answers Conflict).
// The diff has one "- delete PersistentVolume <name> (<phase>)" per PV.
func Prune(ctx context.Context, c *kube.Client, expected map[string]bool, dryRun bool) (steps.Change, error) {
	items, err := c.List(ctx, PVResource)
	if err != nil {
		return steps.NoChange, err
	}
	var stale []corev1.PersistentVolume
	for i := range items {
		l := items[i].GetLabels()
		if l[LabelNode] == "" || l[LabelVG] == "" || expected[items[i].GetName()] || items[i].GetDeletionTimestamp() != nil {
			continue
		}
		var pv corev1.PersistentVolume
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(items[i].Object, &pv); err != nil {
			return steps.NoChange, fmt.Errorf("PersistentVolume %s: %w", items[i].GetName(), err)
		}
		stale = append(stale, pv)
	}
	sort.Slice(stale, func(i, j int) bool { return stale[i].Name < stale[j].Name })

	var ch steps.Change
	for _, pv := range stale {
		phase := pv.Status.Phase
		if ref := pv.Spec.ClaimRef; ref != nil || phase == corev1.VolumeBound {
			claim := "(unknown claim)"
			if ref != nil {
				claim = ref.Namespace + "/" + ref.Name
			}
			ch.Warnings = append(ch.Warnings, fmt.Sprintf(
				"PersistentVolume %s (node %s, volume group %s) matches no volume of the inventory but has claim %s (%s): kept; delete it by hand once its data is no longer needed",
				pv.Name, pv.Labels[LabelNode], pv.Labels[LabelVG], claim, phaseWord(phase)))
			continue
		}
		ch.Diff = append(ch.Diff, fmt.Sprintf("- delete PersistentVolume %s (%s, not in the inventory)", pv.Name, phaseWord(phase)))
		if dryRun {
			continue
		}
		uid, rv := pv.UID, pv.ResourceVersion
		if err := c.Delete(ctx, PVResource, pv.Name, "", &metav1.Preconditions{UID: &uid, ResourceVersion: &rv}); err != nil {
			return ch, fmt.Errorf("volumes: %w", err)
		}
	}
	ch.Needed = len(ch.Diff) > 0
	return ch, nil
}

func phaseWord(p corev1.PersistentVolumePhase) string {
	if p == "" {
		return "no phase"
	}
	if p == corev1.VolumeBound {
		return "bound"
	}
	return string(p)
}

// LocalVolumesStepName is remove-node's check of what uses a node's
// local volumes.
const LocalVolumesStepName = "remove/local-volumes"

// LocalVolumesStep is a read-only step, on host, for remove-node: its
// warnings name each pod whose PersistentVolumeClaim is bound to one of
// node's local PersistentVolumes (labelled LabelNode): such a pod cannot
// move to another node, and stays Pending once node is gone. It changes
// nothing and refuses nothing.
func LocalVolumesStep(host string, connect func(context.Context) (*kube.Client, error), node string, deps []string) *steps.Step {
	return &steps.Step{ID: steps.ID(LocalVolumesStepName+"/"+node, host), Host: host, Phase: "remove", Deps: deps,
		Check: func(ctx context.Context, _ steps.Host) (steps.Change, error) {
			c, err := connect(ctx)
			if err != nil {
				return steps.NoChange, err
			}
			w, err := localVolumeUsers(ctx, c, node)
			return steps.Change{Warnings: w}, err
		}}
}

func localVolumeUsers(ctx context.Context, c *kube.Client, node string) ([]string, error) {
	pvs, err := c.Typed().CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{LabelSelector: LabelNode + "=" + node})
	if err != nil {
		return nil, fmt.Errorf("PersistentVolumes of %s: %w", node, err)
	}
	claims := map[string]string{} // namespace/claim -> PV
	for _, pv := range pvs.Items {
		if ref := pv.Spec.ClaimRef; ref != nil {
			claims[ref.Namespace+"/"+ref.Name] = pv.Name
		}
	}
	if len(claims) == 0 {
		return nil, nil
	}
	pods, err := c.Typed().CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("pods: %w", err)
	}
	var out []string
	for _, p := range pods.Items {
		for _, v := range p.Spec.Volumes {
			if v.PersistentVolumeClaim == nil {
				continue
			}
			claim := p.Namespace + "/" + v.PersistentVolumeClaim.ClaimName
			if pv, ok := claims[claim]; ok {
				out = append(out, fmt.Sprintf("pod %s/%s uses claim %s on %s's local volume %s: it cannot move to another node and stays Pending once %s is gone",
					p.Namespace, p.Name, claim, node, pv, node))
			}
		}
	}
	sort.Strings(out)
	return out, nil
}
