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

	"github.com/metalk8s/metalk8s/pkg/kube"
	"github.com/metalk8s/metalk8s/pkg/kube/kubetest"
)

// verify against a real kube-apiserver (kubetest) whose objects say what
// kubelets and controllers would (none run here): a healthy cluster
// passes, CoreDNS scaled to zero fails the dns check by name, a node not
// Ready fails nodes-ready, a crash-looping system pod fails system-pods.
func TestRunAPI(t *testing.T) {
	s := kubetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	connect := func() *kube.Client {
		c, err := kube.Connect(ctx, s.Kubeconfig, []string{"cp1"}, func(string) (kube.Dialer, error) { return s.Dialer(), nil })
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
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
	cl.Nodes = append(cl.Nodes, "node3")
	if r := results()["nodes-ready"]; r.Status != Fail || !strings.Contains(r.Detail, "node3 has no Node") {
		t.Errorf("an inventory node without its Node: %s %q", r.Status, r.Detail)
	}
}
