package cluster

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metalk8s/metalk8s/internal/testinv"
)

// Run refuses, before it connects, a run without a bundle and a phase
// selected by --only or --skip that has no steps, saying why.
func TestRunRefusesBadInput(t *testing.T) {
	_, cl := kubeGraph(t)
	inv := cl.Inventory.Path
	b := filepath.Join(filepath.Dir(inv), "bundle")
	keepPreflight := func(id string) bool { return strings.HasPrefix(id, "preflight/") }
	all := func(string) bool { return true }
	for _, c := range []struct {
		name string
		o    Options
		want []string
	}{
		{"no bundle", Options{}, []string{"no bundle for " + inv, "--bundle DIR", "metalk8s_bundle: DIR", "metalk8s bundle build -o DIR -i " + inv}},
		{"no drives", Options{Bundle: b, Skip: map[string]bool{"storage": true}},
			[]string{"--skip: phase storage has no steps: no worker of " + inv + " has LVM drives"}},
		{"no bundle, kept", Options{Keep: all, Only: map[string]bool{"etcd": true}},
			[]string{"--only: phase etcd has no steps: without a bundle the graph has no etcd"}},
		{"not kept", Options{Bundle: b, Keep: keepPreflight, Only: map[string]bool{"etcd": true}},
			[]string{"--only: phase etcd has no steps: the steps this run keeps"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			// Should the refusal fail, TEST-NET hosts time out at once.
			c.o.Out, c.o.SSH.ConnectTimeout = io.Discard, time.Millisecond
			_, err := Run(context.Background(), testinv.Load(t, inv), c.o)
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("got %v, want an InputError", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v\nlacks %q", err, w)
				}
			}
			if _, err := os.Stat(ArtifactsDir(testinv.Load(t, inv))); err == nil {
				t.Error("refused run wrote artifacts")
			}
		})
	}
}
