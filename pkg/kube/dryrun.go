package kube

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var namespacesGVR = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}

// DryRun server-side applies obj with a dry run (DryRun: All) as field
// manager manager, conflicts forced, and returns its diff line against the
// live object, as Apply's: "+ create <ref>", "~ update <ref>: a.b x ->
// y", or "" when applying it would change nothing. A namespaced object
// without a namespace goes in defaultNamespace; one whose namespace does
// not exist yet is "+ create" without asking (the API refuses a dry run
// there), and so is one whose kind is not served yet (its CRD would come
// first: from an earlier release of the run, or the same one). A
// CustomResourceDefinition that does not exist yet is "+ create" without
// a dry run too: the charts' CRDs take no values and a real API server
// creates each of them in the tests (addons' TestChartsServerDryRun),
// while a dry run compiles every validation rule of theirs: on the lab's
// loaded control plane the Gateway API's took longer than the API
// server's 60 s request timeout four times running. It also
// returns the live object (nil when absent). The live
// objects are read afresh, not from the run's Lists:
// another client (Helm's) writes them. Nothing is stamped. The error
// names the object.
func (c *Client) DryRun(ctx context.Context, obj *unstructured.Unstructured, manager, defaultNamespace string) (string, *unstructured.Unstructured, error) {
	gvk := obj.GroupVersionKind()
	gvr, namespaced, err := c.Mapping(gvk)
	if meta.IsNoMatchError(err) {
		ref := objRef(gvk.Kind, obj.GetNamespace(), obj.GetName())
		return fmt.Sprintf("+ create %s (%s is not served yet: its CRD comes first)", ref, gvk.GroupVersion()), nil, nil
	}
	if err != nil {
		return "", nil, fmt.Errorf("dry run %s: %w", objRef(gvk.Kind, obj.GetNamespace(), obj.GetName()), err)
	}
	if namespaced && obj.GetNamespace() == "" {
		obj = obj.DeepCopy()
		obj.SetNamespace(defaultNamespace)
	}
	ns := ""
	if namespaced {
		ns = obj.GetNamespace()
	}
	ref := objRef(gvk.Kind, ns, obj.GetName())
	if ns != "" {
		_, err := c.dynamic.Resource(namespacesGVR).Get(ctx, ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return "+ create " + ref, nil, nil
		}
		if err != nil {
			return "", nil, fmt.Errorf("kube: dry run %s: namespace %s through %s: %w", ref, ns, c.Host(), err)
		}
	}
	live, err := c.dynamic.Resource(gvr).Namespace(ns).Get(ctx, obj.GetName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		live, err = nil, nil
	}
	if err != nil {
		return "", nil, fmt.Errorf("kube: dry run %s: get through %s: %w", ref, c.Host(), err)
	}
	if live == nil && gvk.Group == "apiextensions.k8s.io" && gvk.Kind == "CustomResourceDefinition" {
		return "+ create " + ref, nil, nil
	}
	opts := metav1.ApplyOptions{FieldManager: manager, Force: true, DryRun: []string{metav1.DryRunAll}}
	would, err := c.dynamic.Resource(gvr).Namespace(ns).Apply(ctx, obj.GetName(), obj, opts)
	if err != nil {
		return "", nil, fmt.Errorf("kube: apply (dry run) %s through %s: %w", ref, c.Host(), err)
	}
	return describe(ref, live, would), live, nil
}
