package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"math/big"
	"net"
	"sort"
	"strings"
)

// newKey makes an RSA key of rsaBits bits, or an ECDSA P-256 key when
// rsaBits is 0.
func newKey(rsaBits int) (crypto.Signer, error) {
	if rsaBits > 0 {
		return rsa.GenerateKey(rand.Reader, rsaBits)
	}
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

// sign makes a new key and a certificate for it from tmpl, signed by ca
// (self-signed when ca is nil). The serial is 128 random bits.
func sign(tmpl *x509.Certificate, ca *authority, rsaBits int) ([]byte, crypto.Signer, error) {
	key, err := newKey(rsaBits)
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
