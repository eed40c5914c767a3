package lab

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// testAddons checks the addons up installed: each a deployed Helm release
// (Helm's own storage: a Secret per revision, labelled by Helm), and
// metrics-server serving the metrics API (kubectl top nodes).
func (l *lab) testAddons(t *testing.T) {
	out := l.mustKubectl(t, "", "get", "secrets", "-n", "kube-system", "-l", "owner=helm,name=metrics-server",
		"-o", `jsonpath={range .items[*]}{.metadata.labels.version} {.metadata.labels.status}{"\n"}{end}`)
	t.Logf("metrics-server's Helm revisions:\n%s", out)
	if !strings.Contains(out, " deployed\n") {
		t.Errorf("no deployed revision of the metrics-server release")
	}
	eventually(t, 5*time.Minute, "kubectl top nodes lists the 3 nodes", func() error {
		out, err := l.kubectl(time.Minute, "", "top", "nodes", "--no-headers")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		for i := 1; i <= nodes; i++ {
			if !strings.Contains(out, fmt.Sprintf("node%d ", i)) {
				return fmt.Errorf("no node%d:\n%s", i, out)
			}
		}
		return nil
	})
	out, err := l.kubectl(time.Minute, "", "top", "pods", "-n", "kube-system", "--no-headers")
	t.Logf("kubectl top pods -n kube-system: %v\n%s", err, out)
	if err != nil || !strings.Contains(out, "kube-apiserver-node1 ") {
		t.Errorf("kubectl top pods lists no kube-apiserver-node1")
	}
}
