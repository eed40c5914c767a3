package addons

import (
	"context"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v4/pkg/action"
	helmkube "helm.sh/helm/v4/pkg/kube"
	"helm.sh/helm/v4/pkg/release/common"
	rspb "helm.sh/helm/v4/pkg/release/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/metalk8s/metalk8s/assets"
	"github.com/metalk8s/metalk8s/pkg/kube"
	"github.com/metalk8s/metalk8s/pkg/kube/kubetest"
	"github.com/metalk8s/metalk8s/pkg/steps"
)

// connector connects to s as a release step does, a client per call (a
// step run gets its own); a plain TCP dialer stands in for the SSH
// connection.
func connector(s *kubetest.Server) func(context.Context) (*kube.Client, error) {
	return func(ctx context.Context) (*kube.Client, error) {
		return kube.Connect(ctx, s.Kubeconfig, []string{"cp1"}, func(string) (kube.Dialer, error) { return s.Dialer(), nil })
	}
}

// TestReleaseAPI drives one addon's step through install, no-op, upgrade
// and uninstall with the Helm SDK against a real kube-apiserver (kubetest;
// a plain TCP dialer stands in for the SSH connection, which the lab test
// exercises). kubetest runs no controllers or kubelets, so Helm does not
// wait for the pods (HookOnlyStrategy); the lab test waits.
func TestReleaseAPI(t *testing.T) {
	s := kubetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	connect := connector(s)
	ch, err := LoadChart(assets.Charts, "charts/metrics-server")
	if err != nil {
		t.Fatal(err)
	}
	a := &Addon{Name: "metrics-server", Namespace: "kube-system", Enabled: true, Chart: ch,
		Values: map[string]any{"image": image(testImage, true)}}
	if err := a.Render("v1.36.3"); err != nil {
		t.Fatal(err)
	}
	r := &releaseStep{addon: a, wait: helmkube.HookOnlyStrategy, client: connect}
	check := func(what string) steps.Change {
		t.Helper()
		c, err := r.check(ctx, nil)
		if err != nil {
			t.Fatalf("%s: check: %v", what, err)
		}
		t.Logf("%s: %q", what, c.Diff)
		return c
	}
	apply := func(what string) {
		t.Helper()
		if err := r.apply(ctx, nil); err != nil {
			t.Fatalf("%s: apply: %v", what, err)
		}
	}
	// last reads the release's newest revision as Helm stores it.
	last := func() (*action.Configuration, *rspb.Release) {
		t.Helper()
		c, err := connect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := helmConfig(c.RESTConfig(), a.Namespace, nil)
		if err != nil {
			t.Fatal(err)
		}
		rel, err := release(cfg.Releases.Last(a.Name))
		if err != nil || rel == nil {
			t.Fatalf("release: %v, %v", rel, err)
		}
		return cfg, rel
	}
	status := func() (int, common.Status, string) {
		t.Helper()
		_, rel := last()
		return rel.Version, rel.Info.Status, rel.ApplyMethod
	}

	// An object of the same name made outside Helm (an earlier manual
	// install): the check refuses, naming it, rather than planning an
	// install Helm would refuse.
	kc, err := connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "metrics-server", Namespace: "kube-system"}}
	if _, err := kc.Typed().CoreV1().ServiceAccounts("kube-system").Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.check(ctx, nil); err == nil || !strings.Contains(err.Error(), "ServiceAccount kube-system/metrics-server exists and is not release kube-system/metrics-server's") {
		t.Errorf("check with a foreign ServiceAccount: %v", err)
	}
	if err := kc.Typed().CoreV1().ServiceAccounts("kube-system").Delete(ctx, "metrics-server", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	// plan on an empty cluster: an install, every object created
	c := check("before")
	if !c.Needed || !strings.HasPrefix(c.Diff[0], "+ install release kube-system/metrics-server (chart metrics-server 0.1.0)") ||
		!contains(c.Diff, "  + create Deployment kube-system/metrics-server") || !contains(c.Diff, "  + create APIService v1beta1.metrics.k8s.io") {
		t.Errorf("plan before the install: %q", c.Diff)
	}
	apply("install")
	if v, st, m := status(); v != 1 || st != common.StatusDeployed || m != "ssa" {
		t.Errorf("after the install: revision %d, %s, apply method %q; want 1, deployed, ssa", v, st, m)
	}
	if c := check("after the install"); c.Needed {
		t.Errorf("the check after the install wants %q", c.Diff)
	}

	// Health: the release is deployed, its Deployment not ready (no
	// kubelet here) until its status says so.
	health := func() string {
		t.Helper()
		hs, err := Health(ctx, kc)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, h := range hs {
			out = append(out, h.Namespace+"/"+h.Name+": "+strings.Join(h.Problems, "; "))
		}
		return strings.Join(out, "\n")
	}
	if got := health(); got != "kube-system/metrics-server: Deployment kube-system/metrics-server: 0 of 1 replicas ready (0 updated)" {
		t.Errorf("health after the install: %q", got)
	}
	dep, err := kc.Typed().AppsV1().Deployments("kube-system").Get(ctx, "metrics-server", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dep.Status.Replicas, dep.Status.ReadyReplicas, dep.Status.UpdatedReplicas = 1, 1, 1
	if _, err := kc.Typed().AppsV1().Deployments("kube-system").UpdateStatus(ctx, dep, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	kc.Forget(appsv1.SchemeGroupVersion.WithResource("deployments"))
	if got := health(); got != "kube-system/metrics-server: " {
		t.Errorf("health with the Deployment ready: %q", got)
	}
	// The objects are Helm's, under the helm field manager; kube-system
	// is not relabelled (Helm creates only a missing namespace).
	ns, err := kc.Typed().CoreV1().Namespaces().Get(ctx, "kube-system", metav1.GetOptions{})
	if err != nil || managedBy(ns.ManagedFields, HelmFieldManager) {
		t.Errorf("kube-system: %v, managers %v", err, ns.ManagedFields)
	}
	d, err := kc.Typed().AppsV1().Deployments("kube-system").Get(ctx, "metrics-server", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Annotations["meta.helm.sh/release-name"] != "metrics-server" || !managedBy(d.ManagedFields, HelmFieldManager) {
		t.Errorf("the Deployment: annotations %v, managers %v", d.Annotations, d.ManagedFields)
	}

	// One value changed: an upgrade, naming the field.
	a.Values = merge(a.Values, map[string]any{"replicas": 2})
	if err := a.Render("v1.36.3"); err != nil {
		t.Fatal(err)
	}
	c = check("replicas 2")
	if !c.Needed || !strings.HasPrefix(c.Diff[0], "~ upgrade release kube-system/metrics-server from revision 1") ||
		!contains(c.Diff, "  ~ update Deployment kube-system/metrics-server: spec.replicas 1 -> 2") || len(c.Diff) != 2 {
		t.Errorf("plan with replicas 2: %q", c.Diff)
	}
	apply("upgrade")
	if v, st, _ := status(); v != 2 || st != common.StatusDeployed {
		t.Errorf("after the upgrade: revision %d, %s", v, st)
	}
	if c := check("after the upgrade"); c.Needed {
		t.Errorf("the check after the upgrade wants %q", c.Diff)
	}

	// An interrupted upgrade (pending-upgrade, as after a killed run):
	// the check says so, and up rolls back then upgrades.
	cfg, rel := last()
	pending, info := *rel, *rel.Info
	info.Status = common.StatusPendingUpgrade
	pending.Info, pending.Version = &info, rel.Version+1
	if err := cfg.Releases.Create(&pending); err != nil {
		t.Fatal(err)
	}
	c = check("pending-upgrade")
	if !c.Needed || !strings.Contains(c.Diff[0], "from revision 2 (revision 3 is pending-upgrade)") {
		t.Errorf("plan after an interrupted upgrade: %q", c.Diff)
	}
	apply("after pending-upgrade")
	if v, st, _ := status(); st != common.StatusDeployed || v < 4 {
		t.Errorf("after recovering: revision %d, %s", v, st)
	}
	if c := check("recovered"); c.Needed {
		t.Errorf("the check after recovering wants %q", c.Diff)
	}

	// Disabled: uninstalled, and nothing left to do.
	a.Enabled, a.EnabledVar = false, "metrics_server_enabled"
	c = check("disabled")
	if !c.Needed || !strings.HasPrefix(c.Diff[0], "- uninstall release kube-system/metrics-server") {
		t.Errorf("plan with the addon disabled: %q", c.Diff)
	}
	apply("uninstall")
	if c := check("after the uninstall"); c.Needed || c.Note != "disabled: "+a.EnabledVar+" is false, no release" {
		t.Errorf("the check after the uninstall wants %q, says %q", c.Diff, c.Note)
	}
	if _, err := kc.Typed().AppsV1().Deployments("kube-system").Get(ctx, "metrics-server", metav1.GetOptions{}); err == nil {
		t.Error("the Deployment is still there after the uninstall")
	}
	l := action.NewList(cfg)
	l.All = true
	if rels, err := l.Run(); err != nil || len(rels) != 0 {
		t.Errorf("helm list after the uninstall: %v, %v", rels, err)
	}
}

// Every chart's objects, rendered with metalk8s's values, pass a real
// kube-apiserver's validation as Helm would apply them (a server-side
// dry run): Headlamp's included, whose image the lab cannot run.
func TestChartsServerDryRun(t *testing.T) {
	s := kubetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := kube.Connect(ctx, s.Kubeconfig, []string{"cp1"}, func(string) (kube.Dialer, error) { return s.Dialer(), nil })
	if err != nil {
		t.Fatal(err)
	}
	ads, err := Defaults(testParams(true))
	if err != nil {
		t.Fatal(err)
	}
	// Before the CRDs, plan reports a kind the API does not serve yet as
	// created, saying so (its CRD comes from an earlier release).
	for _, a := range ads {
		if a.Name != "traefik" {
			continue
		}
		o := find(t, a.Objects, "GatewayClass", "traefik")
		line, live, err := c.DryRun(ctx, helmOwned(o, a), HelmFieldManager, a.Namespace)
		if want := "+ create GatewayClass traefik (gateway.networking.k8s.io/v1 is not served yet: its CRD comes first)"; err != nil || live != nil || line != want {
			t.Errorf("GatewayClass before its CRD: %q, %v; want %q", line, err, want)
		}
	}
	// The CRDs first, for real (the gateway-api release installs them
	// before traefik's uses them), so every other object is checked by
	// the API, none reported "not served yet".
	var crds []*unstructured.Unstructured
	for _, a := range ads {
		for _, o := range a.Objects {
			if o.GetKind() == "CustomResourceDefinition" {
				crds = append(crds, o)
			}
		}
	}
	if len(crds) == 0 {
		t.Fatal("no chart renders a CRD (the gateway-api chart's)")
	}
	// A CRD not there yet is planned without a dry run (too costly on a
	// loaded control plane): even a broken one is "+ create"; the real
	// create below judges them.
	broken := crds[0].DeepCopy()
	_ = unstructured.SetNestedField(broken.Object, "", "spec", "group")
	if line, live, err := c.DryRun(ctx, broken, HelmFieldManager, ""); err != nil || live != nil || line != "+ create CustomResourceDefinition "+broken.GetName() {
		t.Errorf("DryRun of an absent CRD: %q, %v, %v", line, live, err)
	}
	if _, err := c.Apply(ctx, crds, false); err != nil {
		t.Fatal(err)
	}
	for _, o := range crds {
		kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
		group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
		versions, _, _ := unstructured.NestedSlice(o.Object, "spec", "versions")
		version, _, _ := unstructured.NestedString(versions[0].(map[string]any), "name")
		for end := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			if _, _, err := c.Mapping(schema.GroupVersionKind{Group: group, Version: version, Kind: kind}); err == nil {
				break
			} else if time.Now().After(end) {
				t.Fatalf("CRD %s not served: %v", o.GetName(), err)
			}
		}
	}
	for _, a := range ads {
		if len(a.Objects) == 0 {
			t.Errorf("%s renders no object", a.Name)
		}
		for _, o := range a.Objects {
			if o.GetKind() == "CustomResourceDefinition" {
				continue
			}
			line, live, err := c.DryRun(ctx, helmOwned(o, a), HelmFieldManager, a.Namespace)
			if err != nil || live != nil || !strings.HasPrefix(line, "+ create ") || strings.Contains(line, "not served") {
				t.Errorf("%s: %s %s: %q, live %v, %v", a.Name, o.GetKind(), o.GetName(), line, live != nil, err)
			}
		}
	}
}

func contains(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

func managedBy(fields []metav1.ManagedFieldsEntry, manager string) bool {
	for _, f := range fields {
		if f.Manager == manager && f.Operation == metav1.ManagedFieldsOperationApply {
			return true
		}
	}
	return false
}
