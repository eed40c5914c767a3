package kubeadm

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/metalk8s/metalk8s/pkg/kube"
	"github.com/metalk8s/metalk8s/pkg/kube/kubetest"
)

// fakeKubelet stands in for node's kubelet (none runs with kubetest's
// apiserver): it deletes, at once, the pods bound to node that are being
// deleted, as a kubelet does once their containers have stopped.
func fakeKubelet(ctx context.Context, c kubernetes.Interface, node string) {
	for ctx.Err() == nil {
		pods, err := c.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + node})
		if err == nil {
			for _, p := range pods.Items {
				if p.DeletionTimestamp != nil {
					_ = c.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// remove-node's drain and Node deletion against a real kube-apiserver
// (kubetest): the plan lists the cordon and the evictions, DaemonSet pods
// stay, a PodDisruptionBudget that allows no disruption stops the drain
// (the Node stays), --disable-eviction goes past it, and a re-run changes
// nothing. The kubelet is fakeKubelet: its part is the lab's.
// drainAPI starts a real kube-apiserver (kubetest) holding a Node named
// node and returns a context bounding the test (2 minutes), a client of
// it and the Connect RemovalSteps takes.
func drainAPI(t *testing.T, node string) (context.Context, *kube.Client, Connect) {
	t.Helper()
	s := kubetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	c, err := kube.Connect(ctx, s.Kubeconfig, []string{"cp1"}, func(string) (kube.Dialer, error) { return s.Dialer(), nil })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Typed().CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return ctx, c, func(context.Context) (*kube.Client, error) { return c, nil }
}

func TestRemovalStepsAPI(t *testing.T) {
	ctx, c, connect := drainAPI(t, "node3")
	api := c.Typed().CoreV1()
	if _, err := api.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "app"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.ServiceAccounts("app").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err) // no controller-manager makes it
	}
	pod := func(name string, labels map[string]string, owner *metav1.OwnerReference) {
		t.Helper()
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "app", Labels: labels},
			Spec: corev1.PodSpec{NodeName: "node3", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
		if owner != nil {
			p.OwnerReferences = []metav1.OwnerReference{*owner}
		}
		p, err := api.Pods("app").Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// Running and Ready: a Pending pod is evicted whatever its budget.
		p.Status = corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}
		if _, err := api.Pods("app").UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	yes := true
	ds, err := c.Typed().AppsV1().DaemonSets("app").Create(ctx, &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent"},
		Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "agent"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod("web", map[string]string{"app": "web"}, nil)
	pod("db", map[string]string{"app": "db"}, nil)
	pod("agent", map[string]string{"app": "agent"}, &metav1.OwnerReference{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "agent", UID: ds.UID, Controller: &yes})
	one := intstr.FromInt32(1)
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "app"},
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: &one, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}}}
	if _, err := c.Typed().PolicyV1().PodDisruptionBudgets("app").Create(ctx, pdb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	go fakeKubelet(ctx, c.Typed(), "node3")

	drain, del := RemovalSteps("node1", connect, "node3", DrainOptions{Timeout: 5 * time.Second}, nil, nil)
	ch, err := drain.Check(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "~ cordon Node node3\n- evict pod app/db\n- evict pod app/web"
	if got := strings.Join(ch.Diff, "\n"); !ch.Needed || got != want {
		t.Errorf("drain check:\n%s\nwant:\n%s", got, want)
	}
	if w := strings.Join(ch.Warnings, " "); !strings.Contains(w, "app/agent") || !strings.Contains(w, "app/db, app/web") {
		t.Errorf("warnings %q: want the DaemonSet pod ignored and the unmanaged pods named", w)
	}
	// The budget allows no disruption: the drain fails, db stays.
	err = drain.Apply(ctx, nil)
	if err == nil || !strings.Contains(err.Error(), "PodDisruptionBudgets") {
		t.Fatalf("drain past a budget: %v, want it refused", err)
	}
	n, err := api.Nodes().Get(ctx, "node3", metav1.GetOptions{})
	if err != nil || !n.Spec.Unschedulable {
		t.Errorf("node3 not cordoned after the drain: %v", err)
	}
	if _, err := api.Pods("app").Get(ctx, "db", metav1.GetOptions{}); err != nil {
		t.Errorf("db evicted despite its budget: %v", err)
	}
	if _, err := api.Pods("app").Get(ctx, "web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("web not evicted: %v", err)
	}
	if ch, err := del.Check(ctx, nil); err != nil || strings.Join(ch.Diff, "") != "- delete Node node3" || ch.Destructive != "remove Node node3 from the cluster" {
		t.Errorf("node check: %v %v", ch.Diff, err)
	}

	// Deleting instead of evicting goes past the budget.
	drain, del = RemovalSteps("node1", connect, "node3", DrainOptions{Timeout: 20 * time.Second, DisableEviction: true}, nil, nil)
	if ch, err := drain.Check(ctx, nil); err != nil || strings.Join(ch.Diff, "\n") != "- delete pod app/db" {
		t.Errorf("drain check with --disable-eviction: %v %v", ch.Diff, err)
	}
	if err := drain.Apply(ctx, nil); err != nil {
		t.Fatalf("drain with --disable-eviction: %v", err)
	}
	if ch, err := drain.Check(ctx, nil); err != nil || ch.Needed {
		t.Errorf("drain check after the drain: %v %v", ch.Diff, err)
	}
	if err := del.Apply(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := api.Nodes().Get(ctx, "node3", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("node3 still there: %v", err)
	}
	if ch, err := drain.Check(ctx, nil); err != nil || ch.Needed {
		t.Errorf("drain check once the Node is gone: %v %v", ch.Diff, err)
	}
	if ch, err := del.Check(ctx, nil); err != nil || ch.Needed {
		t.Errorf("node check once gone: %v %v", ch.Diff, err)
	}
	if err := del.Apply(ctx, nil); err != nil {
		t.Errorf("deleting again: %v", err)
	}
}

// A pod stuck terminating (bound to a node whose kubelet never confirms
// its end: none runs here) holds the drain until its timeout; with
// SkipWaitForDeleteTimeout, once its deletion is older than that, it no
// longer does, neither listed by the check nor waited for (kubectl drain
// --skip-wait-for-delete-timeout), and it is still there.
func TestDrainSkipsStuckPods(t *testing.T) {
	ctx, c, connect := drainAPI(t, "node4")
	api := c.Typed().CoreV1()
	if _, err := api.ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	grace := int64(1)
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "stuck", Namespace: "default"},
		Spec: corev1.PodSpec{NodeName: "node4", TerminationGracePeriodSeconds: &grace, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
	if _, err := api.Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	drain, _ := RemovalSteps("node1", connect, "node4", DrainOptions{Timeout: 5 * time.Second}, nil, nil)
	err := drain.Apply(ctx, nil)
	if err == nil || !strings.Contains(err.Error(), "--skip-wait-for-delete-timeout") {
		t.Fatalf("drain of a pod that never ends: %v, want a timeout naming --skip-wait-for-delete-timeout", err)
	}
	if p, err := api.Pods("default").Get(ctx, "stuck", metav1.GetOptions{}); err != nil || p.DeletionTimestamp == nil {
		t.Fatalf("the pod is not terminating: %v", err)
	}
	if ch, err := drain.Check(ctx, nil); err != nil || strings.Join(ch.Diff, "\n") != "- evict pod default/stuck" {
		t.Errorf("check without the skip: %v %v, want the terminating pod listed", ch.Diff, err)
	}

	drain, _ = RemovalSteps("node1", connect, "node4", DrainOptions{Timeout: 20 * time.Second, SkipWaitForDeleteTimeout: time.Second}, nil, nil)
	time.Sleep(3 * time.Second) // the deletion (its grace period included) over a second old
	if ch, err := drain.Check(ctx, nil); err != nil || ch.Needed {
		t.Errorf("check with the skip: %v %v, want nothing to do", ch.Diff, err)
	}
	if err := drain.Apply(ctx, nil); err != nil {
		t.Errorf("drain with the skip: %v", err)
	}
	if _, err := api.Pods("default").Get(ctx, "stuck", metav1.GetOptions{}); err != nil {
		t.Errorf("the stuck pod: %v, want it still there (only the kubelet ends it)", err)
	}
}
