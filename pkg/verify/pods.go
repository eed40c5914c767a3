package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// The pod checks' objects: one namespace per run, labelled so that a run
// killed before its cleanup is swept by the next one.
const (
	NamespacePrefix = "metalk8s-verify-"
	NamespaceLabel  = "metalk8s.io/verify"
	accessLabel     = "metalk8s.io/verify-access"
	serverPort      = 8080 // agnhost netexec's HTTP port in both pods
)

// Timeouts of the pod checks: pods Ready (the image is on every node,
// imported by up from the bundle), a route or a policy taking effect, a
// namespace left by a killed run.
var (
	PodsReadyTimeout = 3 * time.Minute
	SettleTimeout    = 60 * time.Second
	LeftoverAge      = 15 * time.Minute
)

var (
	gateways   = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "gateways"}
	httpRoutes = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}
)

// podEnv is one run's test pods: agnhost netexec servers named server
// (behind the Service server, port 80) and client, on two different
// nodes when there are two.
type podEnv struct {
	c              Cluster
	ns             string
	nodes          []string // Ready and schedulable
	server, client *corev1.Pod
	serviceIP      string
	// The volume check's PersistentVolume while claimed, its node, and
	// its file there while not removed (volume.go).
	pv, pvNode, pvFile string
}

// podChecks runs the checks that need pods of their own, in podChecks'
// order, in a namespace NamespacePrefix+random that it deletes at the end
// even when ctx is cancelled (an interrupted verify).
func (c Cluster) podChecks(ctx context.Context) []Result {
	var out []Result
	all := func(status, detail string) []Result {
		for _, p := range podChecks {
			out = append(out, Result{Check: p, Status: status, Detail: detail})
		}
		return out
	}
	if c.TestImage == "" {
		return all(Skip, "no test image for this cluster's versions")
	}
	c.sweep(ctx)
	start := time.Now()
	e, err := c.newPodEnv(ctx)
	if err != nil {
		for _, p := range podChecks {
			out = append(out, Result{Check: p, Status: Fail, Detail: err.Error(), Seconds: time.Since(start).Seconds()})
		}
	} else {
		for _, p := range podChecks {
			start := time.Now()
			st, detail, err := e.run(ctx, p)
			if err != nil {
				st, detail = Fail, err.Error()
			}
			out = append(out, Result{Check: p, Status: st, Detail: detail, Seconds: time.Since(start).Seconds()})
		}
	}
	if e != nil {
		if err := e.cleanup(ctx); err != nil {
			out = append(out, Result{Check: "cleanup", Status: Fail, Detail: err.Error()})
		}
	}
	return out
}

func (e *podEnv) run(ctx context.Context, check string) (string, string, error) {
	switch check {
	case "dns-from-pod":
		return e.dnsFromPod(ctx)
	case "service-across-nodes":
		return e.serviceAcrossNodes(ctx)
	case "ingress-route":
		return e.ingressRoute(ctx)
	case "network-policy":
		return e.networkPolicy(ctx)
	case volumeCheck:
		return e.volumeWriteRead(ctx)
	}
	return "", "", fmt.Errorf("no check %s", check)
}

// sweep deletes the namespaces of verify runs older than LeftoverAge
// (killed before their cleanup); younger ones may be another run's.
func (c Cluster) sweep(ctx context.Context) {
	c.sweepVolumes(ctx)
	nss, err := c.Client.Typed().CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: NamespaceLabel + "=true"})
	if err != nil {
		return
	}
	for _, ns := range nss.Items {
		if time.Since(ns.CreationTimestamp.Time) > LeftoverAge && ns.DeletionTimestamp == nil {
			_ = c.Client.Typed().CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{})
		}
	}
}

// cleanup gives back the volume check's volume if an interrupted check
// still holds it, and deletes the run's namespace (and so everything in
// it), with a context of its own: ctx may be done (an interrupted verify).
func (e *podEnv) cleanup(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	verr := e.releaseVolume(ctx)
	err := e.c.Client.Typed().CoreV1().Namespaces().Delete(ctx, e.ns, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		err = fmt.Errorf("namespace %s left behind (delete it): %w", e.ns, err)
	} else {
		err = nil
	}
	return errors.Join(verr, err)
}

// newPodEnv makes the namespace, the two pods and the Service, and waits
// for the pods to be Ready. A non-nil env is returned with an error once
// the namespace exists, for cleanup.
func (c Cluster) newPodEnv(ctx context.Context) (*podEnv, error) {
	nodes, err := c.schedulable(ctx)
	if err != nil {
		return nil, err
	}
	if len(nodes) == 0 {
		return nil, errors.New("no Ready, schedulable node to run test pods on")
	}
	api := c.Client.Typed().CoreV1()
	ns, err := api.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		GenerateName: NamespacePrefix,
		Labels:       map[string]string{NamespaceLabel: "true", "app.kubernetes.io/managed-by": "metalk8s"},
	}}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("namespace for the test pods: %w", err)
	}
	e := &podEnv{c: c, ns: ns.Name, nodes: nodes}
	// A ServiceAccount of its own: the namespace's default one comes
	// from the controller manager a moment later.
	if _, err := api.ServiceAccounts(e.ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "verify"},
		AutomountServiceAccountToken: ptr.To(false)}, metav1.CreateOptions{}); err != nil {
		return e, fmt.Errorf("service account for the test pods: %w", err)
	}
	clientNode := nodes[len(nodes)-1]
	if e.server, err = api.Pods(e.ns).Create(ctx, c.testPod("server", nodes[0]), metav1.CreateOptions{}); err != nil {
		return e, fmt.Errorf("pod server: %w", err)
	}
	if e.client, err = api.Pods(e.ns).Create(ctx, c.testPod("client", clientNode), metav1.CreateOptions{}); err != nil {
		return e, fmt.Errorf("pod client: %w", err)
	}
	svc, err := api.Services(e.ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "server"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "server"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(serverPort)}}},
	}, metav1.CreateOptions{})
	if err != nil {
		return e, fmt.Errorf("service server: %w", err)
	}
	e.serviceIP = svc.Spec.ClusterIP
	return e, e.waitReady(ctx)
}

// schedulable lists c.Nodes that are Ready and not cordoned.
func (c Cluster) schedulable(ctx context.Context) ([]string, error) {
	var out []string
	for _, name := range c.Nodes {
		n, err := c.Client.Typed().CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", name, err)
		}
		if !n.Spec.Unschedulable && nodeReady(n) {
			out = append(out, name)
		}
	}
	return out, nil
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// testPod is agnhost netexec on node, as Pod Security's restricted
// level allows.
func (c Cluster) testPod(name, node string) *corev1.Pod {
	return c.pod(name, node, &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65534)}, corev1.Container{
		Name:  "netexec",
		Args:  []string{"netexec", "--http-port=" + strconv.Itoa(serverPort), "--udp-port=-1"},
		Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: serverPort}},
		SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false),
			Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
	})
}

// pod is a pod of the test image running ctr once on node (bound there,
// tolerating every taint), with the run's ServiceAccount and no token;
// sc gets the RuntimeDefault seccomp profile.
func (c Cluster) pod(name, node string, sc *corev1.PodSecurityContext, ctr corev1.Container) *corev1.Pod {
	ctr.Image, ctr.ImagePullPolicy = c.TestImage, corev1.PullIfNotPresent
	sc.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{
			NodeName:                      node,
			ServiceAccountName:            "verify",
			Tolerations:                   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			AutomountServiceAccountToken:  ptr.To(false),
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			RestartPolicy:                 corev1.RestartPolicyNever,
			SecurityContext:               sc,
			Containers:                    []corev1.Container{ctr},
		},
	}
}

// waitReady waits PodsReadyTimeout for both pods to be Ready, refreshing
// e.server and e.client; the error names a pod not Ready and its state.
func (e *podEnv) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, PodsReadyTimeout)
	defer cancel()
	api := e.c.Client.Typed().CoreV1().Pods(e.ns)
	for {
		var bad []string
		for _, p := range []**corev1.Pod{&e.server, &e.client} {
			got, err := api.Get(ctx, (*p).Name, metav1.GetOptions{})
			if err != nil {
				bad = append(bad, fmt.Sprintf("%s: %v", (*p).Name, err))
				continue
			}
			*p = got
			if got.Status.Phase != corev1.PodRunning || !podReady(got) {
				st := podState(got)
				if imageMissing[st] {
					return e.c.imageMissingError(got.Spec.NodeName, st)
				}
				bad = append(bad, fmt.Sprintf("pod %s on %s: %s", got.Name, got.Spec.NodeName, st))
			}
		}
		if len(bad) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("test pods (%s) not ready after %s: %s", e.c.TestImage, PodsReadyTimeout, strings.Join(bad, "; "))
		case <-time.After(2 * time.Second):
		}
	}
}

// imageMissing are the kubelet's reasons for an image it could not get
// (k8s.io/kubernetes/pkg/kubelet/images): air-gapped nodes pull nothing.
var imageMissing = map[string]bool{"ErrImagePull": true, "ImagePullBackOff": true, "ErrImageNeverPull": true, "InvalidImageName": true}

// imageMissingError: the test image is not on node (the kubelet's reason).
func (c Cluster) imageMissingError(node, reason string) error {
	return fmt.Errorf("the test image %s is not on %s (%s): metalk8s up with a bundle of this version imports it", c.TestImage, node, reason)
}

// dial asks the client pod's netexec, through the API server's pod
// proxy, to GET http://host:port/request once (netexec's /dial): the
// answer, or why not (a name that does not resolve, a refused or timed
// out connection).
func (e *podEnv) dial(ctx context.Context, host string, port int, request string) (string, error) {
	raw, err := e.c.Client.Typed().CoreV1().Pods(e.ns).ProxyGet("http", "client", strconv.Itoa(serverPort), "dial",
		map[string]string{"request": request, "host": host, "port": strconv.Itoa(port), "protocol": "http", "tries": "1"}).DoRaw(ctx)
	if err != nil {
		if msg := strings.TrimSpace(string(raw)); msg != "" {
			return "", errors.New(msg)
		}
		return "", err
	}
	var out struct {
		Responses []string `json:"responses"`
		Errors    []string `json:"errors"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return "", fmt.Errorf("netexec's answer %q: %w", raw, err)
	}
	if len(out.Responses) == 0 {
		return "", fmt.Errorf("%s", strings.Join(out.Errors, "; "))
	}
	return out.Responses[0], nil
}

// until retries f every 2 s until it returns true or SettleTimeout
// passes; the last error is returned.
func until(ctx context.Context, f func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, SettleTimeout)
	defer cancel()
	for {
		ok, err := f()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = ctx.Err()
			}
			return err
		case <-time.After(2 * time.Second):
		}
	}
}

// answers: f's dial answered want.
func answers(want string, got string, err error) (bool, error) {
	if err != nil {
		return false, err
	}
	if !strings.HasPrefix(got, want) {
		return false, fmt.Errorf("answered %q, not %q", got, want)
	}
	return true, nil
}

// dnsFromPod: the client pod resolves the Service's name (CoreDNS, the
// pod's resolv.conf) and reaches it.
func (e *podEnv) dnsFromPod(ctx context.Context) (string, string, error) {
	name := "server." + e.ns + ".svc." + e.c.dnsDomain()
	err := until(ctx, func() (bool, error) {
		got, err := e.dial(ctx, name, 80, "hostname")
		return answers("server", got, err)
	})
	if err != nil {
		return Fail, fmt.Sprintf("a pod on %s could not reach %s: %v", e.client.Spec.NodeName, name, err), nil
	}
	return Pass, fmt.Sprintf("a pod on %s resolved and reached %s", e.client.Spec.NodeName, name), nil
}

// serviceAcrossNodes: the client reaches the server, on another node,
// through the Service's cluster IP (kube-proxy, the pod network).
func (e *podEnv) serviceAcrossNodes(ctx context.Context) (string, string, error) {
	from, to := e.client.Spec.NodeName, e.server.Spec.NodeName
	if from == to {
		return Skip, "one schedulable node: nothing to cross", nil
	}
	err := until(ctx, func() (bool, error) {
		got, err := e.dial(ctx, e.serviceIP, 80, "hostname")
		return answers("server", got, err)
	})
	if err != nil {
		return Fail, fmt.Sprintf("a pod on %s could not reach the Service %s:80 of a pod on %s: %v", from, e.serviceIP, to, err), nil
	}
	return Pass, fmt.Sprintf("a pod on %s reached the Service %s:80 of a pod on %s", from, e.serviceIP, to), nil
}

// networkPolicy: a NetworkPolicy admitting only pods labelled
// accessLabel=allowed to the server blocks the client, then lets it
// through once it has the label.
func (e *podEnv) networkPolicy(ctx context.Context) (string, string, error) {
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "server-ingress"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "server"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{
				PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{accessLabel: "allowed"}}}}}},
		},
	}
	if _, err := e.c.Client.Typed().NetworkingV1().NetworkPolicies(e.ns).Create(ctx, np, metav1.CreateOptions{}); err != nil {
		return "", "", fmt.Errorf("NetworkPolicy: %w", err)
	}
	ip := e.server.Status.PodIP
	err := until(ctx, func() (bool, error) {
		got, err := e.dial(ctx, ip, serverPort, "hostname")
		if err == nil {
			return false, fmt.Errorf("still answered %q", got)
		}
		return true, nil
	})
	if err != nil {
		return Fail, fmt.Sprintf("not enforced: a pod without the %s label still reached the server at %s: %v", accessLabel, ip, err), nil
	}
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:"allowed"}}}`, accessLabel)
	if _, err := e.c.Client.Typed().CoreV1().Pods(e.ns).Patch(ctx, "client", "application/merge-patch+json", []byte(patch), metav1.PatchOptions{}); err != nil {
		return "", "", fmt.Errorf("label the client: %w", err)
	}
	err = until(ctx, func() (bool, error) {
		got, err := e.dial(ctx, ip, serverPort, "hostname")
		return answers("server", got, err)
	})
	if err != nil {
		return Fail, fmt.Sprintf("a pod the NetworkPolicy admits could not reach the server at %s: %v", ip, err), nil
	}
	return Pass, "a pod the NetworkPolicy does not admit was blocked; once admitted, it got through", nil
}

// ingressRoute: an HTTPRoute on the cluster's Gateway (the first one
// accepting routes from every namespace) routes a path of this run's to
// the server, reached at the port the Gateway's pods take on their node
// (Traefik's hostPort): netexec answers "NOW: <time>" there.
func (e *podEnv) ingressRoute(ctx context.Context) (string, string, error) {
	gw, listener, port, err := e.c.gateway(ctx)
	if err != nil || gw == nil {
		return Skip, "no Gateway accepting routes from every namespace (the ingress addon is disabled)", err
	}
	addr, err := e.c.entryPoint(ctx, gw.GetNamespace(), port, e.client.Spec.NodeName)
	if err != nil {
		return "", "", err
	}
	if addr == "" {
		return Skip, fmt.Sprintf("Gateway %s/%s: no pod takes its port %d on a node", gw.GetNamespace(), gw.GetName(), port), nil
	}
	path := "/" + e.ns
	route := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
		"metadata": map[string]any{"name": "server", "namespace": e.ns},
		"spec": map[string]any{
			"parentRefs": []any{map[string]any{"name": gw.GetName(), "namespace": gw.GetNamespace(), "sectionName": listener}},
			"rules": []any{map[string]any{
				"matches":     []any{map[string]any{"path": map[string]any{"type": "PathPrefix", "value": path}}},
				"backendRefs": []any{map[string]any{"name": "server", "port": int64(80)}},
			}},
		},
	}}
	if _, err := e.c.Client.Dynamic().Resource(httpRoutes).Namespace(e.ns).Create(ctx, route, metav1.CreateOptions{}); err != nil {
		return "", "", fmt.Errorf("HTTPRoute: %w", err)
	}
	host, p, _ := net.SplitHostPort(addr)
	pn, _ := strconv.Atoi(p)
	err = until(ctx, func() (bool, error) {
		got, err := e.dial(ctx, host, pn, strings.TrimPrefix(path, "/"))
		return answers("NOW: ", got, err)
	})
	if err != nil {
		return Fail, fmt.Sprintf("http://%s%s (Gateway %s/%s) did not reach the server: %v", addr, path, gw.GetNamespace(), gw.GetName(), err), nil
	}
	return Pass, fmt.Sprintf("http://%s%s reached the server through Gateway %s/%s", addr, path, gw.GetNamespace(), gw.GetName()), nil
}

// gateway finds a Gateway with an HTTP listener accepting routes from
// every namespace: the Gateway, the listener's name and port; nil when
// none (or no Gateway API).
func (c Cluster) gateway(ctx context.Context) (*unstructured.Unstructured, string, int64, error) {
	list, err := c.Client.Dynamic().Resource(gateways).List(ctx, metav1.ListOptions{})
	if apierrors.IsNotFound(err) {
		return nil, "", 0, nil
	}
	if err != nil {
		return nil, "", 0, fmt.Errorf("gateways: %w", err)
	}
	for i := range list.Items {
		ls, _, _ := unstructured.NestedSlice(list.Items[i].Object, "spec", "listeners")
		for _, l := range ls {
			m, _ := l.(map[string]any)
			from, _, _ := unstructured.NestedString(m, "allowedRoutes", "namespaces", "from")
			port, _, _ := unstructured.NestedInt64(m, "port")
			name, _, _ := unstructured.NestedString(m, "name")
			if m["protocol"] == "HTTP" && from == "All" {
				return &list.Items[i], name, port, nil
			}
		}
	}
	return nil, "", 0, nil
}

// entryPoint is "hostIP:hostPort" of a running pod of namespace ns whose
// container port is port with a hostPort, preferring one on another node
// than avoid (the client's); "" when none.
func (c Cluster) entryPoint(ctx context.Context, ns string, port int64, avoid string) (string, error) {
	pods, err := c.Client.Typed().CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", fmt.Errorf("pods of %s: %w", ns, err)
	}
	found := ""
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodRunning || p.Status.HostIP == "" {
			continue
		}
		for _, ctr := range p.Spec.Containers {
			for _, cp := range ctr.Ports {
				if int64(cp.ContainerPort) == port && cp.HostPort != 0 {
					addr := net.JoinHostPort(p.Status.HostIP, strconv.Itoa(int(cp.HostPort)))
					if p.Spec.NodeName != avoid {
						return addr, nil
					}
					found = addr
				}
			}
		}
	}
	return found, nil
}

func (c Cluster) dnsDomain() string {
	if c.DNSDomain != "" {
		return c.DNSDomain
	}
	return "cluster.local"
}
