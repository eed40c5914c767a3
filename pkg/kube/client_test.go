package kube

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/metalk8s/metalk8s/pkg/kube/kubetest"
	"github.com/metalk8s/metalk8s/pkg/ssh"
	"github.com/metalk8s/metalk8s/pkg/steps"
)

// The tests run a real kube-apiserver (kubetest). A plain TCP dialer
// stands in for a host's SSH connection: the SSH path itself is exercised
// by the end-to-end test on the VM lab.

// counter counts API requests by "METHOD path?query".
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripper(func(r *http.Request) (*http.Response, error) {
		c.mu.Lock()
		c.n[r.Method+" "+r.URL.Path]++
		c.mu.Unlock()
		return rt.RoundTrip(r)
	})
}

func (c *counter) get(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[key]
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func dialers(s *kubetest.Server) func(string) (Dialer, error) {
	return func(h string) (Dialer, error) {
		if h == "down" {
			return &kubetest.Redirect{}, nil // its apiserver refuses
		}
		return s.Dialer(), nil
	}
}

func configMap(name, value string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": name, "namespace": "default"},
		"data":     map[string]any{"k": value},
	}}
}

func TestAPI(t *testing.T) {
	s := kubetest.Start(t)
	t.Logf("etcd + kube-apiserver ready in %s", s.Started.Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cm := corev1.SchemeGroupVersion.WithResource("configmaps")
	reqs := &counter{n: map[string]int{}}

	t.Run("connect", func(t *testing.T) {
		if _, err := Connect(ctx, s.Kubeconfig, []string{"down"}, dialers(s)); err == nil || !strings.Contains(err.Error(), "down: ") {
			t.Errorf("Connect through a host whose apiserver is down: %v, want an error naming it", err)
		}
		// TLS checks the kubeconfig's server name against the certificate.
		other := strings.Replace(string(s.Kubeconfig), kubetest.Endpoint, "elsewhere.example", 1)
		if _, err := Connect(ctx, []byte(other), []string{"up"}, dialers(s)); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("Connect with a server name not in the certificate: %v, want a certificate error", err)
		}
	})
	c, err := connect(ctx, s.Kubeconfig, []string{"down", "up"}, dialers(s), reqs.wrap)
	if err != nil {
		t.Fatal(err)
	}
	if c.Host() != "up" {
		t.Errorf("Host = %q, want the first host that answers, up", c.Host())
	}

	t.Run("apply", func(t *testing.T) {
		objs := []*unstructured.Unstructured{configMap("one", "a"), configMap("two", "a")}
		steps := []struct {
			name   string
			objs   []*unstructured.Unstructured
			dryRun bool
			want   []string
		}{
			{"plan a create", objs, true, []string{"+ create ConfigMap default/one", "+ create ConfigMap default/two"}},
			{"create", objs, false, []string{"+ create ConfigMap default/one", "+ create ConfigMap default/two"}},
			{"again: no change", objs, false, nil},
			{"plan a change", []*unstructured.Unstructured{configMap("one", "b")}, true, []string{"~ update ConfigMap default/one: data.k a -> b"}},
			{"change", []*unstructured.Unstructured{configMap("one", "b")}, false, []string{"~ update ConfigMap default/one: data.k a -> b"}},
			{"changed: no change", []*unstructured.Unstructured{configMap("one", "b")}, true, nil},
		}
		for _, st := range steps {
			patches := reqs.get("PATCH /api/v1/namespaces/default/configmaps/one")
			got, err := c.Apply(ctx, st.objs, st.dryRun)
			n := reqs.get("PATCH /api/v1/namespaces/default/configmaps/one") - patches
			if st.want == nil && n > 0 {
				t.Errorf("%s: %d apply requests for an object already applied, want none", st.name, n)
			}
			// A dry run in a check; in an apply, the apply alone for a
			// new object, a dry run then the apply for one that exists.
			if want := map[string]int{"change": 2}[st.name]; st.want != nil && n != max(want, 1) {
				t.Errorf("%s: %d apply requests for object one, want %d", st.name, n, max(want, 1))
			}
			if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			if !reflect.DeepEqual(got, st.want) {
				t.Errorf("%s: diff %q, want %q", st.name, got, st.want)
			}
		}
		live, err := c.Typed().CoreV1().ConfigMaps("default").Get(ctx, "one", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if live.Data["k"] != "b" || live.ManagedFields[0].Manager != FieldManager {
			t.Errorf("live ConfigMap one: data %v, managers %v; want k=b by %s", live.Data, live.ManagedFields, FieldManager)
		}
		if _, err := c.Apply(ctx, []*unstructured.Unstructured{{Object: map[string]any{
			"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "nons"}}}}, true); err == nil {
			t.Error("Apply of a ConfigMap without a namespace: no error")
		}
	})

	t.Run("list cache", func(t *testing.T) {
		const list = "GET /api/v1/configmaps"
		before := reqs.get(list)
		var wg sync.WaitGroup
		var found atomic.Int32
		for range 8 {
			wg.Go(func() {
				items, err := c.List(ctx, cm)
				if err != nil {
					t.Error(err)
				}
				for _, it := range items {
					if it.GetName() == "one" {
						found.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if got := reqs.get(list) - before; got > 1 || found.Load() != 8 {
			t.Errorf("8 Lists made %d requests and saw ConfigMap one %d times; want at most 1 request, 8 sightings", got, found.Load())
		}
		before = reqs.get(list)
		if _, err := c.Apply(ctx, []*unstructured.Unstructured{configMap("one", "c")}, true); err != nil {
			t.Fatal(err)
		}
		if got := reqs.get(list) - before; got != 0 {
			t.Errorf("a dry-run Apply listed ConfigMaps again (%d requests), want the cache kept", got)
		}
		if _, err := c.Apply(ctx, []*unstructured.Unstructured{configMap("one", "c")}, false); err != nil {
			t.Fatal(err)
		}
		one, err := c.Get(ctx, cm, "default", "one")
		if err != nil || one == nil || one.Object["data"].(map[string]any)["k"] != "c" {
			t.Errorf("after Apply, the cached List still has the old ConfigMap: %v %v", one, err)
		}
		if got := reqs.get(list) - before; got != 0 {
			t.Errorf("Apply then Get made %d Lists, want 0 (the apply's answer kept in the cache)", got)
		}
		c.Forget(cm)
		if _, err := c.List(ctx, cm); err != nil || reqs.get(list)-before != 1 {
			t.Errorf("List after Forget: %d Lists in all, %v; want a new one", reqs.get(list)-before, err)
		}
	})

	t.Run("delete", func(t *testing.T) {
		if err := c.Delete(ctx, cm, "two", "default", nil); err != nil {
			t.Fatal(err)
		}
		if got, err := c.Get(ctx, cm, "default", "two"); err != nil || got != nil {
			t.Errorf("after Delete, Get = %v, %v; want absent", got, err)
		}
		if err := c.Delete(ctx, cm, "two", "default", nil); err != nil {
			t.Errorf("Delete of an absent object: %v, want nil", err)
		}
		stale := "1"
		err := c.Delete(ctx, cm, "one", "default", &metav1.Preconditions{ResourceVersion: &stale})
		if !apierrors.IsConflict(err) {
			t.Errorf("Delete with a stale resourceVersion: %v, want a conflict", err)
		}
	})

	t.Run("one client per run", func(t *testing.T) {
		conf := filepath.Join(t.TempDir(), "admin.conf")
		if err := os.WriteFile(conf, s.Kubeconfig, 0o600); err != nil {
			t.Fatal(err)
		}
		got := make([]*Client, 4)
		var all []*steps.Step
		for i := range got {
			all = append(all, &steps.Step{ID: steps.ID("test/client-"+string(rune('a'+i)), "cp2"), Host: "cp2", Phase: "volumes",
				Check: func(ctx context.Context, _ steps.Host) (steps.Change, error) {
					c, err := FromRun(ctx, conf, []string{"cp1", "cp2"})
					got[i] = c
					return steps.NoChange, err
				}})
		}
		g, err := steps.NewGraph(all)
		if err != nil {
			t.Fatal(err)
		}
		var runs []*Client
		for run := range 2 {
			// Each run makes its hosts afresh, as cluster.Run does.
			hosts := map[string]steps.Host{"cp1": &fakeHost{"cp1", &kubetest.Redirect{}}, "cp2": &fakeHost{"cp2", s.Dialer()}}
			if err := steps.Run(ctx, g, hosts, steps.Options{}).Err(); err != nil {
				t.Fatal(err)
			}
			for i := range got {
				if got[i] == nil || got[i] != got[0] || got[i].Host() != "cp2" {
					t.Fatalf("run %d: step %d got client %p, want the run's one client, through cp2", run, i, got[i])
				}
			}
			runs = append(runs, got[0])
		}
		if runs[0] == runs[1] {
			t.Error("the second run reused the first run's client")
		}
	})
}

// fakeHost is a steps.Host whose connections go to a test apiserver.
type fakeHost struct {
	name string
	*kubetest.Redirect
}

func (h *fakeHost) Name() string                                { return h.name }
func (h *fakeHost) Run(context.Context, string) ([]byte, error) { return nil, nil }
func (h *fakeHost) Put(context.Context, ssh.File) (bool, error) { return false, nil }

// switchable dials the test apiserver until stopped, like a host whose
// apiserver stops: its connections close, new ones are refused.
type switchable struct {
	to     *kubetest.Redirect
	mu     sync.Mutex
	refuse bool
	conns  []net.Conn
}

func (s *switchable) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refuse {
		return nil, fmt.Errorf("connection refused")
	}
	c, err := s.to.DialContext(ctx, network, addr)
	if err == nil {
		s.conns = append(s.conns, c)
	}
	return c, err
}

func (s *switchable) set(up bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuse = !up
	if !up {
		for _, c := range s.conns {
			c.Close()
		}
		s.conns = nil
	}
}

func TestFailover(t *testing.T) {
	s := kubetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cp := map[string]*switchable{"cp1": {to: s.Dialer()}, "cp2": {to: s.Dialer()}}
	dial := func(h string) (Dialer, error) { return cp[h], nil }
	c, err := Connect(ctx, s.Kubeconfig, []string{"cp1", "cp2"}, dial)
	if err != nil {
		t.Fatal(err)
	}
	if c.Host() != "cp1" {
		t.Fatalf("Host = %s, want cp1", c.Host())
	}
	// cp1's apiserver stops: its connections close and it refuses new ones.
	cp["cp1"].set(false)
	cmr := corev1.SchemeGroupVersion.WithResource("configmaps")
	if _, err := c.Apply(ctx, []*unstructured.Unstructured{configMap("failover", "a")}, false); err != nil {
		t.Fatalf("apply after cp1 stopped: %v", err)
	}
	if c.Host() != "cp2" {
		t.Errorf("Host = %s after cp1 stopped, want cp2", c.Host())
	}
	// Both refuse for a while: a request is retried until one comes back.
	cp["cp2"].set(false)
	c.Forget(cmr)
	time.AfterFunc(2*time.Second, func() { cp["cp1"].set(true) })
	if _, err := c.List(ctx, cmr); err != nil {
		t.Fatalf("list while no control plane accepted for 2 s: %v", err)
	}
	if c.Host() != "cp1" {
		t.Errorf("Host = %s, want cp1 again", c.Host())
	}
}
