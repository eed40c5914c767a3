package etcd

import (
	"crypto/x509"

	"github.com/metalk8s/metalk8s/pkg/pki"
)

// wantSANs is a member's SANs plus the loopback names.
func wantSANs(sans []string) []string {
	return pki.SANSet(append(append([]string{}, sans...), "localhost", "127.0.0.1", "::1"))
}

func readCert(file string) (*x509.Certificate, error) { return pki.ReadCert(file) }

func certSANs(cert *x509.Certificate) []string { return pki.CertSANs(cert) }
