package addons

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v4/pkg/action"
	helmkube "helm.sh/helm/v4/pkg/kube"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/metalk8s/metalk8s/pkg/kube"
	"github.com/metalk8s/metalk8s/pkg/kube/kubetest"
)

// TestCRDsOutsideHelm installs the Gateway API addon on a real
// kube-apiserver: its CRDs are applied by metalk8s and not in the
// release, a re-run sends none, a changed one is planned and applied
// alone, and a release installed with its CRDs inside (metalk8s before
// this) is upgraded without deleting them.
func TestCRDsOutsideHelm(t *testing.T) {
	s := kubetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	connect := connector(s)
	c, err := connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ads, err := Defaults(testParams(true))
	if err != nil {
		t.Fatal(err)
	}
	var a *Addon
	for _, x := range ads {
		if x.Name == "gateway-api" {
			a = x
		}
	}
	crds, rest := splitCRDs(a.Objects)
	if len(crds) < 5 || len(rest) == 0 {
		t.Fatalf("gateway-api: %d CRDs, %d other objects", len(crds), len(rest))
	}

	// The way metalk8s installed it before: Helm, CRDs in the release.
	cfg, err := helmConfig(c.RESTConfig(), a.Namespace, nil)
	if err != nil {
		t.Fatal(err)
	}
	i := action.NewInstall(cfg)
	i.ReleaseName, i.Namespace, i.CreateNamespace, i.ServerSideApply = a.Name, a.Namespace, true, true
	i.WaitStrategy = helmkube.HookOnlyStrategy
	if _, err := i.RunWithContext(ctx, a.Chart, a.Values); err != nil {
		t.Fatal(err)
	}

	r := &releaseStep{addon: a, wait: helmkube.HookOnlyStrategy, client: connect}
	ch, err := r.check(ctx, nil)
	if err != nil || !ch.Needed || !strings.HasPrefix(ch.Diff[0], "~ upgrade release kube-ingress/gateway-api") ||
		!contains(ch.Diff, "  ~ update CustomResourceDefinition "+crds[0].GetName()+": metadata.annotations.helm.sh/resource-policy (none) -> keep") {
		t.Errorf("plan over the old release: %q, %v", ch.Diff, err)
	}
	for _, l := range ch.Diff {
		if strings.Contains(l, "- delete") {
			t.Errorf("plan over the old release deletes: %q", l)
		}
	}
	if err := r.apply(ctx, nil); err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	_, st, err := r.read(ctx, nil)
	if err != nil || st.last == nil || st.last.Version != 2 {
		t.Fatalf("after the upgrade: %+v, %v", st, err)
	}
	if strings.Contains(st.last.Manifest, "CustomResourceDefinition") {
		t.Error("the release's manifest still holds CRDs")
	}
	if !sameObjects(st.last.Manifest, rest) {
		t.Error("the release's manifest is not the chart's other objects")
	}
	for _, o := range crds {
		live, err := c.Dynamic().Resource(crdResource).Get(ctx, o.GetName(), metav1.GetOptions{})
		if err != nil {
			t.Fatalf("CRD %s after the upgrade: %v", o.GetName(), err)
		}
		if !managedBy(live.GetManagedFields(), kube.FieldManager) || live.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
			t.Errorf("CRD %s: not applied by metalk8s, or not kept: %v", o.GetName(), live.GetAnnotations())
		}
	}
	if ch, err := r.check(ctx, nil); err != nil || ch.Needed {
		t.Errorf("check after the upgrade: %q, %v", ch.Diff, err)
	}

	// A CRD changed behind metalk8s's back: only it is planned and
	// applied, and Helm is not called (the revision stays).
	live, err := c.Dynamic().Resource(crdResource).Get(ctx, crds[1].GetName(), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	labels := live.GetLabels()
	labels["app.kubernetes.io/part-of"] = "edited"
	live.SetLabels(labels)
	if _, err := c.Dynamic().Resource(crdResource).Update(ctx, live, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	r2 := &releaseStep{addon: a, wait: helmkube.HookOnlyStrategy, client: connect} // a new run: a new client
	ch, err = r2.check(ctx, nil)
	want := []string{"~ apply the CustomResourceDefinitions of gateway-api (release kube-ingress/gateway-api is as wanted)",
		"  ~ update CustomResourceDefinition " + crds[1].GetName() + ": metadata.labels.app.kubernetes.io/part-of edited -> metalk8s"}
	if err != nil || !slices.Equal(ch.Diff, want) {
		t.Errorf("plan with one CRD edited: %q, %v; want %q", ch.Diff, err, want)
	}
	if err := r2.apply(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, st, err := r2.read(ctx, nil); err != nil || st.last.Version != 2 {
		t.Errorf("after applying the CRD: revision %d, %v; want 2 (no Helm upgrade)", st.last.Version, err)
	}
	if ch, err := (&releaseStep{addon: a, wait: helmkube.HookOnlyStrategy, client: connect}).check(ctx, nil); err != nil || ch.Needed {
		t.Errorf("check after applying the CRD: %q, %v", ch.Diff, err)
	}

	// Disabled: the release goes, the CRDs stay.
	a.Enabled, a.EnabledVar = false, "metalk8s_gateway_api_enabled"
	if err := r2.apply(ctx, nil); err != nil {
		t.Fatal(err)
	}
	for _, o := range crds {
		if _, err := c.Dynamic().Resource(crdResource).Get(ctx, o.GetName(), metav1.GetOptions{}); err != nil {
			t.Errorf("CRD %s after the uninstall: %v", o.GetName(), err)
		}
	}
}

// The post-renderer drops CRDs and nothing else.
func TestWithoutCRDs(t *testing.T) {
	a, err := renderAddon(t, "gateway-api", nil)
	if err != nil {
		t.Fatal(err)
	}
	var in strings.Builder
	for _, o := range a {
		b, _ := o.MarshalJSON()
		in.WriteString("---\n")
		in.Write(b)
		in.WriteString("\n")
	}
	out, err := withoutCRDs{}.Run(bytes.NewBufferString(in.String()))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Objects(out.String())
	_, rest := splitCRDs(a)
	if err != nil || len(got) != len(rest) || !sameObjects(out.String(), rest) {
		t.Errorf("post-rendered: %d objects, %v; want the %d that are not CRDs", len(got), err, len(rest))
	}
}
