package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"math/big"
	"net"
	"sort"
	"strings"
)

// Algorithm is a key type under kubeadm's names for
// ClusterConfiguration.encryptionAlgorithm (v1beta4 EncryptionAlgorithmType),
// which kubespray sets from kube_asymmetric_encryption_algorithm.
type Algorithm string

// The algorithms kubeadm v1beta4 accepts; "" means ECDSAP256.
const (
	RSA2048   Algorithm = "RSA-2048" // kubeadm's and kubespray's default
	RSA3072   Algorithm = "RSA-3072"
	RSA4096   Algorithm = "RSA-4096"
	ECDSAP256 Algorithm = "ECDSA-P256"
	ECDSAP384 Algorithm = "ECDSA-P384"
)

// Algorithms lists every Algorithm, in kubeadm's order of its constants.
var Algorithms = []Algorithm{ECDSAP256, ECDSAP384, RSA2048, RSA3072, RSA4096}

// newKey makes a key of the algorithm; an unknown one is an error.
func newKey(alg Algorithm) (crypto.Signer, error) {
	switch alg {
	case RSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case RSA3072:
		return rsa.GenerateKey(rand.Reader, 3072)
	case RSA4096:
		return rsa.GenerateKey(rand.Reader, 4096)
	case ECDSAP256, "":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case ECDSAP384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	}
	return nil, fmt.Errorf("unknown key algorithm %q (one of %v)", alg, Algorithms)
}

// sign makes a new key of alg and a certificate for it from tmpl, signed
// by ca (self-signed when ca is nil). The serial is 128 random bits.
func sign(tmpl *x509.Certificate, ca *authority, alg Algorithm) ([]byte, crypto.Signer, error) {
	key, err := newKey(alg)
	if err != nil {
		return nil, nil, err
	}
	tmpl.SerialNumber, err = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, err
	}
	parent, signer := tmpl, key
	if ca != nil {
		parent, signer = ca.cert, ca.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	return der, key, err
}

// CertSANs is the normalised SAN set a certificate carries (SANSet).
func CertSANs(cert *x509.Certificate) []string {
	sans := append([]string{}, cert.DNSNames...)
	for _, ip := range cert.IPAddresses {
		sans = append(sans, ip.String())
	}
	return SANSet(sans)
}

// SANSet normalises SANs (IP addresses by value, DNS names lower-case),
// drops blanks and duplicates, and sorts them.
func SANSet(in []string) []string {
	seen := map[string]bool{}
	out := []string{}
	for _, s := range in {
		s = strings.TrimSpace(s)
		if ip := net.ParseIP(s); ip != nil {
			s = ip.String()
		} else {
			s = strings.ToLower(s)
		}
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// sanDiff is "+added -removed" going from have to want (both SANSets),
// or "" if they are equal.
func sanDiff(want, have []string) string {
	in := func(set []string, s string) bool {
		i := sort.SearchStrings(set, s)
		return i < len(set) && set[i] == s
	}
	var diff []string
	for _, s := range want {
		if !in(have, s) {
			diff = append(diff, "+"+s)
		}
	}
	for _, s := range have {
		if !in(want, s) {
			diff = append(diff, "-"+s)
		}
	}
	return strings.Join(diff, " ")
}
