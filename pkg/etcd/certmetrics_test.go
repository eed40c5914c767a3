package etcd

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The expiry metrics parse as Prometheus's text format (its own parser)
// and give each certificate's NotAfter.
func TestCertMetrics(t *testing.T) {
	p := newPKI(t, time.Now())
	ensure(t, p, testMembers)
	member := testMembers[0].Name
	files, err := certFiles(p, member)
	if err != nil {
		t.Fatal(err)
	}
	last := files[len(files)-1]
	if last.Path != CertMetricsFile || last.Mode != 0o644 {
		t.Fatalf("the last file is %s (%o), want %s (0644)", last.Path, last.Mode, CertMetricsFile)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(last.Data)))
	if err != nil {
		t.Fatalf("%v:\n%s", err, last.Data)
	}
	samples := fams["metalk8s_certificate_expiration_timestamp_seconds"].GetMetric()
	if len(samples) != 5 {
		t.Fatalf("%d samples, want 5 (ca, server, peer, healthcheck-client, apiserver-etcd-client):\n%s", len(samples), last.Data)
	}
	for _, s := range samples {
		labels := map[string]string{}
		for _, l := range s.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		name, ok := NodeFiles(member)[labels["file"]]
		if !ok || labels["component"] != "etcd" || labels["subject"] == "" {
			t.Errorf("labels %v", labels)
			continue
		}
		cert, err := readCert(p.path(name))
		if err != nil {
			t.Fatal(err)
		}
		if got := int64(s.GetGauge().GetValue()); got != cert.NotAfter.Unix() {
			t.Errorf("%s: %d, want its NotAfter %d", labels["file"], got, cert.NotAfter.Unix())
		}
	}
	if _, err := certMetrics(map[string][]byte{"/x/bad.crt": []byte("not PEM")}); err == nil || !strings.Contains(err.Error(), "/x/bad.crt") {
		t.Errorf("a broken certificate: %v", err)
	}
}
