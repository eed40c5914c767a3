package network

import (
	"context"
	"testing"
	"time"

	"github.com/metalk8s/metalk8s/pkg/kube"
	"github.com/metalk8s/metalk8s/pkg/kube/kubetest"
)

// TestObjectsAPIServer applies the objects with server-side apply to a real
// kube-apiserver (pkg/kube/kubetest; skipped without its binaries): the API
// server's defaulting, validation and schema check every field. A second
// apply must change nothing, as a second `metalk8s up` must not.
func TestObjectsAPIServer(t *testing.T) {
	s := kubetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := kube.Connect(ctx, s.Kubeconfig, []string{"kubetest"}, func(string) (kube.Dialer, error) { return s.Dialer(), nil })
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []Params{
		{PodSubnet: "10.233.64.0/18", Bundled: true},
		{PodSubnet: "10.244.0.0/16", EnableNFTables: true}, // the same objects, changed
	} {
		objs, err := Objects(p)
		if err != nil {
			t.Fatal(err)
		}
		// plan's dry run, before the namespace exists: no error.
		if _, err := c.Apply(ctx, objs, true); err != nil {
			t.Fatalf("%+v: dry run: %v", p, err)
		}
		diff, err := c.Apply(ctx, objs, false)
		if err != nil {
			t.Fatalf("%+v: %v", p, err)
		}
		if len(diff) == 0 {
			t.Errorf("%+v: first apply changed nothing", p)
		}
		t.Logf("%+v:\n%v", p, diff)
		again, err := c.Apply(ctx, objs, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(again) != 0 {
			t.Errorf("%+v: second apply changed %v", p, again)
		}
	}
}
