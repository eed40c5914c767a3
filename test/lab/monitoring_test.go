package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/metalk8s/metalk8s/pkg/node"
	"github.com/metalk8s/metalk8s/pkg/ssh"
)

// testNodeExporter checks the node-exporter service on every node, etcd
// members and workers alike: the bundle's node_exporter answers on port
// 9100 under a dynamic user, its metrics parse (Prometheus's own text
// parser) and report the root filesystem and each mounted LVM volume.
// Then monitoring is disabled: plan shows the service's removal, up
// removes it (nothing answers any more), and enabled again it is back.
func (l *lab) testNodeExporter(t *testing.T, m manifest, bundleDir string) {
	want := strings.TrimPrefix(m.Versions.NodeExporter, "v")
	if want == "" {
		t.Fatal("the bundle's manifest has no node_exporter version")
	}
	for i := 1; i <= nodes; i++ {
		host := fmt.Sprintf("node%d", i)
		fams, err := l.scrape(host)
		if err != nil {
			t.Errorf("%s: %v", host, err)
			continue
		}
		if v := label(fams["node_exporter_build_info"], "version"); v != want {
			t.Errorf("%s: node_exporter_build_info version %q, want %q", host, v, want)
		}
		mounts := map[string]bool{}
		for _, mt := range fams["node_filesystem_size_bytes"].GetMetric() {
			for _, lp := range mt.GetLabel() {
				if lp.GetName() == "mountpoint" {
					mounts[lp.GetValue()] = true
				}
			}
		}
		out := l.exec(t, host, "findmnt -rn -o TARGET | grep '^/mnt/vg_metalk8s/'; ps -o user= -C node_exporter")
		lines := strings.Split(strings.TrimSpace(out), "\n")[1:] // after "== host: ok"
		if len(lines) < 2 {
			t.Errorf("%s: volumes and the service's user: %q", host, out)
			continue
		}
		if !mounts["/"] {
			t.Errorf("%s: no node_filesystem_size_bytes for /", host)
		}
		for _, mp := range lines[:len(lines)-1] {
			if !mounts[mp] {
				t.Errorf("%s: no node_filesystem_size_bytes for the volume at %s", host, mp)
			}
		}
		if u := lines[len(lines)-1]; u == "root" || u == "" {
			t.Errorf("%s: node_exporter runs as %q, want a dynamic user", host, u)
		}
		if strings.Contains(strings.Join(keys(mounts), " "), "/var/lib/kubelet/pods/") {
			t.Errorf("%s: pods' volumes are reported: %v", host, keys(mounts))
		}
		// The textfile collector reads its directory; an etcd member's
		// certificates are there, each expiring in more than 30 days.
		if f := fams["node_textfile_scrape_error"]; f == nil || f.GetMetric()[0].GetGauge().GetValue() != 0 {
			t.Errorf("%s: node_textfile_scrape_error %v, want 0", host, f)
		}
		if i > etcdMembers() {
			continue
		}
		certs := fams["metalk8s_certificate_expiration_timestamp_seconds"].GetMetric()
		if len(certs) < 5 {
			t.Errorf("%s: %d etcd certificates' expiry metrics, want the CA, server, peer and two clients'", host, len(certs))
		}
		for _, c := range certs {
			if at := time.Unix(int64(c.GetGauge().GetValue()), 0); time.Until(at) < 30*24*time.Hour {
				t.Errorf("%s: a certificate expires at %s: %v", host, at, c.GetLabel())
			}
		}
	}

	// Disabled: removed from every node; enabled again: back.
	gv := filepath.Join(filepath.Dir(l.inv), "host_vars", "node1.yml")
	if err := os.MkdirAll(filepath.Dir(gv), 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(gv)
	os.WriteFile(gv, []byte("metalk8s_node_exporter_enabled: false\n"), 0o644)
	out, err := l.metalk8sErr(5*time.Minute, "plan", l.inv, "--known-hosts", l.known, "--bundle", bundleDir, "--only", "preflight,prepare")
	if exitCode(err) != 3 || strings.Count(out, "- stop and remove "+node.NodeExporterUnit) != nodes {
		t.Errorf("plan with monitoring disabled: exit %d, want 3 and the service's removal on %d nodes:\n%s", exitCode(err), nodes, out)
	}
	l.metalk8s(t, 10*time.Minute, "up", l.inv, "--known-hosts", l.known, "--bundle", bundleDir, "--only", "preflight,prepare")
	for i := 1; i <= nodes; i++ {
		if _, err := l.scrape(fmt.Sprintf("node%d", i)); err == nil {
			t.Errorf("node%d: node_exporter still answers with monitoring disabled", i)
		}
	}
	os.Remove(gv)
	l.metalk8s(t, 10*time.Minute, "up", l.inv, "--known-hosts", l.known, "--bundle", bundleDir, "--only", "preflight,prepare")
	for i := 1; i <= nodes; i++ {
		if _, err := l.scrape(fmt.Sprintf("node%d", i)); err != nil {
			t.Errorf("node%d: enabled again: %v", i, err)
		}
	}
}

// etcdMembers is how many of the lab's nodes (the first ones) are etcd
// members: LAB_ETCD_MEMBERS, else all.
func etcdMembers() int {
	if n, err := strconv.Atoi(os.Getenv("LAB_ETCD_MEMBERS")); err == nil {
		return n
	}
	return nodes
}

// scrape reads host's node_exporter metrics from the node itself (bash's
// /dev/tcp: the lab's Debian has no curl) and parses them.
func (l *lab) scrape(host string) (map[string]*dto.MetricFamily, error) {
	return l.scrapeFrom(host, "127.0.0.1", node.NodeExporterPort, "/metrics")
}

// scrapeFrom GETs http://addr:port/path from host and parses the answer
// as Prometheus's text format.
func (l *lab) scrapeFrom(host, addr string, port int, path string) (map[string]*dto.MetricFamily, error) {
	cmd := fmt.Sprintf(`exec 3<>/dev/tcp/%s/%d && printf 'GET %s HTTP/1.0\r\n\r\n' >&3 && timeout 20 cat <&3`, addr, port, path)
	out, err := l.metalk8sErr(time.Minute, "exec", "-i", l.inv, "--known-hosts", l.known, "--limit", host, "--", "bash -c "+ssh.Quote(cmd))
	if err != nil {
		return nil, fmt.Errorf("GET %s:%d%s: %v: %s", addr, port, path, err, lastLines(out, 5))
	}
	_, body, ok := strings.Cut(out, "\r\n\r\n")
	if !ok || !strings.Contains(out, " 200 OK") {
		return nil, fmt.Errorf("GET %s:%d%s: no 200 answer: %s", addr, port, path, lastLines(out, 5))
	}
	body, _, _ = strings.Cut(body, "\n-- stderr:\n")
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(strings.NewReader(body))
}

// label is the value of a label of the family's first metric.
func label(f *dto.MetricFamily, name string) string {
	for _, mt := range f.GetMetric() {
		for _, lp := range mt.GetLabel() {
			if lp.GetName() == name {
				return lp.GetValue()
			}
		}
	}
	return ""
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
