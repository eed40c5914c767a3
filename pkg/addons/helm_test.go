package addons

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/metalk8s/metalk8s/pkg/kube"
	"github.com/metalk8s/metalk8s/pkg/ssh"
	"github.com/metalk8s/metalk8s/pkg/steps"
)

// The Helm SDK's records reach the step host's run log, one line each,
// debug ones included, the run's secrets masked; a host without a run log
// gets none.
func TestLogHandler(t *testing.T) {
	dir := t.TempDir()
	rl, err := steps.OpenRunLog(dir, "run", []string{"s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	h := &steps.SSHHost{Client: &ssh.Client{Name: "cp1"}, Log: rl}
	log := slog.New(logHandler(h))
	log.Debug("creating 9 resource(s)")
	log.Info("waiting for resources", "token", "s3cret")
	if err := rl.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(rl.Path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], " cp1 helm: ") || !strings.Contains(lines[0], `msg="creating 9 resource(s)"`) ||
		strings.Contains(string(data), "s3cret") {
		t.Errorf("run log:\n%s", data)
	}
	if logHandler(nil) != nil || logHandler(&steps.SSHHost{Client: &ssh.Client{Name: "x"}}) != nil {
		t.Error("a handler for a host without a run log")
	}
}

// A Helm failure is tried again (apiRetry) when the API answered an
// object's apply that it was overloaded or timed out, as Helm wraps it,
// not when Helm's own wait timed out, nor on a refusal.
func TestHelmFailedRetries(t *testing.T) {
	ctx := context.Background()
	applyErr := func(err error) error { // Helm's install path: kube.Client.Create, then failRelease
		return fmt.Errorf("release gateway-api failed, and has been uninstalled due to rollback-on-failure being set: %w",
			errors.Join(fmt.Errorf("server-side apply failed for object /httproutes.gateway.networking.k8s.io apiextensions.k8s.io/v1, Kind=CustomResourceDefinition: %w", err)))
	}
	gr := schema.GroupResource{Group: "apiextensions.k8s.io", Resource: "customresourcedefinitions"}
	for _, c := range []struct {
		what  string
		err   error
		retry bool
	}{
		{"apiserver request timeout", applyErr(apierrors.NewTimeoutError("request did not complete within requested timeout - context deadline exceeded", 0)), true},
		{"too many requests", applyErr(apierrors.NewTooManyRequests("the server has received too many requests", 1)), true},
		{"server timeout", applyErr(apierrors.NewServerTimeout(gr, "create", 1)), true},
		{"refused (422)", applyErr(apierrors.NewInvalid(schema.GroupKind{Kind: "CustomResourceDefinition"}, "httproutes", nil)), false},
		{"forbidden", applyErr(apierrors.NewForbidden(gr, "httproutes", errors.New("no"))), false},
		{"the wait timed out", fmt.Errorf("release traefik failed, and has been uninstalled due to rollback-on-failure being set: resource not ready, name: traefik: %w", context.DeadlineExceeded), false},
	} {
		err := helmFailed(ctx, "addon gateway-api: helm install kube-ingress/gateway-api", c.err)
		if got := kube.Transient(err); got != c.retry {
			t.Errorf("%s: retried %v, want %v (%v)", c.what, got, c.retry, err)
		}
		if want := "addon gateway-api: helm install kube-ingress/gateway-api: " + c.err.Error(); err.Error() != want {
			t.Errorf("%s: %q, want %q", c.what, err, want)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := helmFailed(cancelled, "addon x", errors.New("interrupted")); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled run: %v, want context.Canceled in its chain", err)
	}
}
