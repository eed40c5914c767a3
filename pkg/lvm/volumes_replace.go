package lvm

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/metalk8s/metalk8s/pkg/kube"
	"github.com/metalk8s/metalk8s/pkg/steps"
)

// ApplyPVs server-side applies a node's PersistentVolumes. The API never
// lets a PV's volume source change (spec.local: path and fsType), and a
// volume reformatted with force: true gets a new filesystem UUID, so a new
// mount path: such a PV is deleted and created again when it has no
// claimRef ("± replace" in the diff), and kept with a warning naming its
// claim otherwise. Other changes are applied in place (kube.Client.Apply).
func ApplyPVs(ctx context.Context, c *kube.Client, objs []*unstructured.Unstructured, dryRun bool) (steps.Change, error) {
	var ch steps.Change
	var inPlace, recreate []*unstructured.Unstructured
	for _, obj := range objs {
		live, err := c.Get(ctx, PVResource, "", obj.GetName())
		if err != nil {
			return ch, err
		}
		moved := sourceChange(live, obj)
		if moved == "" {
			inPlace = append(inPlace, obj)
			continue
		}
		var pv corev1.PersistentVolume
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(live.Object, &pv); err != nil {
			return ch, fmt.Errorf("PersistentVolume %s: %w", live.GetName(), err)
		}
		if ref := pv.Spec.ClaimRef; ref != nil {
			ch.Warnings = append(ch.Warnings, fmt.Sprintf(
				"PersistentVolume %s has claim %s/%s but its volume changed (%s): kept; delete the claim and the PV once their data is no longer needed",
				pv.Name, ref.Namespace, ref.Name, moved))
			continue
		}
		ch.Diff = append(ch.Diff, fmt.Sprintf("± replace PersistentVolume %s: %s (no claim: deleted and created again)", pv.Name, moved))
		recreate = append(recreate, obj)
		if dryRun {
			continue
		}
		uid, rv := pv.UID, pv.ResourceVersion
		if err := c.Delete(ctx, PVResource, pv.Name, "", &metav1.Preconditions{UID: &uid, ResourceVersion: &rv}); err != nil {
			return ch, fmt.Errorf("volumes: %w", err)
		}
	}
	if !dryRun {
		inPlace = append(inPlace, recreate...)
	}
	diff, err := c.Apply(ctx, inPlace, dryRun)
	if dryRun || err != nil {
		ch.Diff = append(ch.Diff, diff...)
	}
	ch.Needed = len(ch.Diff) > 0
	return ch, err
}

// sourceChange describes how want's spec.local differs from live's, or "".
func sourceChange(live, want *unstructured.Unstructured) string {
	if live == nil {
		return ""
	}
	have, _, _ := unstructured.NestedMap(live.Object, "spec", "local")
	next, _, _ := unstructured.NestedMap(want.Object, "spec", "local")
	d := kube.Compare(map[string]any{"spec": map[string]any{"local": have}}, map[string]any{"spec": map[string]any{"local": next}})
	return strings.Join(d, ", ")
}
