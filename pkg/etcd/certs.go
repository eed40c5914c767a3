package etcd

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// authority is the CA that signs the leaves.
type authority struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// badFile says what is wrong with one file of a cert/key pair.
type badFile struct {
	name string // in Dir, e.g. "node1/server.key"
	why  string
}

const missing = "missing"

// loadPair reads name.crt and name.key and checks that they belong together.
func (p *PKI) loadPair(name string) (*x509.Certificate, crypto.Signer, *badFile) {
	crt, key := name+".crt", name+".key"
	cert, err := readCert(p.path(crt))
	if err != nil {
		return nil, nil, &badFile{crt, reason(err)}
	}
	signer, err := readKey(p.path(key))
	if err != nil {
		return nil, nil, &badFile{key, reason(err)}
	}
	pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(signer.Public()) {
		return nil, nil, &badFile{key, "does not match " + path.Base(crt)}
	}
	return cert, signer, nil
}

func reason(err error) string {
	if errors.Is(err, fs.ErrNotExist) {
		return missing
	}
	return "unreadable: " + err.Error()
}

func readCert(file string) (*x509.Certificate, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no CERTIFICATE PEM block")
	}
	return x509.ParseCertificate(block.Bytes)
}

func readKey(file string) (crypto.Signer, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	var key any
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("unexpected PEM block %q", block.Type)
	}
	if err != nil {
		return nil, err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, errors.New("not a signing key")
	}
	return signer, nil
}

// createCA makes and writes a new CA.
func (p *PKI) createCA() (*authority, error) {
	now := p.now()
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "etcd-ca"},
		NotBefore:             now.Add(-skew),
		NotAfter:              now.AddDate(10, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, key, err := sign(tmpl, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", p.path("ca.crt"), err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	if err := p.writePair("ca", der, key); err != nil {
		return nil, err
	}
	return &authority{cert: cert, key: key}, nil
}

// issue makes and writes a new key and cert for l, signed by ca.
func (p *PKI) issue(ca *authority, l *leaf) error {
	if dir := path.Dir(l.name); dir != "." {
		if err := mkdirPrivate(p.path(dir)); err != nil {
			return err
		}
	}
	now := p.now()
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: l.cn, Organization: l.org},
		NotBefore:             now.Add(-skew),
		NotAfter:              now.AddDate(1, 0, 0),
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           l.usage,
	}
	if tmpl.NotAfter.After(ca.cert.NotAfter) {
		tmpl.NotAfter = ca.cert.NotAfter // no use outliving the CA
	}
	for _, s := range l.sans {
		if ip := net.ParseIP(s); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, s)
		}
	}
	der, key, err := sign(tmpl, ca)
	if err != nil {
		return fmt.Errorf("%s: %v", p.path(l.name+".crt"), err)
	}
	return p.writePair(l.name, der, key)
}

// sign makes a P-256 key and a cert for it from tmpl, signed by ca
// (self-signed when ca is nil).
func sign(tmpl *x509.Certificate, ca *authority) ([]byte, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl.SerialNumber, err = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, err
	}
	parent, signer := tmpl, crypto.Signer(key)
	if ca != nil {
		parent, signer = ca.cert, ca.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	return der, key, err
}

// writePair writes name.key and name.crt. Both go to temp files first; the
// key is renamed before the cert, so a crash in between leaves a key that
// does not match the cert, which the next run renews.
func (p *PKI) writePair(name string, der []byte, key *ecdsa.PrivateKey) error {
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	files := []struct {
		path string
		data []byte
	}{
		{p.path(name + ".key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})},
		{p.path(name + ".crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})},
	}
	var tmps []string
	defer func() {
		for _, t := range tmps {
			os.Remove(t) // already renamed on success
		}
	}()
	for _, f := range files {
		tmp, err := writeTemp(f.path, f.data)
		if err != nil {
			return err
		}
		tmps = append(tmps, tmp)
	}
	for i, f := range files {
		if err := os.Rename(tmps[i], f.path); err != nil {
			return err
		}
	}
	return nil
}

// writeTemp writes data to a new 0600 file next to file and returns its name.
func writeTemp(file string, data []byte) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".*")
	if err != nil {
		return "", err
	}
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("%s: %v", file, err)
	}
	return f.Name(), nil
}

// mkdirPrivate makes dir (mode 0700) if needed and makes sure of its mode.
func mkdirPrivate(dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return os.Chmod(dir, 0o700)
}

// wantSANs is a member's SANs plus the loopback names.
func wantSANs(sans []string) []string {
	return sanSet(append(append([]string{}, sans...), "localhost", "127.0.0.1", "::1"))
}

// certSANs is the SAN set a cert carries.
func certSANs(cert *x509.Certificate) []string {
	sans := append([]string{}, cert.DNSNames...)
	for _, ip := range cert.IPAddresses {
		sans = append(sans, ip.String())
	}
	return sanSet(sans)
}

// sanSet normalises (IPs by value, DNS names lower-case), dedups and sorts.
func sanSet(in []string) []string {
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

// sanDiff is "+added -removed" going from have to want, or "" if equal.
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
