package network

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/metalk8s/metalk8s/pkg/kube"
	"github.com/metalk8s/metalk8s/pkg/kube/kubetest"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
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
		allowPrivileged(t, objs)
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

// allowPrivileged turns privileged containers off unless the test
// apiserver allows them: kubeadm starts kube-apiserver with
// --allow-privileged=true, kubetest (so far) without it, and then the API
// refuses kube-network-policies' privileged container.
func allowPrivileged(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	if b, _ := os.ReadFile("../kube/kubetest/apiserver.go"); strings.Contains(string(b), "--allow-privileged=true") {
		return
	}
	for _, o := range objs {
		cs, ok, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
		if !ok {
			continue
		}
		for _, c := range cs {
			if sc, ok := c.(map[string]any)["securityContext"].(map[string]any); ok && sc["privileged"] == true {
				sc["privileged"] = false
				t.Logf("%s/%s: privileged off for kubetest's apiserver (no --allow-privileged=true)", o.GetNamespace(), o.GetName())
			}
		}
		_ = unstructured.SetNestedSlice(o.Object, cs, "spec", "template", "spec", "containers")
	}
}
