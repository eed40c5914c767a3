package addons

import (
	"context"
	"io"
	"net/http"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	helmkube "helm.sh/helm/v4/pkg/kube"
	"helm.sh/helm/v4/pkg/release/common"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"

	"github.com/metalk8s/metalk8s/pkg/kube"
	"github.com/metalk8s/metalk8s/pkg/kube/kubetest"
)

// crdWatch sits between a client and the API: it counts the CRD applies
// in flight at once and, where fail says so, answers one with the
// apiserver's 504 timeout, after sending it on (stored, the client timed
// out) or without (never stored).
type crdWatch struct {
	rt   http.RoundTripper
	fail func(name string, n int) (send, timeout bool)

	mu       sync.Mutex
	inflight int
	max      int
	applies  map[string]int
	timeouts map[string]bool // the ?timeout= each asked the server for
}

func (w *crdWatch) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodPatch || !strings.Contains(req.URL.Path, "/customresourcedefinitions/") {
		return w.rt.RoundTrip(req)
	}
	name := path.Base(req.URL.Path)
	w.mu.Lock()
	w.inflight++
	w.max = max(w.max, w.inflight)
	w.applies[name]++
	w.timeouts[req.URL.Query().Get("timeout")] = true
	send, timeout := w.fail(name, w.applies[name])
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.inflight--
		w.mu.Unlock()
	}()
	if send {
		resp, err := w.rt.RoundTrip(req)
		if err != nil || !timeout {
			return resp, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	const status = `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Timeout","code":504,` +
		`"message":"Timeout: request did not complete within requested timeout - context deadline exceeded"}`
	return &http.Response{StatusCode: http.StatusGatewayTimeout, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(status)), Request: req}, nil
}

// TestCRDsOneAtATime installs the Gateway API addon's CRDs on a real
// kube-apiserver as the release step does before Helm: one at a time,
// through timeouts (a transport that answers 504 stands in for the lab's
// saturated apiserver), then Helm's install adopts them.
func TestCRDsOneAtATime(t *testing.T) {
	s := kubetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := connector(s)(ctx)
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
	var want []string
	for _, o := range a.Objects {
		if o.GetKind() == "CustomResourceDefinition" {
			want = append(want, o.GetName())
		}
	}
	if len(want) < 4 {
		t.Fatalf("the gateway-api chart renders %d CRDs, want at least 4: %q", len(want), want)
	}
	w := &crdWatch{applies: map[string]int{}, timeouts: map[string]bool{}}
	cfg := slowConfig(c.RESTConfig())
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { w.rt = rt; return w })
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	res := dyn.Resource(crdResource)
	defer func(d time.Duration) { crdSettle = d }(crdSettle)
	crdSettle = 2 * time.Second

	// The third CRD's create times out unstored: an error the step's
	// retry takes as transient, the two before it kept. The fourth's
	// first create is stored but answered with a timeout.
	w.fail = func(name string, n int) (bool, bool) {
		switch {
		case name == want[2] && n == 1:
			return false, true
		case name == want[3] && n == 1:
			return true, true
		}
		return true, false
	}
	start := time.Now()
	made, err := createCRDs(ctx, res, "cp1", a, nil)
	if err == nil || !kube.Transient(err) || !strings.Contains(err.Error(), "create CustomResourceDefinition "+want[2]) {
		t.Errorf("a create timed out: %v; want a transient error naming %s", err, want[2])
	}
	if !slices.Equal(made, want[:2]) {
		t.Errorf("made %q before the timeout, want %q", made, want[:2])
	}
	// Again (the retry): the rest, the fourth found after its timeout.
	made, err = createCRDs(ctx, res, "cp1", a, nil)
	if err != nil || !slices.Equal(made, want[2:]) {
		t.Errorf("second run: made %q, %v; want %q", made, err, want[2:])
	}
	t.Logf("%d CRDs created one at a time in %s", len(want), time.Since(start).Round(time.Millisecond))
	if w.max != 1 || w.applies[want[3]] != 1 {
		t.Errorf("%d CRD applies at once, %d of %s; want 1 and 1", w.max, w.applies[want[3]], want[3])
	}
	// The server bounds each create with its own --request-timeout: the
	// client asks for slowRequestTimeout, which the server caps.
	if len(w.timeouts) != 1 || !w.timeouts[slowRequestTimeout.String()] {
		t.Errorf("the creates asked for timeouts %v, want only %s", w.timeouts, slowRequestTimeout)
	}
	if made, err = createCRDs(ctx, res, "cp1", a, nil); err != nil || len(made) != 0 {
		t.Errorf("third run, all there: made %q, %v", made, err)
	}
	for _, n := range want {
		o, err := res.Get(ctx, n, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if o.GetLabels()["app.kubernetes.io/managed-by"] != "Helm" || o.GetAnnotations()["meta.helm.sh/release-name"] != a.Name ||
			o.GetAnnotations()["meta.helm.sh/release-namespace"] != a.Namespace || !managedBy(o.GetManagedFields(), HelmFieldManager) {
			t.Errorf("CRD %s: labels %v, annotations %v: not as Helm applies it", n, o.GetLabels(), o.GetAnnotations())
		}
	}

	// Helm's install adopts them, and the release is deployed.
	r := &releaseStep{addon: a, wait: helmkube.HookOnlyStrategy, client: connector(s)}
	start = time.Now()
	if err := r.apply(ctx, nil); err != nil {
		t.Fatalf("install: %v", err)
	}
	t.Logf("helm install adopting them: %s", time.Since(start).Round(time.Millisecond))
	kc, st, err := r.read(ctx, nil)
	if err != nil || kc == nil || st.deployed == nil || st.deployed.Info.Status != common.StatusDeployed {
		t.Fatalf("after the install: %+v, %v", st, err)
	}
	if ch, err := r.check(ctx, nil); err != nil || ch.Needed {
		t.Errorf("check after the install: %q, %v", ch.Diff, err)
	}
}
