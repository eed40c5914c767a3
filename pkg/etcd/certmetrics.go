package etcd

import (
	"fmt"
	"strings"

	"github.com/metalk8s/metalk8s/pkg/pki"
)

// CertMetricsFile is where each etcd node gets its certificates' expiry
// times, in Prometheus's text format, for node-exporter's textfile
// collector (node.TextfileDir): etcd itself does not export them.
const CertMetricsFile = "/var/lib/node-exporter/textfile/metalk8s-etcd-certificates.prom"

// certMetrics is CertMetricsFile's content for a member's files (path on
// the node: PEM, as PKI.Files returns them): one
// metalk8s_certificate_expiration_timestamp_seconds sample (Unix seconds)
// per certificate, labelled with its file and subject, sorted by file.
// A .crt file that holds no certificate is an error naming it.
func certMetrics(files map[string][]byte) ([]byte, error) {
	var b strings.Builder
	b.WriteString("# HELP metalk8s_certificate_expiration_timestamp_seconds When a certificate metalk8s installed expires (Unix time).\n")
	b.WriteString("# TYPE metalk8s_certificate_expiration_timestamp_seconds gauge\n")
	for _, path := range sortedNames(files) {
		if !strings.HasSuffix(path, ".crt") {
			continue
		}
		cert, err := pki.ParseCert(files[path])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		fmt.Fprintf(&b, "metalk8s_certificate_expiration_timestamp_seconds{component=\"etcd\",file=%q,subject=%q} %d\n",
			path, cert.Subject.String(), cert.NotAfter.Unix())
	}
	return []byte(b.String()), nil
}
