package addons

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"time"

	"helm.sh/helm/v4/pkg/action"
	helmkube "helm.sh/helm/v4/pkg/kube"
	"helm.sh/helm/v4/pkg/release/common"
	rspb "helm.sh/helm/v4/pkg/release/v1"
	"helm.sh/helm/v4/pkg/storage/driver"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/metalk8s/metalk8s/pkg/inventory"
	"github.com/metalk8s/metalk8s/pkg/kube"
	"github.com/metalk8s/metalk8s/pkg/steps"
)

// WaitTimeout bounds each Helm operation's wait (install, upgrade,
// rollback, uninstall): its objects Ready (kstatus), or gone. An install
// or upgrade that fails or times out is rolled back (an install is
// uninstalled); recovering an interrupted release chains a rollback and
// an upgrade, each with its own wait.
const WaitTimeout = 10 * time.Minute

// apiRetry tries a release's step again while the API answers that it is
// overloaded or timed out: the addons come right after the nodes are
// Ready, when every system pod is starting (the lab's apiserver timed a
// dry run out then). 30 s, 1 min, 2 min apart.
var apiRetry = steps.Retry{Attempts: 4, Delay: 30 * time.Second, If: kube.Transient}

// MaxHistory is how many revisions of a release Helm keeps.
const MaxHistory = 10

// StepID is an addon's step, on the first control-plane host.
func StepID(name, firstControlPlane string) string {
	return steps.ID("addons/"+name, firstControlPlane)
}

// Steps returns one step per addon, on the first control-plane host, in
// the addons phase, each after deps (the nodes Ready) and after its
// Addon.After's step, if any: one addon that fails blocks only those that
// need it (a host runs its steps one at a time, in this order). art is the inventory's artifacts directory (admin.conf); each
// addon is installed as rendered (Addon.Render, done by FromInventory).
func Steps(cl *inventory.Cluster, art string, addons []*Addon, deps []string) []*steps.Step {
	var cps []string
	for _, n := range cl.ControlPlane {
		cps = append(cps, n.Name)
	}
	first := cps[0]
	var out []*steps.Step
	for _, a := range addons {
		r := &releaseStep{addon: a, wait: helmkube.StatusWatcherStrategy, client: func(ctx context.Context) (*kube.Client, error) {
			return kube.FromRun(ctx, kube.AdminConfPath(art), cps)
		}}
		d := append([]string(nil), deps...)
		if a.After != "" {
			d = append(d, StepID(a.After, first))
		}
		out = append(out, &steps.Step{ID: StepID(a.Name, first), Host: first, Phase: "addons", Deps: d,
			Inputs: r.inputs(), Check: r.check, Apply: r.apply, Retry: apiRetry})
	}
	return out
}

// releaseStep checks and applies one addon's release.
type releaseStep struct {
	addon  *Addon
	wait   helmkube.WaitStrategy // how Helm waits for the objects (tests: HookOnlyStrategy, no wait)
	client func(context.Context) (*kube.Client, error)
}

// inputs define the step for the journal: the chart (its files' hash),
// the values and whether it is enabled.
func (r *releaseStep) inputs() any {
	h := sha256.New()
	for _, f := range r.addon.Chart.Raw { // every file of the chart
		fmt.Fprintf(h, "%s\x00%d\x00", f.Name, len(f.Data))
		h.Write(f.Data)
	}
	return struct {
		Name, Namespace, Chart, KubeVersion string
		Enabled                             bool
		Values                              map[string]any
	}{r.addon.Name, r.addon.Namespace, hex.EncodeToString(h.Sum(nil)), r.addon.KubeVersion, r.addon.Enabled, r.addon.Values}
}

// state is what the check found.
type state struct {
	cfg      *action.Configuration
	last     *rspb.Release                // the newest revision, nil when none
	deployed *rspb.Release                // the newest deployed revision, nil when none
	want     []*unstructured.Unstructured // the release's objects, enabled (not its CRDs)
	crds     []*unstructured.Unstructured // the CRDs metalk8s applies first (splitCRDs)
}

// upToDate says whether the release is deployed as a wants it.
func (s *state) upToDate(a *Addon) bool {
	return s.last != nil && s.last.Info.Status == common.StatusDeployed && s.last.Chart != nil &&
		s.last.Chart.Metadata.Version == a.Chart.Metadata.Version && sameObjects(s.last.Manifest, s.want)
}

func (r *releaseStep) read(ctx context.Context, h steps.Host) (*kube.Client, *state, error) {
	c, err := r.client(ctx)
	if err != nil {
		return nil, nil, err
	}
	a := r.addon
	cfg, err := helmConfig(c.RESTConfig(), a.Namespace, logHandler(h))
	if err != nil {
		return nil, nil, fmt.Errorf("addon %s: %w", a.Name, err)
	}
	s := &state{cfg: cfg}
	if s.last, err = release(cfg.Releases.Last(a.Name)); err != nil {
		return nil, nil, fmt.Errorf("addon %s: release %s/%s: %w", a.Name, a.Namespace, a.Name, err)
	}
	if s.last != nil && s.last.Info.Status == common.StatusDeployed {
		s.deployed = s.last
	} else if s.last != nil {
		if s.deployed, err = release(cfg.Releases.Deployed(a.Name)); err != nil && !errors.Is(err, driver.ErrNoDeployedReleases) {
			return nil, nil, fmt.Errorf("addon %s: release %s/%s: %w", a.Name, a.Namespace, a.Name, err)
		}
	}
	if a.Enabled {
		s.crds, s.want = splitCRDs(a.Objects)
	}
	return c, s, nil
}

// release converts what Helm's storage returns; not found is nil.
func release(rel any, err error) (*rspb.Release, error) {
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	switch x := rel.(type) {
	case *rspb.Release:
		return x, nil
	case rspb.Release:
		return &x, nil
	}
	return nil, fmt.Errorf("unexpected release type %T", rel)
}

func (r *releaseStep) check(ctx context.Context, h steps.Host) (steps.Change, error) {
	ch, err := r.checkRelease(ctx, h)
	if err == nil && len(r.addon.Warnings) > 0 {
		ch.Warnings = append(append([]string(nil), r.addon.Warnings...), ch.Warnings...)
	}
	return ch, err
}

// checkRelease is check without the addon's warnings.
func (r *releaseStep) checkRelease(ctx context.Context, h steps.Host) (steps.Change, error) {
	c, s, err := r.read(ctx, h)
	if err != nil {
		return steps.NoChange, err
	}
	a := r.addon
	rel := a.Namespace + "/" + a.Name
	switch {
	case !a.Enabled && s.last == nil:
		return steps.Change{Note: fmt.Sprintf("disabled: %s is false, no release", a.EnabledVar)}, nil
	case !a.Enabled:
		return steps.Changes(fmt.Sprintf("- uninstall release %s (revision %d, %s; %s is false)",
			rel, s.last.Version, s.last.Info.Status, a.EnabledVar)), nil
	}
	crdLines, err := planCRDs(ctx, c, s.crds)
	if err != nil {
		return steps.NoChange, fmt.Errorf("addon %s: %w", a.Name, err)
	}
	chartDesc := fmt.Sprintf("chart %s %s", a.Chart.Name(), a.Chart.Metadata.Version)
	// Helm upgrades from the deployed revision: diff against it.
	base := s.deployed
	var head string
	upToDate := s.upToDate(a)
	switch {
	case upToDate && len(crdLines) == 0:
		return steps.NoChange, nil
	case upToDate:
		head = fmt.Sprintf("~ apply the CustomResourceDefinitions of %s (release %s is as wanted)", a.Name, rel)
	case s.last == nil:
		head = fmt.Sprintf("+ install release %s (%s)", rel, chartDesc)
	case s.deployed == nil:
		head = fmt.Sprintf("± reinstall release %s: no revision deployed, the newest (%d) is %s (%s)", rel, s.last.Version, s.last.Info.Status, chartDesc)
	case s.last != s.deployed:
		head = fmt.Sprintf("~ upgrade release %s from revision %d (revision %d is %s) (%s)", rel, s.deployed.Version, s.last.Version, s.last.Info.Status, chartDesc)
	default:
		head = fmt.Sprintf("~ upgrade release %s from revision %d (%s)", rel, s.last.Version, chartDesc)
	}
	diff := []string{head}
	for _, l := range crdLines {
		diff = append(diff, "  "+l)
	}
	if upToDate {
		return steps.Changes(diff...), nil
	}
	wanted := map[string]bool{}
	for _, o := range s.want {
		wanted[key(o)] = true
		line, live, err := c.DryRun(ctx, helmOwned(o, a), HelmFieldManager, a.Namespace)
		if err != nil {
			return steps.NoChange, fmt.Errorf("addon %s: %w", a.Name, err)
		}
		if live != nil && (live.GetAnnotations()["meta.helm.sh/release-name"] != a.Name ||
			live.GetAnnotations()["meta.helm.sh/release-namespace"] != a.Namespace) {
			owner := live.GetAnnotations()["meta.helm.sh/release-name"]
			return steps.NoChange, fmt.Errorf("addon %s: %s exists and is not release %s's (its annotation meta.helm.sh/release-name is %q): "+
				"Helm will not take it over; delete it (e.g. an earlier manual install), or disable the addon with %s: false",
				a.Name, ref(live), rel, owner, a.EnabledVar)
		}
		if line != "" {
			diff = append(diff, "  "+line)
		}
	}
	if base != nil {
		old, err := Objects(base.Manifest)
		if err != nil {
			return steps.NoChange, fmt.Errorf("addon %s: revision %d's manifest: %w", a.Name, base.Version, err)
		}
		for _, o := range old {
			if !wanted[key(o)] && !isCRD(o) { // a CRD is kept (crds.go)
				diff = append(diff, "  - delete "+ref(o))
			}
		}
	}
	return steps.Changes(diff...), nil
}

func (r *releaseStep) apply(ctx context.Context, h steps.Host) error {
	c, s, err := r.read(ctx, h)
	if err != nil {
		return err
	}
	a := r.addon
	if !a.Enabled {
		if s.last == nil {
			return nil
		}
		return r.uninstall(ctx, s.cfg)
	}
	if s.last != nil && s.deployed == nil {
		// Only failed or interrupted revisions: Helm upgrades from a
		// deployed one, so start over.
		if err := r.uninstall(ctx, s.cfg); err != nil {
			return err
		}
		s.last = nil
	}
	// The CRDs first, one at a time, by metalk8s (crds.go); an error
	// the API gave as overloaded or timed out is retried (apiRetry).
	if _, err := c.Apply(ctx, s.crds, false); err != nil {
		return fmt.Errorf("addon %s: %w", a.Name, err)
	}
	if s.upToDate(a) {
		return nil // only CRDs changed
	}
	if s.last == nil {
		i := action.NewInstall(s.cfg)
		i.ReleaseName, i.Namespace = a.Name, a.Namespace
		// Helm creates a namespace with a server-side apply that also
		// labels it: only when it is missing.
		if i.CreateNamespace, err = namespaceMissing(ctx, c, a.Namespace); err != nil {
			return fmt.Errorf("addon %s: %w", a.Name, err)
		}
		i.ServerSideApply, i.ForceConflicts = true, true
		i.WaitStrategy, i.Timeout, i.RollbackOnFailure = r.wait, WaitTimeout, r.rollback()
		i.Description, i.PostRenderer = "metalk8s up", withoutCRDs{}
		if _, err := i.RunWithContext(ctx, a.Chart, a.Values); err != nil {
			return helmFailed(ctx, fmt.Sprintf("addon %s: helm install %s/%s", a.Name, a.Namespace, a.Name), err)
		}
		return nil
	}
	if s.last.Info.Status.IsPending() {
		// An interrupted operation (metalk8s's lock keeps two runs
		// apart): back to the last deployed revision first.
		rb := action.NewRollback(s.cfg)
		rb.Version, rb.WaitStrategy, rb.Timeout = s.deployed.Version, r.wait, WaitTimeout
		rb.ServerSideApply, rb.ForceConflicts = "true", true
		if err := rb.Run(a.Name); err != nil {
			return helmFailed(ctx, fmt.Sprintf("addon %s: helm rollback %s/%s to revision %d after an interrupted %s",
				a.Name, a.Namespace, a.Name, s.deployed.Version, s.last.Info.Status), err)
		}
	}
	u := action.NewUpgrade(s.cfg)
	u.Namespace = a.Namespace
	u.ServerSideApply, u.ForceConflicts = "true", true
	u.WaitStrategy, u.Timeout, u.RollbackOnFailure = r.wait, WaitTimeout, r.rollback()
	u.MaxHistory, u.Description, u.PostRenderer = MaxHistory, "metalk8s up", withoutCRDs{}
	if _, err := u.RunWithContext(ctx, a.Name, a.Chart, a.Values); err != nil {
		return helmFailed(ctx, fmt.Sprintf("addon %s: helm upgrade %s/%s", a.Name, a.Namespace, a.Name), err)
	}
	return nil
}

// helmFailed is a Helm operation's failure, what it was doing first. The
// error is printed (%v), not wrapped: a wait that timed out joins
// context.DeadlineExceeded into it, and apiRetry must not repeat an
// operation that already waited 10 minutes and rolled back. Two causes
// are wrapped: the API server's answer that it was overloaded or timed
// out (kube.Overloaded: an object's apply refused before any wait, as
// the lab's busy apiserver did with the Gateway API's CRDs; Helm rolled
// back, so apiRetry tries again), and ctx's end (the run cancelled).
func helmFailed(ctx context.Context, what string, err error) error {
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("%s: %v (%w)", what, err, ctx.Err())
	case kube.Overloaded(err):
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: %v", what, err)
}

// namespaceMissing says whether namespace does not exist.
func namespaceMissing(ctx context.Context, c *kube.Client, namespace string) (bool, error) {
	_, err := c.Typed().CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("namespace %s: %w", namespace, err)
	}
	return false, nil
}

// rollback says whether a failed install or upgrade is rolled back: only
// when Helm waits, since without a wait it cannot see a failure (and the
// SDK would turn the wait on).
func (r *releaseStep) rollback() bool { return r.wait != helmkube.HookOnlyStrategy }

func (r *releaseStep) uninstall(ctx context.Context, cfg *action.Configuration) error {
	a := r.addon
	u := action.NewUninstall(cfg)
	u.WaitStrategy, u.Timeout, u.IgnoreNotFound = r.wait, WaitTimeout, true
	u.Description = "metalk8s up"
	if _, err := u.Run(a.Name); err != nil {
		return helmFailed(ctx, fmt.Sprintf("addon %s: helm uninstall %s/%s", a.Name, a.Namespace, a.Name), err)
	}
	return nil
}

// helmOwned is obj as Helm applies it for a's release: labelled
// app.kubernetes.io/managed-by Helm and annotated with the release's name
// and namespace (helm.sh/helm/v4 pkg/action/validate.go,
// setMetadataVisitor), so that a dry run as Helm's field manager does not
// read their absence as a change.
func helmOwned(obj *unstructured.Unstructured, a *Addon) *unstructured.Unstructured {
	o := obj.DeepCopy()
	labels := o.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels["app.kubernetes.io/managed-by"] = "Helm"
	o.SetLabels(labels)
	annotate(o, "meta.helm.sh/release-name", a.Name)
	annotate(o, "meta.helm.sh/release-namespace", a.Namespace)
	return o
}

// annotate sets one annotation of o.
func annotate(o *unstructured.Unstructured, key, value string) {
	ann := o.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[key] = value
	o.SetAnnotations(ann)
}

// sameObjects says whether a release's manifest holds the same objects
// as want.
func sameObjects(manifest string, want []*unstructured.Unstructured) bool {
	old, err := Objects(manifest)
	if err != nil || len(old) != len(want) {
		return false
	}
	have := map[string]map[string]any{}
	for _, o := range old {
		have[key(o)] = o.Object
	}
	for _, o := range want {
		if h, ok := have[key(o)]; !ok || !reflect.DeepEqual(h, o.Object) {
			return false
		}
	}
	return true
}

// key identifies an object as its manifest names it: group/kind,
// namespace and name.
func key(o *unstructured.Unstructured) string {
	return o.GroupVersionKind().GroupKind().String() + "\x00" + ref(o)
}

// varName is an addon's name in its variables: metrics-server ->
// metrics_server.
func varName(name string) string {
	out := []byte(name)
	for i, b := range out {
		if b == '-' {
			out[i] = '_'
		}
	}
	return string(out)
}
