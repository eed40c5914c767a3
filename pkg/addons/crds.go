package addons

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/metalk8s/metalk8s/pkg/kube"
	"github.com/metalk8s/metalk8s/pkg/steps"
)

// crdResource is the API's CustomResourceDefinitions.
var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// crdSettle is how long createCRDs looks for a CRD whose create the API
// answered with a timeout: the apiserver may have stored it after all.
var crdSettle = 30 * time.Second

// createCRDs creates, one at a time and in the chart's order, the
// CustomResourceDefinitions among a's rendered objects that the cluster
// does not have yet, as Helm would apply them (server-side apply as
// HelmFieldManager, with Helm's ownership label and annotations:
// helmOwned). Helm's install or upgrade then adopts them
// (helm.sh/helm/v4 pkg/action, existingResourceConflict), and once it
// adopts anything it applies the release's objects one by one.
//
// Why: a fresh install has Helm create every object of a kind at once
// (pkg/kube batchPerform), and the apiserver compiles each CRD's
// validation rules on create. The Gateway API's eleven CRDs together
// outlasted the apiserver's 60 s request timeout, over and over, on the
// lab's loaded control plane; one at a time each gets the CPU.
//
// A create the API answers as timed out or overloaded is looked for
// again for crdSettle; if it is still absent the error is returned as is
// (kube.Transient: the step's retry tries again, keeping the CRDs made
// so far). res is the API's CRDs (through names the apiserver for
// errors). It returns the names created; each is logged on h's run log
// with how long it took.
func createCRDs(ctx context.Context, res dynamic.ResourceInterface, through string, a *Addon, h steps.Host) ([]string, error) {
	var made []string
	for _, o := range a.Objects {
		if o.GroupVersionKind().GroupKind() != (schema.GroupKind{Group: crdResource.Group, Kind: "CustomResourceDefinition"}) {
			continue
		}
		name := o.GetName()
		_, err := res.Get(ctx, name, metav1.GetOptions{})
		switch {
		case err == nil:
			continue
		case !apierrors.IsNotFound(err):
			return made, fmt.Errorf("addon %s: CustomResourceDefinition %s: %w", a.Name, name, err)
		}
		start := time.Now()
		_, err = res.Apply(ctx, name, helmOwned(o, a), metav1.ApplyOptions{FieldManager: HelmFieldManager, Force: true})
		if err != nil && kube.Transient(err) && ctx.Err() == nil && settled(ctx, res, name) {
			err = nil
		}
		if err != nil {
			return made, fmt.Errorf("addon %s: create CustomResourceDefinition %s (before Helm, one at a time) through %s: %w", a.Name, name, through, err)
		}
		made = append(made, name)
		runLogf(h, "addon %s: created CustomResourceDefinition %s in %s", a.Name, name, time.Since(start).Round(time.Millisecond))
	}
	return made, nil
}

// settled says whether CRD name appears within crdSettle.
func settled(ctx context.Context, res dynamic.ResourceInterface, name string) bool {
	end := time.Now().Add(crdSettle)
	for {
		if _, err := res.Get(ctx, name, metav1.GetOptions{}); err == nil {
			return true
		}
		if time.Now().After(end) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(2 * time.Second):
		}
	}
}

// runLogf writes a line on h's run log, if it has one.
func runLogf(h steps.Host, format string, args ...any) {
	if sh, ok := h.(*steps.SSHHost); ok && sh.Log != nil {
		sh.Log.Printf("%s "+format, append([]any{h.Name()}, args...)...)
	}
}
