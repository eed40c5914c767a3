// Package verify is `metalk8s verify`: a smoke test of a running cluster
// that anyone can run at any time: it changes nothing but objects of its
// own, in a namespace of its own, and one file on a volume no one has
// claimed, all removed at the end.
package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/metalk8s/metalk8s/pkg/addons"
	"github.com/metalk8s/metalk8s/pkg/kube"
)

// Statuses of a check.
const (
	Pass = "pass"
	Fail = "fail"
	Skip = "skip" // not run here: Detail says why
)

// Result is one check's outcome.
type Result struct {
	Check   string  `json:"check"`
	Status  string  `json:"status"` // Pass, Fail or Skip
	Detail  string  `json:"detail,omitempty"`
	Seconds float64 `json:"seconds"`
}

// Cluster is what verify looks at: the API, and the inventory's
// Kubernetes nodes (control planes and workers) by name.
type Cluster struct {
	Client *kube.Client
	Nodes  []string
	// TestImage is the pod checks' image, agnhost (in every bundle:
	// bundle.AddonImageRefs.Agnhost); "" skips them.
	TestImage string
	// DNSDomain is the cluster's DNS domain (kubespray's dns_domain);
	// "" is cluster.local.
	DNSDomain string
	// Host runs a shell command as root on the inventory's node and
	// returns its standard output; a non-zero exit is an error. The
	// volume check removes its file with it; nil skips that check.
	Host func(ctx context.Context, node, cmd string) ([]byte, error)
	// MetricsWait is how long the metrics check waits, asking every
	// 10 s, for an APIService not Available yet or a node without
	// metrics yet (metrics-server has a node's first figures two
	// scrapes after its kubelet answers: a node just joined, or
	// metrics-server just moved off a removed one); 0 is 2 minutes.
	MetricsWait time.Duration
}

// podChecks need pods of their own (pods.go), run in this order: the
// NetworkPolicy, which shuts the server off, last but the volume's.
var podChecks = []string{"dns-from-pod", "service-across-nodes", "ingress-route", "network-policy", volumeCheck}

// Run runs every check in order (nodes-ready, system-pods, dns,
// metrics-api, one addon/<namespace>/<release> per Helm release, then
// podChecks, and "cleanup" if their namespace could not be deleted) and
// returns their results. It changes nothing in the cluster but that
// namespace (NamespacePrefix+random) and, for the volume check, one
// unclaimed PersistentVolume (volume.go), both given back even when ctx
// is cancelled. A check that cannot reach the API fails with the error.
func Run(ctx context.Context, c Cluster) []Result {
	var out []Result
	run := func(name string, f func(context.Context) (status, detail string, err error)) {
		start := time.Now()
		st, detail, err := f(ctx)
		if err != nil {
			st, detail = Fail, err.Error()
		}
		out = append(out, Result{Check: name, Status: st, Detail: detail, Seconds: time.Since(start).Seconds()})
	}
	run("nodes-ready", c.nodesReady)
	run("system-pods", c.systemPods)
	run("dns", c.dns)
	run("metrics-api", c.metricsAPI)
	start := time.Now()
	hs, err := addons.Health(ctx, c.Client)
	if err != nil {
		out = append(out, Result{Check: "addons", Status: Fail, Detail: err.Error(), Seconds: time.Since(start).Seconds()})
	}
	for _, h := range hs {
		r := Result{Check: "addon/" + h.Namespace + "/" + h.Name, Status: Pass, Seconds: time.Since(start).Seconds()}
		if len(h.Problems) > 0 {
			r.Status, r.Detail = Fail, strings.Join(h.Problems, "; ")
		}
		out = append(out, r)
	}
	return append(out, c.podChecks(ctx)...)
}

// Failed counts the failed results.
func Failed(rs []Result) int {
	n := 0
	for _, r := range rs {
		if r.Status == Fail {
			n++
		}
	}
	return n
}

func (c Cluster) nodesReady(ctx context.Context) (string, string, error) {
	nodes, err := c.Client.Typed().CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", "", fmt.Errorf("nodes: %w", err)
	}
	ready := map[string]bool{}
	for i := range nodes.Items {
		ready[nodes.Items[i].Name] = kube.NodeReady(&nodes.Items[i])
	}
	var bad []string
	for _, n := range c.Nodes {
		r, ok := ready[n]
		switch {
		case !ok:
			bad = append(bad, n+" has no Node")
		case !r:
			bad = append(bad, n+" not Ready")
		}
	}
	if len(bad) > 0 {
		return Fail, strings.Join(bad, ", "), nil
	}
	return Pass, fmt.Sprintf("%d nodes Ready", len(c.Nodes)), nil
}

// systemPods: every pod of kube-system running with its containers
// ready, or completed.
func (c Cluster) systemPods(ctx context.Context) (string, string, error) {
	pods, err := c.Client.Typed().CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", "", fmt.Errorf("pods: %w", err)
	}
	var bad []string
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodSucceeded {
			continue
		}
		if p.Status.Phase != corev1.PodRunning || !podReady(&p) {
			bad = append(bad, fmt.Sprintf("%s (%s, on %s)", p.Name, podState(&p), p.Spec.NodeName))
		}
	}
	sort.Strings(bad)
	if len(bad) > 0 {
		return Fail, "not ready: " + strings.Join(bad, ", "), nil
	}
	return Pass, fmt.Sprintf("%d pods running", len(pods.Items)), nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// podState is the phase, or the first waiting container's reason.
func podState(p *corev1.Pod) string {
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil && w.Reason != "" {
			return w.Reason
		}
	}
	return string(p.Status.Phase)
}

// dns: CoreDNS (kubeadm's Deployment kube-system/coredns) has every
// replica ready, at least one, and the kube-dns Service ready endpoints.
func (c Cluster) dns(ctx context.Context) (string, string, error) {
	d, err := c.Client.Typed().AppsV1().Deployments("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return Fail, "no Deployment kube-system/coredns", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("CoreDNS: %w", err)
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	if want == 0 {
		return Fail, "CoreDNS is scaled to zero replicas: nothing answers DNS in the cluster", nil
	}
	if d.Status.ReadyReplicas < want {
		return Fail, fmt.Sprintf("CoreDNS: %d of %d replicas ready", d.Status.ReadyReplicas, want), nil
	}
	slices, err := c.Client.Typed().DiscoveryV1().EndpointSlices("kube-system").List(ctx,
		metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=kube-dns"})
	if err != nil {
		return "", "", fmt.Errorf("kube-dns endpoints: %w", err)
	}
	ready := 0
	for _, s := range slices.Items {
		for _, e := range s.Endpoints {
			if e.Conditions.Ready == nil || *e.Conditions.Ready {
				ready++
			}
		}
	}
	if ready == 0 {
		return Fail, "the kube-dns Service has no ready endpoint", nil
	}
	return Pass, fmt.Sprintf("CoreDNS %d/%d ready, %d kube-dns endpoints", d.Status.ReadyReplicas, want, ready), nil
}

var apiServices = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}

// metricsAPI: the resource metrics API (metrics-server's APIService
// v1beta1.metrics.k8s.io) is Available and has every node's metrics,
// within MetricsWait; skip without metrics-server.
func (c Cluster) metricsAPI(ctx context.Context) (string, string, error) {
	wait := c.MetricsWait
	if wait == 0 {
		wait = 2 * time.Minute
	}
	deadline := time.Now().Add(wait)
	for {
		st, detail, err := c.metricsOnce(ctx)
		if st != Fail || err != nil || time.Now().After(deadline) {
			return st, detail, err
		}
		select {
		case <-ctx.Done():
			return st, detail, nil
		case <-time.After(10 * time.Second):
		}
	}
}

// metricsOnce is metricsAPI's one look.
func (c Cluster) metricsOnce(ctx context.Context) (string, string, error) {
	svc, err := c.Client.Dynamic().Resource(apiServices).Get(ctx, "v1beta1.metrics.k8s.io", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return Skip, "no metrics API (the metrics-server addon is disabled)", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("APIService v1beta1.metrics.k8s.io: %w", err)
	}
	if st, _, _ := kube.Condition(svc, "Available"); st != "True" {
		return Fail, "APIService v1beta1.metrics.k8s.io is not Available", nil
	}
	raw, err := c.Client.Typed().CoreV1().RESTClient().Get().AbsPath("/apis/metrics.k8s.io/v1beta1/nodes").DoRaw(ctx)
	if err != nil {
		return Fail, "node metrics: " + err.Error(), nil
	}
	var list struct {
		Items []struct {
			Metadata struct{ Name string } `json:"metadata"`
		} `json:"items"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return Fail, "node metrics: " + err.Error(), nil
	}
	have := map[string]bool{}
	for _, it := range list.Items {
		have[it.Metadata.Name] = true
	}
	var missing []string
	for _, n := range c.Nodes {
		if !have[n] {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return Fail, "no metrics yet for " + strings.Join(missing, ", "), nil
	}
	return Pass, fmt.Sprintf("metrics for %d nodes", len(c.Nodes)), nil
}
