package kube

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// listing is one kind's cached List; done closes once items or err is set.
type listing struct {
	done  chan struct{}
	items []unstructured.Unstructured
	err   error
}

// listPage is how many objects one List request asks for.
const listPage = 500

// List returns every object of a kind, cluster-wide (all namespaces). The
// first caller of a run asks the API (in pages of 500); later and
// concurrent callers share that answer until an Apply or Delete of the
// same kind through this client drops it. A failed List is not kept.
// Callers must not modify the items.
func (c *Client) List(ctx context.Context, gvr schema.GroupVersionResource) ([]unstructured.Unstructured, error) {
	c.mu.Lock()
	l, ok := c.lists[gvr]
	if !ok {
		l = &listing{done: make(chan struct{})}
		c.lists[gvr] = l
	}
	c.mu.Unlock()
	if ok {
		select {
		case <-l.done:
			return l.items, l.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	l.items, l.err = c.listAll(ctx, gvr)
	if l.err != nil {
		c.invalidate(gvr, l)
	}
	close(l.done)
	return l.items, l.err
}

func (c *Client) listAll(ctx context.Context, gvr schema.GroupVersionResource) ([]unstructured.Unstructured, error) {
	var out []unstructured.Unstructured
	opts := metav1.ListOptions{Limit: listPage}
	for {
		page, err := c.dynamic.Resource(gvr).List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("kube: list %s (through %s): %w", gvr.Resource, c.Host(), err)
		}
		out = append(out, page.Items...)
		if opts.Continue = page.GetContinue(); opts.Continue == "" {
			return out, nil
		}
	}
}

// invalidate drops a kind's cached List (only l, when l is not nil: a
// newer listing stays).
func (c *Client) invalidate(gvr schema.GroupVersionResource, l *listing) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.lists[gvr]; ok && (l == nil || cur == l) {
		delete(c.lists, gvr)
	}
}

// Get returns one object from the kind's cached List, or nil when absent.
func (c *Client) Get(ctx context.Context, gvr schema.GroupVersionResource, namespace, name string) (*unstructured.Unstructured, error) {
	items, err := c.List(ctx, gvr)
	if err != nil {
		return nil, err
	}
	for i := range items {
		if items[i].GetName() == name && items[i].GetNamespace() == namespace {
			return &items[i], nil
		}
	}
	return nil, nil
}

// Mapping returns the resource of an object's kind and whether it is
// namespaced, from the API's discovery (asked once per client, on first
// use).
func (c *Client) Mapping(gvk schema.GroupVersionKind) (schema.GroupVersionResource, bool, error) {
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		c.mapper.Reset() // a CRD applied during the run: ask discovery again
		m, err = c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return schema.GroupVersionResource{}, false, fmt.Errorf("kube: kind %s: %w", gvk, err)
	}
	return m.Resource, m.Scope.Name() == meta.RESTScopeNameNamespace, nil
}

// Apply server-side applies objs in order (field manager "metalk8s",
// conflicts forced) and returns one diff line per object that changes:
// "+ create PersistentVolume node1-vg-lv01", "~ update StorageClass
// local-lvm: metadata.labels.a x -> y". With dryRun, each object is
// applied with a server-side dry run (DryRun: All) and compared with the
// live object (from the cached List) ignoring managedFields,
// resourceVersion, generation, uid, timestamps and status. Otherwise an
// object that exists is dry-run and compared the same way and applied
// only if it differs; a new one is applied at once (the step's Check made
// the dry run); either way the API's answer goes into its kind's cached
// List in place of the old version. Each applied object carries
// AppliedAnnotation, a hash of what was applied: when the live object has
// the same hash and still holds every field of obj, the dry run is
// skipped (so a no-op check costs one List per kind, not one request per
// object). Objects are not modified. The error names the object; objects
// before it have been applied.
//
// In a dry run, an object in a namespace the same objects would create is
// reported as created without asking the API (which refuses a dry run in
// a namespace that does not exist yet).
func (c *Client) Apply(ctx context.Context, objs []*unstructured.Unstructured, dryRun bool) ([]string, error) {
	var diff []string
	newNamespaces := map[string]bool{}
	for _, obj := range objs {
		if ns := obj.GetNamespace(); dryRun && ns != "" && newNamespaces[ns] {
			diff = append(diff, "+ create "+objRef(obj.GetKind(), ns, obj.GetName()))
			continue
		}
		line, err := c.apply(ctx, obj, dryRun)
		if err != nil {
			return diff, err
		}
		if line != "" {
			diff = append(diff, line)
			if dryRun && obj.GetKind() == "Namespace" && obj.GetAPIVersion() == "v1" && strings.HasPrefix(line, "+ ") {
				newNamespaces[obj.GetName()] = true
			}
		}
	}
	return diff, nil
}

func (c *Client) apply(ctx context.Context, obj *unstructured.Unstructured, dryRun bool) (string, error) {
	gvk := obj.GroupVersionKind()
	ref := objRef(gvk.Kind, obj.GetNamespace(), obj.GetName())
	gvr, namespaced, err := c.Mapping(gvk)
	if err != nil {
		return "", fmt.Errorf("apply %s: %w", ref, err)
	}
	if namespaced && obj.GetNamespace() == "" {
		return "", fmt.Errorf("kube: apply %s: a %s needs a namespace", ref, gvk.Kind)
	}
	live, err := c.Get(ctx, gvr, obj.GetNamespace(), obj.GetName())
	if err != nil {
		return "", fmt.Errorf("apply %s: %w", ref, err)
	}
	obj, sum, err := stamp(obj)
	if err != nil {
		return "", fmt.Errorf("kube: apply %s: %w", ref, err)
	}
	if live != nil && live.GetAnnotations()[AppliedAnnotation] == sum && contains(live.Object, obj.Object) {
		return "", nil // applied as it is now, and nobody changed it since
	}
	res := c.dynamic.Resource(gvr).Namespace(obj.GetNamespace())
	opts := metav1.ApplyOptions{FieldManager: FieldManager, Force: true}
	if dryRun || live != nil {
		// An object that exists is applied only if the dry run differs:
		// a forced apply takes over fields other managers hold.
		opts.DryRun = []string{metav1.DryRunAll}
		would, err := res.Apply(ctx, obj.GetName(), obj, opts)
		if err != nil {
			return "", fmt.Errorf("kube: apply (dry run) %s through %s: %w", ref, c.Host(), err)
		}
		line := describe(ref, live, would)
		if dryRun || line == "" {
			return line, nil
		}
		opts.DryRun = nil
	}
	// A new object needs no dry run first: the step's Check made one.
	applied, err := res.Apply(ctx, obj.GetName(), obj, opts)
	if err != nil {
		return "", fmt.Errorf("kube: apply %s through %s: %w", ref, c.Host(), err)
	}
	c.keep(gvr, applied)
	return describe(ref, live, applied), nil
}

// keep puts an object the API just returned into its kind's cached List,
// in place of its old version, so the checks after an Apply need no new
// List; a List still under way is dropped instead.
func (c *Client) keep(gvr schema.GroupVersionResource, obj *unstructured.Unstructured) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.lists[gvr]
	if !ok {
		return
	}
	select {
	case <-l.done:
	default:
		delete(c.lists, gvr)
		return
	}
	if l.err != nil {
		delete(c.lists, gvr)
		return
	}
	items := make([]unstructured.Unstructured, 0, len(l.items)+1)
	replaced := false
	for _, it := range l.items {
		if it.GetName() == obj.GetName() && it.GetNamespace() == obj.GetNamespace() {
			it, replaced = *obj, true
		}
		items = append(items, it)
	}
	if !replaced {
		items = append(items, *obj)
	}
	done := make(chan struct{})
	close(done)
	c.lists[gvr] = &listing{done: done, items: items}
}

// Delete removes one object (namespace "" for a cluster-scoped kind); an
// absent object is not an error. pre, when not nil, makes the API refuse
// (a Conflict error) if the object's UID or resourceVersion changed since
// it was read. The kind's cached List is dropped.
func (c *Client) Delete(ctx context.Context, gvr schema.GroupVersionResource, name, namespace string, pre *metav1.Preconditions) error {
	defer c.invalidate(gvr, nil)
	err := c.dynamic.Resource(gvr).Namespace(namespace).Delete(ctx, name, metav1.DeleteOptions{Preconditions: pre})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("kube: delete %s %s through %s: %w", gvr.Resource, objRef("", namespace, name), c.Host(), err)
	}
	return nil
}

// ToUnstructured converts a typed object (with its TypeMeta set, as
// pkg/lvm's builders do) for Apply.
func ToUnstructured(obj runtime.Object) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("kube: converting %T: %w", obj, err)
	}
	if md, ok := m["metadata"].(map[string]any); ok && md["creationTimestamp"] == nil {
		delete(md, "creationTimestamp")
	}
	if st, ok := m["status"].(map[string]any); ok && len(st) == 0 {
		delete(m, "status") // nothing metalk8s sets
	}
	u := &unstructured.Unstructured{Object: m}
	if u.GetKind() == "" || u.GetAPIVersion() == "" {
		return nil, fmt.Errorf("kube: %T %q has no apiVersion or kind", obj, u.GetName())
	}
	return u, nil
}

func objRef(kind, namespace, name string) string {
	s := name
	if namespace != "" {
		s = namespace + "/" + name
	}
	if kind != "" {
		s = kind + " " + s
	}
	return s
}
