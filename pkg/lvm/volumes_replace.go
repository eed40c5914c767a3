package lvm

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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
// claimRef ("± replace" in the diff; the PV is created again once the API
// has removed it, within a minute), and kept with a warning naming its
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
		if ref := pv.Spec.ClaimRef; ref != nil && pv.DeletionTimestamp == nil {
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
		if pv.DeletionTimestamp == nil {
			uid, rv := pv.UID, pv.ResourceVersion
			if err := c.Delete(ctx, PVResource, pv.Name, "", &metav1.Preconditions{UID: &uid, ResourceVersion: &rv}); err != nil {
				return ch, fmt.Errorf("volumes: %w", err)
			}
		}
		if err := waitGone(ctx, c, pv.Name); err != nil {
			return ch, err
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

// goneWithin bounds the wait for a deleted PV to go: the pv-protection
// controller removes its finalizer once no pod uses it.
const goneWithin = time.Minute

// waitGone waits until the PV named is no longer in the API.
func waitGone(ctx context.Context, c *kube.Client, name string) error {
	ctx, cancel := context.WithTimeout(ctx, goneWithin)
	defer cancel()
	for {
		pv, err := c.Typed().CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return nil
		case ctx.Err() != nil:
			fin := ""
			if pv != nil {
				fin = fmt.Sprintf(" (finalizers %v)", pv.Finalizers)
			}
			return fmt.Errorf("volumes: PersistentVolume %s still there %s after its deletion%s", name, goneWithin, fin)
		case err != nil:
			return fmt.Errorf("volumes: PersistentVolume %s: %w", name, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
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
