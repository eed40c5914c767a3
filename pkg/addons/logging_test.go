package addons

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	helmkube "helm.sh/helm/v4/pkg/kube"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/metalk8s/metalk8s/pkg/kube"
	"github.com/metalk8s/metalk8s/pkg/kube/kubetest"
)

// addon returns the addon called name among as.
func addon(t *testing.T, as []*Addon, name string) *Addon {
	t.Helper()
	for _, a := range as {
		if a.Name == name {
			return a
		}
	}
	t.Fatalf("no addon %s", name)
	return nil
}

func TestCheckRetention(t *testing.T) {
	for s, ok := range map[string]bool{"7d": true, "1d": true, "24h": true, "2w": true, "1.5d": true, "3M": true, "1y": true,
		"12h": false, "7": false, "": false, "7days": false, "-7d": false, "86399s": false, "86400s": true} {
		if err := checkRetention(s); (err == nil) != ok {
			t.Errorf("%q: %v, want ok=%v", s, err, ok)
		}
	}
}

func TestLoggingChart(t *testing.T) {
	args := func(a *Addon, kind, name string) []string {
		return toStrings(container(t, find(t, a.Objects, kind, name))["args"])
	}
	lg := addon(t, mustFromInventory(t, ""), "logging")
	if !lg.Enabled || lg.EnabledVar != "metalk8s_logging_enabled" || len(lg.Warnings) != 0 {
		t.Errorf("by default: enabled %v by %s, warnings %q", lg.Enabled, lg.EnabledVar, lg.Warnings)
	}
	if a := args(lg, "StatefulSet", "victoria-logs"); !contains(a, "-retentionPeriod=7d") || !contains(a, "-storageDataPath=/storage") {
		t.Errorf("VictoriaLogs' arguments %q: want the default retention, 7d", a)
	}
	a := args(lg, "DaemonSet", "vlagent")
	if !contains(a, "-remoteWrite.url=http://victoria-logs.kube-ops.svc:9428/insert/native") || !contains(a, "-kubernetesCollector") {
		t.Errorf("vlagent's arguments %q", a)
	}
	tol, _, _ := unstructured.NestedSlice(find(t, lg.Objects, "DaemonSet", "vlagent").Object, "spec", "template", "spec", "tolerations")
	if len(tol) != 1 || tol[0].(map[string]any)["operator"] != "Exists" {
		t.Errorf("vlagent's tolerations %v: it must run on every node, control planes included", tol)
	}
	find(t, lg.Objects, "ServiceMonitor", "victoria-logs") // monitoring is enabled

	lg = addon(t, mustFromInventory(t, "metalk8s_logging_retention: 30d\nmetalk8s_monitoring_enabled: false\n"+
		"metalk8s_logging_values: {collector: {excludeFilter: 'kubernetes.pod_namespace:=kube-system', extraFields: {cluster: site-a}}}"), "logging")
	if a := args(lg, "StatefulSet", "victoria-logs"); !contains(a, "-retentionPeriod=30d") {
		t.Errorf("metalk8s_logging_retention 30d: VictoriaLogs' arguments %q", a)
	}
	if a := args(lg, "DaemonSet", "vlagent"); !contains(a, "-kubernetesCollector.excludeFilter=kubernetes.pod_namespace:=kube-system") ||
		!contains(a, `-kubernetesCollector.extraFields={"cluster":"site-a"}`) {
		t.Errorf("vlagent's arguments with an exclude filter and extra fields: %q", a)
	}
	if kinds(lg.Objects)["ServiceMonitor"]+kinds(lg.Objects)["PodMonitor"] != 0 {
		t.Error("monitoring disabled: the logging release still has ServiceMonitors (their CRDs are not installed)")
	}

	// MetalK8s 0.x's variable is read, with a warning; metalk8s's wins.
	lg = addon(t, mustFromInventory(t, "metalk8s_elasticsearch_enabled: false"), "logging")
	if lg.Enabled || lg.EnabledVar != "metalk8s_elasticsearch_enabled" || len(lg.Warnings) != 1 ||
		!strings.Contains(lg.Warnings[0], "read as metalk8s_logging_enabled") || !strings.Contains(lg.Warnings[0], "group_vars/all.yml") {
		t.Errorf("metalk8s_elasticsearch_enabled: false: enabled %v by %s, warnings %q", lg.Enabled, lg.EnabledVar, lg.Warnings)
	}
	lg = addon(t, mustFromInventory(t, "metalk8s_elasticsearch_enabled: false\nmetalk8s_logging_enabled: true"), "logging")
	if !lg.Enabled || lg.EnabledVar != "metalk8s_logging_enabled" || len(lg.Warnings) != 0 {
		t.Errorf("both variables: enabled %v by %s, warnings %q", lg.Enabled, lg.EnabledVar, lg.Warnings)
	}

	// a retention through the values needs its unit too (a bare number is
	// months to VictoriaLogs); the top-level nodeSelector places the
	// store only, never the collector
	if _, err := FromInventory(clusterWith(t, "metalk8s_logging_values: {victoriaLogs: {retention: '7'}}", map[string]string{}), testParams(true)); err == nil {
		t.Error("victoriaLogs.retention 7 (no unit): accepted")
	}
	lg = addon(t, mustFromInventory(t, "metalk8s_logging_values: {nodeSelector: {disk: ssd}}"), "logging")
	if sel, _, _ := unstructured.NestedMap(find(t, lg.Objects, "DaemonSet", "vlagent").Object, "spec", "template", "spec", "nodeSelector"); len(sel) != 0 {
		t.Errorf("the top-level nodeSelector reached the collector: %v", sel)
	}
	if sel, _, _ := unstructured.NestedMap(find(t, lg.Objects, "StatefulSet", "victoria-logs").Object, "spec", "template", "spec", "nodeSelector"); sel["disk"] != "ssd" {
		t.Errorf("VictoriaLogs' nodeSelector %v", sel)
	}

	for vars, want := range map[string]string{
		"metalk8s_logging_retention: 12h":   "variable metalk8s_logging_retention: must be at least 1d",
		"metalk8s_logging_retention: 7":     `variable metalk8s_logging_retention: must be a number and a unit (s, h, d, w, M, y), e.g. 7d or 2w; found "7"`,
		"metalk8s_elasticsearch_enabled: 3": "variable metalk8s_elasticsearch_enabled: must be a boolean",
	} {
		_, err := FromInventory(clusterWith(t, vars, map[string]string{}), testParams(true))
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "group_vars/all.yml") {
			t.Errorf("%s: %v, want an error with %q and where it was set", vars, err, want)
		}
	}
}

func mustFromInventory(t *testing.T, vars string) []*Addon {
	t.Helper()
	as, err := FromInventory(clusterWith(t, vars, map[string]string{}), testParams(true))
	if err != nil {
		t.Fatal(err)
	}
	return as
}

// TestLoggingRelease installs the logging release through its step on a
// real kube-apiserver, then runs the real VictoriaLogs and vlagent (built
// by test/lab/artifacts/build.sh victoria-logs) with the chart's
// arguments: vlagent as in its pod (its service account's token under the
// chart's RBAC, its hostname the pod's name), reading a CRI log file the
// kubelet would have written for a pod of the apiserver. The line is found
// by a LogsQL query with its namespace, pod, container and node. No
// kubelet runs here: the test stands in for it (pod status, log file).
func TestLoggingRelease(t *testing.T) {
	vlBin := kubetest.Binary(t, "victoria-logs", "victoria-logs")
	agentBin := kubetest.Binary(t, "vlagent", "victoria-logs")
	s := kubetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	connect := connector(s)
	lg := addon(t, mustFromInventory(t, "metalk8s_monitoring_enabled: false\nmetalk8s_logging_retention: 2w"), "logging")
	r := &releaseStep{addon: lg, wait: helmkube.HookOnlyStrategy, client: connect}
	if err := r.apply(ctx, nil); err != nil {
		t.Fatalf("apply: %v", err)
	}
	if ch, err := r.check(ctx, nil); err != nil || len(ch.Diff) != 0 {
		t.Errorf("check after apply: %q, %v", ch.Diff, err)
	}
	c, err := connect(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// VictoriaLogs with its StatefulSet's arguments, but for where it
	// stores and listens.
	vlAddr := fmt.Sprintf("127.0.0.1:%d", kubetest.FreePort(t))
	var vlArgs []string
	for _, a := range toStrings(container(t, find(t, lg.Objects, "StatefulSet", "victoria-logs"))["args"]) {
		switch {
		case strings.HasPrefix(a, "-storageDataPath="):
			a = "-storageDataPath=" + t.TempDir()
		case strings.HasPrefix(a, "-httpListenAddr="):
			a = "-httpListenAddr=" + vlAddr
		}
		vlArgs = append(vlArgs, a)
	}
	if !contains(vlArgs, "-retentionPeriod=2w") {
		t.Fatalf("VictoriaLogs' arguments %q lack the inventory's retention", vlArgs)
	}
	startLogged(t, "victoria-logs", exec.Command(vlBin, vlArgs...))
	waitFor(t, "VictoriaLogs' /health", func() error { return httpOK("http://" + vlAddr + "/health") })
	// its web UI, which the README's Access section links
	if err := httpOK("http://" + vlAddr + "/select/vmui/"); err != nil {
		t.Errorf("VictoriaLogs' web UI: %v", err)
	}

	// The node, the collector's own pod on it and a pod whose log it reads.
	node := "node1"
	if _, err := c.Typed().CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := func(ns, name, sa, ctr, id string) {
		t.Helper()
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: corev1.PodSpec{NodeName: node, ServiceAccountName: sa, Containers: []corev1.Container{{Name: ctr, Image: "example.org/x:1"}}}}
		p, err := c.Typed().CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if id == "" {
			return
		}
		p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.233.0.7", ContainerStatuses: []corev1.ContainerStatus{{
			Name: ctr, ContainerID: "containerd://" + id, Ready: true, Image: "example.org/x:1",
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}}}}
		if _, err := c.Typed().CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Typed().CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "logtest"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// (no controller-manager makes the namespace's default service account)
	if _, err := c.Typed().CoreV1().ServiceAccounts("logtest").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	agentPod := "vlagent-x7k2p"
	pod("kube-ops", agentPod, "vlagent", "vlagent", "")
	id := randomHex(t, 32)
	pod("logtest", "writer", "default", "main", id)
	// The kubelet's layout: /var/log/containers/<pod>_<ns>_<container>-<id>.log
	// links to /var/log/pods/<ns>_<pod>_<uid>/<container>/0.log, in CRI's format.
	varlog := t.TempDir()
	line := "metalk8s-logging-test " + randomHex(t, 8)
	file := filepath.Join(varlog, "pods", "logtest_writer_0", "main", "0.log")
	cri := fmt.Sprintf("%s stdout F %s\n", time.Now().UTC().Format(time.RFC3339Nano), line)
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(cri), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(varlog, "containers"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(file, filepath.Join(varlog, "containers", "writer_logtest_main-"+id+".log")); err != nil {
		t.Fatal(err)
	}

	// vlagent as in its pod: the service account's files where a pod has
	// them (a private /run), its hostname the pod's name, the API's
	// in-cluster variables; its DaemonSet's arguments but for the paths
	// and the store's address.
	tok, err := c.Typed().CoreV1().ServiceAccounts("kube-ops").CreateToken(ctx, "vlagent",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("a token of service account kube-ops/vlagent: %v", err)
	}
	sa := t.TempDir()
	ca, _, _ := s.AdminFiles()
	caPEM, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"token": []byte(tok.Status.Token), "ca.crt": caPEM, "namespace": []byte("kube-ops")} {
		if err := os.WriteFile(filepath.Join(sa, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	agentAddr := fmt.Sprintf("127.0.0.1:%d", kubetest.FreePort(t))
	var agentArgs []string
	for _, a := range toStrings(container(t, find(t, lg.Objects, "DaemonSet", "vlagent"))["args"]) {
		k, v, _ := strings.Cut(a, "=")
		switch k {
		case "-kubernetesCollector.logsPath":
			v = filepath.Join(varlog, strings.TrimPrefix(v, "/var/log/"))
		case "-remoteWrite.url":
			u, err := url.Parse(v)
			if err != nil {
				t.Fatal(err)
			}
			u.Host = vlAddr
			v = u.String()
		case "-tmpDataPath":
			v = t.TempDir()
		case "-httpListenAddr":
			v = agentAddr
		}
		if v != "" {
			a = k + "=" + v
		}
		agentArgs = append(agentArgs, a)
	}
	script := `mount -t tmpfs tmpfs /run && mkdir -p /run/secrets/kubernetes.io/serviceaccount &&
mount --bind "$SA" /run/secrets/kubernetes.io/serviceaccount && hostname "$POD" && exec "$@"`
	cmd := exec.Command("unshare", append([]string{"--mount", "--uts", "--kill-child", "--", "sh", "-c", script, "sh", agentBin}, agentArgs...)...)
	cmd.Env = append(os.Environ(), "SA="+sa, "POD="+agentPod, "KUBERNETES_SERVICE_HOST=127.0.0.1", fmt.Sprintf("KUBERNETES_SERVICE_PORT=%d", s.Port))
	startLogged(t, "vlagent", cmd)
	waitFor(t, "vlagent's /health (its readiness probe)", func() error { return httpOK("http://" + agentAddr + "/health") })

	// The line, found by its words, with the kubelet's names.
	want := map[string]string{"_msg": line, "kubernetes.pod_namespace": "logtest", "kubernetes.pod_name": "writer",
		"kubernetes.container_name": "main", "kubernetes.pod_node_name": node}
	waitFor(t, "the pod's line in VictoriaLogs", func() error {
		rows, err := logsQuery(vlAddr, fmt.Sprintf("%q", line))
		if err != nil {
			return err
		}
		if len(rows) != 1 {
			return fmt.Errorf("%d rows for %q", len(rows), line)
		}
		for k, v := range want {
			if rows[0][k] != v {
				return fmt.Errorf("field %s is %q, want %q (row %v)", k, rows[0][k], v, rows[0])
			}
		}
		return nil
	})

	// Disabled: the release goes, and every workload with it.
	lg = addon(t, mustFromInventory(t, "metalk8s_elasticsearch_enabled: no"), "logging")
	r = &releaseStep{addon: lg, wait: helmkube.HookOnlyStrategy, client: connect}
	ch, err := r.check(ctx, nil)
	if err != nil || len(ch.Diff) != 1 || !strings.Contains(ch.Diff[0], "- uninstall release kube-ops/logging") ||
		!strings.Contains(ch.Diff[0], "metalk8s_elasticsearch_enabled is false") || len(ch.Warnings) != 1 {
		t.Errorf("disabled by MetalK8s 0.x's variable: %q, warnings %q, %v", ch.Diff, ch.Warnings, err)
	}
	if err := r.apply(ctx, nil); err != nil {
		t.Fatalf("uninstall: %v", err)
	}
	testNoWorkloads(ctx, t, c)
}

// testNoWorkloads fails unless kube-ops has no StatefulSet, DaemonSet or
// release record left.
func testNoWorkloads(ctx context.Context, t *testing.T, c *kube.Client) {
	t.Helper()
	sts, err1 := c.Typed().AppsV1().StatefulSets("kube-ops").List(ctx, metav1.ListOptions{})
	ds, err2 := c.Typed().AppsV1().DaemonSets("kube-ops").List(ctx, metav1.ListOptions{})
	rel, err3 := c.Typed().CoreV1().Secrets("kube-ops").List(ctx, metav1.ListOptions{LabelSelector: "owner=helm,name=logging"})
	if err1 != nil || err2 != nil || err3 != nil || len(sts.Items)+len(ds.Items)+len(rel.Items) != 0 {
		t.Errorf("after uninstalling: %d StatefulSets, %d DaemonSets, %d release records (%v %v %v)",
			len(sts.Items), len(ds.Items), len(rel.Items), err1, err2, err3)
	}
}

// logsQuery runs a LogsQL query on VictoriaLogs at addr: one map per
// row (its JSON lines).
func logsQuery(addr, query string) ([]map[string]string, error) {
	resp, err := http.PostForm("http://"+addr+"/select/logsql/query", url.Values{"query": {query}})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("query %s: %s", query, resp.Status)
	}
	var rows []map[string]string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var row map[string]string
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			return nil, fmt.Errorf("query %s: %w", query, err)
		}
		rows = append(rows, row)
	}
	return rows, sc.Err()
}

// httpOK is nil when GET u answers 200.
func httpOK(u string) error {
	resp, err := http.Get(u)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return nil
}

func randomHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
