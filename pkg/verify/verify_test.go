package verify

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/metalk8s/metalk8s/pkg/kube"
	"github.com/metalk8s/metalk8s/pkg/kube/kubetest"
)

// apiServer starts a real kube-apiserver (kubetest; the test is skipped
// without one) and returns a context of 2 minutes and a connect
// function giving a new client of it.
func apiServer(t *testing.T) (context.Context, func() *kube.Client) {
	t.Helper()
	s := kubetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx, func() *kube.Client {
		c, err := kube.Connect(ctx, s.Kubeconfig, []string{"cp1"}, func(string) (kube.Dialer, error) { return s.Dialer(), nil })
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
}

// verify against a real kube-apiserver (kubetest) whose objects say what
// kubelets and controllers would (none run here): a healthy cluster
// passes, CoreDNS scaled to zero fails the dns check by name, a node not
// Ready fails nodes-ready, a crash-looping system pod fails system-pods.
func TestRunAPI(t *testing.T) {
	ctx, connect := apiServer(t)
	c := connect()
	api := c.Typed()
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	ready := func(name string, ok bool) {
		t.Helper()
		n, err := api.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			n, err = api.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
			must(n, err)
		}
		st := corev1.ConditionFalse
		if ok {
			st = corev1.ConditionTrue
		}
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: st}}
		must(api.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}))
	}
	for _, n := range []string{"node1", "node2"} {
		ready(n, true)
	}
	must(api.CoreV1().ServiceAccounts("kube-system").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}))
	pod, err := api.CoreV1().Pods("kube-system").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "kube-proxy-a"},
		Spec: corev1.PodSpec{NodeName: "node1", Containers: []corev1.Container{{Name: "c", Image: "kube-proxy"}}}}, metav1.CreateOptions{})
	must(pod, err)
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}
	pod, err = api.CoreV1().Pods("kube-system").UpdateStatus(ctx, pod, metav1.UpdateOptions{})
	must(pod, err)
	two := int32(2)
	labels := map[string]string{"k8s-app": "kube-dns"}
	dep, err := api.AppsV1().Deployments("kube-system").Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "coredns"},
		Spec: appsv1.DeploymentSpec{Replicas: &two, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "coredns", Image: "coredns"}}}}}}, metav1.CreateOptions{})
	must(dep, err)
	dep.Status = appsv1.DeploymentStatus{Replicas: 2, ReadyReplicas: 2, UpdatedReplicas: 2}
	must(api.AppsV1().Deployments("kube-system").UpdateStatus(ctx, dep, metav1.UpdateOptions{}))
	yes := true
	must(api.DiscoveryV1().EndpointSlices("kube-system").Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "kube-dns-a", Labels: map[string]string{discoveryv1.LabelServiceName: "kube-dns"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.233.64.2"}, Conditions: discoveryv1.EndpointConditions{Ready: &yes}}},
	}, metav1.CreateOptions{}))

	cl := Cluster{Nodes: []string{"node1", "node2"}}
	results := func() map[string]Result {
		t.Helper()
		cl.Client = connect()
		out := map[string]Result{}
		for _, r := range Run(ctx, cl) {
			out[r.Check] = r
		}
		return out
	}
	rs := results()
	for _, name := range []string{"nodes-ready", "system-pods", "dns"} {
		if rs[name].Status != Pass {
			t.Errorf("healthy: %s %s: %s", name, rs[name].Status, rs[name].Detail)
		}
	}
	if r := rs["metrics-api"]; r.Status != Skip || !strings.Contains(r.Detail, "metrics-server") {
		t.Errorf("no metrics-server: metrics-api %s %s", r.Status, r.Detail)
	}
	if r := rs["volume-write-read"]; r.Status != Skip {
		t.Errorf("volume-write-read %s, want skip (no test image)", r.Status)
	}
	if n := Failed(Run(ctx, cl)); n != 0 {
		t.Errorf("%d failed on a healthy cluster", n)
	}

	// CoreDNS scaled to zero: the dns check fails, by name.
	dep, err = api.AppsV1().Deployments("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
	must(dep, err)
	zero := int32(0)
	dep.Spec.Replicas = &zero
	must(api.AppsV1().Deployments("kube-system").Update(ctx, dep, metav1.UpdateOptions{}))
	ready("node2", false)
	pod.Status.Phase, pod.Status.Conditions = corev1.PodRunning, []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}}
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}}}
	must(api.CoreV1().Pods("kube-system").UpdateStatus(ctx, pod, metav1.UpdateOptions{}))
	rs = results()
	for name, want := range map[string]string{
		"dns":         "CoreDNS is scaled to zero",
		"nodes-ready": "node2 not Ready",
		"system-pods": "kube-proxy-a (CrashLoopBackOff, on node1)",
	} {
		if r := rs[name]; r.Status != Fail || !strings.Contains(r.Detail, want) {
			t.Errorf("%s: %s %q, want fail %q", name, r.Status, r.Detail, want)
		}
	}
	// metrics-server's APIService, its Service missing: not Available,
	// asked again until MetricsWait is over, then failed by name.
	svc := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
		"metadata": map[string]any{"name": "v1beta1.metrics.k8s.io"},
		"spec": map[string]any{"group": "metrics.k8s.io", "version": "v1beta1", "groupPriorityMinimum": int64(100),
			"versionPriority": int64(100), "insecureSkipTLSVerify": true,
			"service": map[string]any{"namespace": "kube-system", "name": "metrics-server"}},
	}}
	must(c.Dynamic().Resource(apiServices).Create(ctx, svc, metav1.CreateOptions{}))
	cl.MetricsWait = 3 * time.Second
	start := time.Now()
	if st, detail, err := cl.metricsAPI(ctx); st != Fail || err != nil || !strings.Contains(detail, "not Available") {
		t.Errorf("metrics-api without metrics-server's Service: %s %q %v", st, detail, err)
	}
	if took := time.Since(start); took < cl.MetricsWait {
		t.Errorf("metrics-api failed after %v, before its wait of %v", took, cl.MetricsWait)
	}
	cl.Nodes = append(cl.Nodes, "node3")
	if r := results()["nodes-ready"]; r.Status != Fail || !strings.Contains(r.Detail, "node3 has no Node") {
		t.Errorf("an inventory node without its Node: %s %q", r.Status, r.Detail)
	}
}

// The pod checks against a real kube-apiserver with no kubelet: the
// pods are made as verify means them (agnhost netexec, one per node,
// restricted) but never start, so every check fails naming the pod not
// ready; the run's namespace and an old one of a killed run are deleted,
// also when the run is interrupted. Without an image they are skipped.
func TestPodChecksAPI(t *testing.T) {
	ctx, connect := apiServer(t)
	c := connect()
	api := c.Typed().CoreV1()
	for _, name := range []string{"node1", "node2"} {
		n, err := api.Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
		if _, err := api.Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	old, err := api.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: NamespacePrefix + "old",
		Labels: map[string]string{NamespaceLabel: "true"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer func(r, a time.Duration) { PodsReadyTimeout, LeftoverAge = r, a }(PodsReadyTimeout, LeftoverAge)
	PodsReadyTimeout, LeftoverAge = 3*time.Second, 0

	const image = "registry.k8s.io/e2e-test-images/agnhost:2.63.0"
	cl := Cluster{Client: c, Nodes: []string{"node1", "node2", "node9"}, TestImage: image}
	rs := cl.podChecks(ctx)
	if len(rs) != len(podChecks) {
		t.Fatalf("%d results, want %d: %+v", len(rs), len(podChecks), rs)
	}
	for _, r := range rs {
		const detail = "not ready after 3s: pod server on node1: Pending; pod client on node2: Pending"
		if r.Status != Fail || !strings.Contains(r.Detail, detail) {
			t.Errorf("%s: %s %q, want fail %q", r.Check, r.Status, r.Detail, detail)
		}
	}
	nss, err := api.Namespaces().List(ctx, metav1.ListOptions{LabelSelector: NamespaceLabel + "=true"})
	if err != nil || len(nss.Items) != 2 {
		t.Fatalf("verify's namespaces: %v %v, want the old one and the run's", nss, err)
	}
	for _, ns := range nss.Items {
		if ns.DeletionTimestamp == nil {
			t.Errorf("namespace %s not deleted", ns.Name)
		}
		if ns.Name == old.Name {
			continue
		}
		pods, err := api.Pods(ns.Name).List(ctx, metav1.ListOptions{})
		if err != nil || len(pods.Items) != 2 {
			t.Fatalf("pods of %s: %v %v", ns.Name, pods, err)
		}
		for _, p := range pods.Items {
			ctr := p.Spec.Containers[0]
			if ctr.Image != image || strings.Join(ctr.Args, " ") != "netexec --http-port=8080 --udp-port=-1" ||
				*p.Spec.SecurityContext.RunAsNonRoot != true || *ctr.SecurityContext.AllowPrivilegeEscalation {
				t.Errorf("pod %s: %+v", p.Name, p.Spec)
			}
		}
		if svc, err := api.Services(ns.Name).Get(ctx, "server", metav1.GetOptions{}); err != nil || svc.Spec.Ports[0].Port != 80 {
			t.Errorf("service server: %v %v", svc, err)
		}
	}

	// Interrupted while waiting for its pods: the namespace still goes.
	PodsReadyTimeout = time.Minute
	ictx, icancel := context.WithTimeout(ctx, 2*time.Second)
	defer icancel()
	cl.podChecks(ictx)
	nss, err = api.Namespaces().List(ctx, metav1.ListOptions{LabelSelector: NamespaceLabel + "=true"})
	if err != nil || len(nss.Items) != 3 {
		t.Fatalf("verify's namespaces: %v %v, want 3", nss, err)
	}
	for _, ns := range nss.Items {
		if ns.DeletionTimestamp == nil {
			t.Errorf("interrupted: namespace %s not deleted", ns.Name)
		}
	}

	// An image the nodes lack fails at once, naming it.
	go func() {
		for ctx.Err() == nil {
			time.Sleep(200 * time.Millisecond)
			nss, _ := api.Namespaces().List(ctx, metav1.ListOptions{LabelSelector: NamespaceLabel + "=true"})
			for _, ns := range nss.Items {
				p, err := api.Pods(ns.Name).Get(ctx, "server", metav1.GetOptions{})
				if err != nil || len(p.Status.ContainerStatuses) > 0 {
					continue
				}
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "netexec",
					State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull"}}}}
				_, _ = api.Pods(ns.Name).UpdateStatus(ctx, p, metav1.UpdateOptions{})
			}
		}
	}()
	start := time.Now()
	rs = cl.podChecks(ctx)
	if r := rs[0]; r.Status != Fail || !strings.Contains(r.Detail, "the test image "+image+" is not on node1 (ErrImagePull)") || time.Since(start) > 30*time.Second {
		t.Errorf("image missing: %s %q after %s", r.Status, r.Detail, time.Since(start))
	}

	cl.TestImage = ""
	for _, r := range cl.podChecks(ctx) {
		if r.Status != Skip {
			t.Errorf("no image: %s %s", r.Check, r.Status)
		}
	}
}
