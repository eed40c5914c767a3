package kube

import (
	"context"
	"fmt"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestTransient(t *testing.T) {
	gr := schema.GroupResource{Group: "apps", Resource: "deployments"}
	wrap := func(err error) error { return fmt.Errorf("check: addon x: %w", err) }
	for _, c := range []struct {
		err  error
		want bool
	}{
		{apierrors.NewTimeoutError("request did not complete within requested timeout - context deadline exceeded", 0), true},
		{apierrors.NewServerTimeout(gr, "patch", 1), true},
		{apierrors.NewTooManyRequests("slow down", 1), true},
		{apierrors.NewServiceUnavailable("etcd"), true},
		{apierrors.NewInternalError(fmt.Errorf("etcdserver: request timed out")), true},
		{context.DeadlineExceeded, true},
		{apierrors.NewNotFound(gr, "x"), false},
		{apierrors.NewConflict(gr, "x", fmt.Errorf("changed")), false},
		{apierrors.NewForbidden(gr, "x", fmt.Errorf("no")), false},
		{apierrors.NewInvalid(schema.GroupKind{Group: "apps", Kind: "Deployment"}, "x", field.ErrorList{field.Required(field.NewPath("spec"), "")}), false},
		{fmt.Errorf("a chart error"), false},
		{nil, false},
	} {
		if got := Transient(c.err); got != c.want {
			t.Errorf("Transient(%v) = %v, want %v", c.err, got, c.want)
		}
		if c.err != nil {
			if got := Transient(wrap(c.err)); got != c.want {
				t.Errorf("Transient(wrapped %v) = %v, want %v", c.err, got, c.want)
			}
		}
	}
}
