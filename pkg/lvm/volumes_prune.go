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
