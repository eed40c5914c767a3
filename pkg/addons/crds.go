package addons

import (
	"bytes"
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/metalk8s/metalk8s/pkg/kube"
)

// An addon's CustomResourceDefinitions are applied by metalk8s, one at a
// time, before its Helm release, and are not part of the release. Why:
// the apiserver compiles a CRD's validation rules on every create and
// update, and caps each write at 34 s (k8s.io/apiserver's
// requestTimeoutUpperBound). Helm creates all objects of a kind at once
// and, on every install or upgrade, applies every CRD of the release
// again: on the lab's loaded control plane the Gateway API's CRDs timed
// out there, run after run. kube.Client.Apply sends one at a time, and
// none at all for a CRD that is as it last applied it (its hash
// annotation), so a re-run costs one List.
//
// They are kept when the addon is disabled or its chart drops one (as
// Helm does with a chart's crds/ directory): deleting a CRD deletes every
// object of its kind. Each carries helm.sh/resource-policy: keep, so that
// Helm, upgrading a release whose earlier revision held it (metalk8s
// before this change, or a rollback), leaves it in place.

// crdResource is the API's CustomResourceDefinitions.
var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// isCRD says whether o is a CustomResourceDefinition.
func isCRD(o *unstructured.Unstructured) bool {
	return o.GroupVersionKind().GroupKind() == schema.GroupKind{Group: crdResource.Group, Kind: "CustomResourceDefinition"}
}

// splitCRDs returns objs' CustomResourceDefinitions, as metalk8s applies
// them (annotated helm.sh/resource-policy: keep), and the other objects,
// each in objs' order. objs are not modified.
func splitCRDs(objs []*unstructured.Unstructured) (crds, rest []*unstructured.Unstructured) {
	for _, o := range objs {
		if !isCRD(o) {
			rest = append(rest, o)
			continue
		}
		k := o.DeepCopy()
		annotate(k, "helm.sh/resource-policy", "keep")
		crds = append(crds, k)
	}
	return crds, rest
}

// planCRDs is what applying crds would change, one line each: a CRD not
// there yet is "+ create" without asking the API (a dry run compiles its
// validation rules as a create does); one that is, as kube.Client.Apply
// dry-runs it (nothing when it is as last applied).
func planCRDs(ctx context.Context, c *kube.Client, crds []*unstructured.Unstructured) ([]string, error) {
	var lines []string
	for _, o := range crds {
		live, err := c.Get(ctx, crdResource, "", o.GetName())
		if err != nil {
			return nil, err
		}
		if live == nil {
			lines = append(lines, "+ create "+ref(o))
			continue
		}
		l, err := c.Apply(ctx, []*unstructured.Unstructured{o}, true)
		if err != nil {
			return nil, err
		}
		lines = append(lines, l...)
	}
	return lines, nil
}

// withoutCRDs is a Helm post-renderer that drops CustomResourceDefinitions
// from a release's objects: metalk8s applies them itself (above). The
// other objects go on unchanged, Helm's file-name annotations included.
type withoutCRDs struct{}

// Run implements helm.sh/helm/v4/pkg/postrenderer.PostRenderer.
func (withoutCRDs) Run(in *bytes.Buffer) (*bytes.Buffer, error) {
	objs, err := Objects(in.String())
	if err != nil {
		return nil, fmt.Errorf("post-render: %w", err)
	}
	out := new(bytes.Buffer)
	for _, o := range objs {
		if isCRD(o) {
			continue
		}
		b, err := yaml.Marshal(o.Object)
		if err != nil {
			return nil, fmt.Errorf("post-render: %s: %w", ref(o), err)
		}
		out.WriteString("---\n")
		out.Write(b)
	}
	return out, nil
}
