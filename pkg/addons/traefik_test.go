package addons

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	helmkube "helm.sh/helm/v4/pkg/kube"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/metalk8s/metalk8s/pkg/kube"
	"github.com/metalk8s/metalk8s/pkg/kube/kubetest"
)

// TestTraefikRoutes installs the gateway-api and traefik releases with
// their steps (Helm SDK, server-side apply) on a real kube-apiserver
// (kubetest, RBAC), then runs the lab's build of Traefik (the real
// binary, test/lab/artifacts: build.sh traefik) on this machine with the
// DaemonSet's own arguments and a token of its service account (so the
// chart's ClusterRole is what it may read), and sends it requests that an Ingress (of
// the default class), an nginx-class Ingress (ingress-nginx's
// annotation) and a Gateway API HTTPRoute each route to a test Service
// whose endpoint is an HTTP server of the test. kubetest runs no
// kubelet, so the pod is this process and the ports are free ones, not
// 80 and 443; the lab test sends requests to the nodes' port 80.
func TestTraefikRoutes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kube-apiserver and Traefik")
	}
	bin := kubetest.Binary(t, "traefik", "traefik")
	backendIP := hostIP(t) // an EndpointSlice refuses loopback addresses
	s := kubetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	connect := connector(s)
	web, websecure, admin := kubetest.FreePort(t), kubetest.FreePort(t), kubetest.FreePort(t)
	ads, err := Defaults(Params{KubeVersion: "v1.36.3"})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*Addon{}
	for _, a := range ads {
		byName[a.Name] = a
	}
	tr := byName["traefik"]
	tr.Values = merge(tr.Values, map[string]any{"ports": map[string]any{
		"web": map[string]any{"port": web}, "websecure": map[string]any{"port": websecure},
		"traefik": map[string]any{"port": admin}}})
	if err := tr.Render("v1.36.3"); err != nil {
		t.Fatal(err)
	}

	step := func(a *Addon) *releaseStep {
		return &releaseStep{addon: a, wait: helmkube.HookOnlyStrategy, client: connect}
	}
	for _, name := range []string{"gateway-api", "traefik"} {
		if err := step(byName[name]).apply(ctx, nil); err != nil {
			t.Fatalf("%s: apply: %v", name, err)
		}
		if c, err := step(byName[name]).check(ctx, nil); err != nil || len(c.Diff) != 0 {
			t.Fatalf("%s: check after apply: %q, %v", name, c.Diff, err)
		}
	}

	c, err := connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	backend := serveBackend(t, backendIP)
	testObjects(ctx, t, c, backend)

	// Traefik as its pod would be: its service account's token (the
	// chart's ClusterRole, under RBAC), its DaemonSet's arguments.
	tok, err := c.Typed().CoreV1().ServiceAccounts("kube-ingress").CreateToken(ctx, "traefik",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("a token of service account kube-ingress/traefik: %v", err)
	}
	args := toStrings(container(t, find(t, tr.Objects, "DaemonSet", "traefik"))["args"])
	cmd := exec.Command(bin, args...)
	// Without the in-cluster variables (a CI pod's), which Traefik
	// prefers over KUBECONFIG.
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "KUBERNETES_SERVICE_") && !strings.HasPrefix(e, "KUBECONFIG=") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	cmd.Env = append(cmd.Env, "KUBECONFIG="+s.TokenKubeconfigFile(t, tok.Status.Token))
	startLogged(t, "traefik", cmd)

	get := func(port int, host, path string) (int, string, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", port, path), nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	// /ping on the traefik entry point, as the probes ask.
	waitFor(t, "traefik's /ping", func() error {
		code, body, err := get(admin, "localhost", "/ping")
		if err != nil || code != 200 {
			return fmt.Errorf("%d %q %v", code, body, err)
		}
		return nil
	})
	for _, host := range []string{"ingress.test", "nginx.test", "gateway.test"} {
		waitFor(t, host, func() error {
			code, body, err := get(web, host, "/hello")
			if err != nil || code != 200 || body != "backend: /hello" {
				return fmt.Errorf("GET http://%s/hello: %d %q %v", host, code, body, err)
			}
			return nil
		})
	}
	// A host no object routes is Traefik's 404, not the backend.
	if code, body, err := get(web, "nobody.test", "/hello"); err != nil || code != 404 {
		t.Errorf("GET http://nobody.test/hello: %d %q %v", code, body, err)
	}
	// The Gateway API's status, as Traefik writes it.
	waitFor(t, "HTTPRoute accepted", func() error {
		u, err := c.Dynamic().Resource(gatewayv1.SchemeGroupVersion.WithResource("httproutes")).Namespace("demo").Get(ctx, "echo", metav1.GetOptions{})
		if err != nil {
			return err
		}
		var r gatewayv1.HTTPRoute
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &r); err != nil {
			return err
		}
		for _, p := range r.Status.Parents {
			for _, cond := range p.Conditions {
				if cond.Type == string(gatewayv1.RouteConditionAccepted) && cond.Status == metav1.ConditionTrue {
					return nil
				}
			}
		}
		return fmt.Errorf("status %+v", r.Status)
	})
}

// testObjects makes namespace demo with Service echo (no selector) whose
// EndpointSlice points at backend, and the three routes to it.
func testObjects(ctx context.Context, t *testing.T, c *kube.Client, backend *net.TCPAddr) {
	t.Helper()
	k := c.Typed()
	ns := "demo"
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	_, err := k.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	must("namespace", err)
	_, err = k.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "echo"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(int32(backend.Port))}}}},
		metav1.CreateOptions{})
	must("service", err)
	_, err = k.DiscoveryV1().EndpointSlices(ns).Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "echo-1", Labels: map[string]string{discoveryv1.LabelServiceName: "echo"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{backend.IP.String()}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(backend.Port)), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}, metav1.CreateOptions{})
	must("endpointslice", err)
	prefix := networkingv1.PathTypePrefix
	ingress := func(name, host string, annotations map[string]string) *networkingv1.Ingress {
		return &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations},
			Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{Host: host,
				IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
					Path: "/", PathType: &prefix,
					Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "echo",
						Port: networkingv1.ServiceBackendPort{Number: 80}}}}}}}}}}}
	}
	// No class: the default IngressClass (traefik) is set by the API's
	// DefaultIngressClass admission.
	got, err := k.NetworkingV1().Ingresses(ns).Create(ctx, ingress("plain", "ingress.test", nil), metav1.CreateOptions{})
	must("ingress", err)
	if got.Spec.IngressClassName == nil || *got.Spec.IngressClassName != "traefik" {
		t.Errorf("Ingress without a class: ingressClassName %v, want traefik (the default class)", got.Spec.IngressClassName)
	}
	// As a MetalK8s (ingress-nginx) cluster has them.
	_, err = k.NetworkingV1().Ingresses(ns).Create(ctx, ingress("nginx", "nginx.test",
		map[string]string{"kubernetes.io/ingress.class": "nginx"}), metav1.CreateOptions{})
	must("nginx ingress", err)
	gwNS := gatewayv1.Namespace("kube-ingress")
	route := &gatewayv1.HTTPRoute{
		TypeMeta:   metav1.TypeMeta{APIVersion: gatewayv1.GroupVersion.String(), Kind: "HTTPRoute"},
		ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: ns},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Name: "traefik", Namespace: &gwNS}}},
			Hostnames:       []gatewayv1.Hostname{"gateway.test"},
			Rules: []gatewayv1.HTTPRouteRule{{BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{
				BackendObjectReference: gatewayv1.BackendObjectReference{Name: "echo", Port: ptr.To(gatewayv1.PortNumber(80))}}}}}},
		},
	}
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(route)
	must("httproute", err)
	_, err = c.Apply(ctx, []*unstructured.Unstructured{{Object: obj}}, false)
	must("httproute", err)
}

// serveBackend answers "backend: <path>" on ip, until the test ends.
func serveBackend(t *testing.T, ip string) *net.TCPAddr {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "backend: %s", r.URL.Path)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return l.Addr().(*net.TCPAddr)
}

// hostIP is one of this machine's global unicast IPv4 addresses.
func hostIP(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
			return n.IP.String()
		}
	}
	t.Fatal("no global unicast IPv4 address on this machine for the test's backend")
	return ""
}

// startLogged starts cmd, its output in a log file, until the test
// ends; a failed test shows the log's end.
func startLogged(t *testing.T, name string, cmd *exec.Cmd) {
	t.Helper()
	logf, err := os.Create(filepath.Join(t.TempDir(), name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("%s's log:\n%s", name, tail(string(b), 40))
		}
	})
}

// waitFor retries f every 250 ms for up to a minute.
func waitFor(t *testing.T, what string, f func() error) {
	t.Helper()
	var err error
	for end := time.Now().Add(time.Minute); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		if err = f(); err == nil {
			return
		}
	}
	t.Fatalf("%s: %v", what, err)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
