// Package pki makes and keeps certificate authorities, their leaf
// certificates and the service-account key on the operator's machine, in
// Go (stdlib crypto): the etcd PKI and the Kubernetes CAs that kubeadm
// signs its own certificates with. It also recovers a lost local copy from
// the nodes (recover.go).
//
// Rules (after kubeadm's and kubespray's): certificates are reused; a leaf
// is renewed within 90 days of expiry, when its SANs change or when it is
// not signed by the current CA; a CA close to expiry is an error, never
// rotated silently; files are 0600 in 0700 directories, written
// atomically; Plan never writes.
package pki

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"path"
	"path/filepath"
	"time"
)

const (
	// RenewBefore: leaves this close to expiry are renewed; a CA this
	// close is an error.
	RenewBefore = 90 * 24 * time.Hour
	skew        = 5 * time.Minute // NotBefore is back-dated by this much
)

// CA names a certificate authority kept as Name.crt and Name.key in a
// Set's directory. It is valid 10 years (kubeadm's
// CACertificateValidityPeriod).
type CA struct {
	Name       string    // file base name: "ca", "front-proxy-ca"
	CommonName string    // kubeadm's: "etcd-ca", "kubernetes", "front-proxy-ca"
	Label      string    // for messages: "etcd", "Kubernetes", "front-proxy"
	Algorithm  Algorithm // the CA key's; "": ECDSA P-256
}

// Leaf is one certificate signed by a Set's CA, valid one year (kubeadm's
// CertificateValidityPeriod) and never past its CA, with an ECDSA P-256 key.
type Leaf struct {
	Name         string // path in the directory without .crt/.key: "node1/server"
	CommonName   string
	Organization []string
	Usage        []x509.ExtKeyUsage
	SANs         []string // DNS names and IP addresses; nil for client certs
}

// Set is one CA kept in Dir and the leaves it signs.
type Set struct {
	Dir    string
	Now    func() time.Time // nil means time.Now
	CA     CA
	Leaves []Leaf
}

// authority is a loaded CA.
type authority struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// todo is one line of a plan: the CA (leaf == nil) or a leaf to (re)make.
type todo struct {
	leaf *Leaf
	line string
}

// Plan lists what Ensure would create or renew ("+ create ca.crt",
// "~ renew node1/server.crt (expires 2027-01-02, within 90 days)"),
// without writing anything. Errors: no Dir, an unusable CA (unreadable, a
// key that does not match, not a CA, within 90 days of expiry).
func (s *Set) Plan() ([]string, error) {
	_, todos, err := s.plan()
	if err != nil {
		return nil, err
	}
	return lines(todos), nil
}

// Ensure creates or renews what Plan lists and returns the same lines. On
// error it returns the lines already done.
func (s *Set) Ensure() ([]string, error) {
	ca, todos, err := s.plan()
	if err != nil || len(todos) == 0 {
		return nil, err
	}
	if err := MkdirPrivate(s.Dir); err != nil {
		return nil, err
	}
	for i, t := range todos {
		if t.leaf == nil {
			ca, err = s.createCA()
		} else {
			err = s.issue(ca, t.leaf)
		}
		if err != nil {
			return lines(todos[:i]), err
		}
	}
	return lines(todos), nil
}

func (s *Set) plan() (*authority, []todo, error) {
	if s.Dir == "" {
		return nil, nil, fmt.Errorf("%s PKI: no directory", s.CA.Label)
	}
	ca, err := s.loadCA()
	if err != nil {
		return nil, nil, err
	}
	var todos []todo
	if ca == nil {
		todos = append(todos, todo{line: "+ create " + s.CA.Name + ".crt"})
	}
	for i := range s.Leaves {
		if line := s.check(ca, &s.Leaves[i]); line != "" {
			todos = append(todos, todo{leaf: &s.Leaves[i], line: line})
		}
	}
	return ca, todos, nil
}

// loadCA returns the CA, or nil if its certificate does not exist yet.
func (s *Set) loadCA() (*authority, error) {
	crt := s.Path(s.CA.Name + ".crt")
	if err := stat(crt); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	cert, key, bad := s.loadPair(s.CA.Name)
	if bad != nil {
		return nil, fmt.Errorf("%s: %s", s.Path(bad.name), bad.why)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("%s: not a CA certificate", crt)
	}
	if !s.now().Add(RenewBefore).Before(cert.NotAfter) {
		return nil, fmt.Errorf("%s: the %s CA expires %s, within 90 days; CA rotation is not automatic, replace the CA by hand",
			crt, s.CA.Label, day(cert.NotAfter))
	}
	return &authority{cert: cert, key: key}, nil
}

// check says why l must be made again, or "" if it can be kept.
func (s *Set) check(ca *authority, l *Leaf) string {
	renew := func(why string) string { return "~ renew " + l.Name + ".crt (" + why + ")" }
	cert, _, bad := s.loadPair(l.Name)
	now := s.now()
	switch {
	case bad != nil && bad.name == l.Name+".crt" && bad.why == missing:
		return "+ create " + l.Name + ".crt"
	case bad != nil:
		return renew(path.Base(bad.name) + " " + bad.why)
	case ca == nil || cert.CheckSignatureFrom(ca.cert) != nil:
		return renew("not signed by the current CA")
	case now.After(cert.NotAfter):
		return renew("expired " + day(cert.NotAfter))
	case !now.Add(RenewBefore).Before(cert.NotAfter):
		return renew("expires " + day(cert.NotAfter) + ", within 90 days")
	}
	if l.SANs != nil {
		if diff := sanDiff(SANSet(l.SANs), CertSANs(cert)); diff != "" {
			return renew("SANs changed: " + diff)
		}
	}
	return ""
}

// createCA makes and writes a new CA.
func (s *Set) createCA() (*authority, error) {
	now := s.now()
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: s.CA.CommonName},
		NotBefore:             now.Add(-skew),
		NotAfter:              now.AddDate(10, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, key, err := sign(tmpl, nil, s.CA.Algorithm)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.Path(s.CA.Name+".crt"), err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	if err := s.writePair(s.CA.Name, der, key); err != nil {
		return nil, err
	}
	return &authority{cert: cert, key: key}, nil
}

// issue makes and writes a new key and certificate for l, signed by ca.
func (s *Set) issue(ca *authority, l *Leaf) error {
	now := s.now()
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: l.CommonName, Organization: l.Organization},
		NotBefore:             now.Add(-skew),
		NotAfter:              now.AddDate(1, 0, 0),
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           l.Usage,
	}
	if tmpl.NotAfter.After(ca.cert.NotAfter) {
		tmpl.NotAfter = ca.cert.NotAfter // no use outliving the CA
	}
	for _, san := range SANSet(l.SANs) {
		if ip := net.ParseIP(san); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, san)
		}
	}
	der, key, err := sign(tmpl, ca, ECDSAP256)
	if err != nil {
		return fmt.Errorf("%s: %w", s.Path(l.Name+".crt"), err)
	}
	return s.writePair(l.Name, der, key)
}

// writePair writes name.key then name.crt (WriteFiles).
func (s *Set) writePair(name string, der []byte, key crypto.Signer) error {
	keyPEM, err := encodeKey(key)
	if err != nil {
		return err
	}
	return WriteFiles(File{s.Path(name + ".key"), keyPEM}, File{s.Path(name + ".crt"), certPEM(der)})
}

// badFile says what is wrong with one file of a certificate/key pair.
type badFile struct {
	name string // in Dir, e.g. "node1/server.key"
	why  string
}

const missing = "missing"

// loadPair reads name.crt and name.key and checks that they belong together.
func (s *Set) loadPair(name string) (*x509.Certificate, crypto.Signer, *badFile) {
	crt, keyName := name+".crt", name+".key"
	cert, err := ReadCert(s.Path(crt))
	if err != nil {
		return nil, nil, &badFile{crt, reason(err)}
	}
	key, err := ReadKey(s.Path(keyName))
	if err != nil {
		return nil, nil, &badFile{keyName, reason(err)}
	}
	if !samePublic(cert.PublicKey, key.Public()) {
		return nil, nil, &badFile{keyName, "does not match " + path.Base(crt)}
	}
	return cert, key, nil
}

// CheckPair says whether name.crt and name.key in Dir exist and match: nil,
// or an error naming the file and what is wrong.
func (s *Set) CheckPair(name string) error {
	if _, _, bad := s.loadPair(name); bad != nil {
		return fmt.Errorf("%s: %s", s.Path(bad.name), bad.why)
	}
	return nil
}

func reason(err error) string {
	if errors.Is(err, fs.ErrNotExist) {
		return missing
	}
	return "unreadable: " + err.Error()
}

func (s *Set) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Path turns a slash-separated name in Dir ("node1/server.crt") into a
// file path.
func (s *Set) Path(name string) string { return filepath.Join(s.Dir, filepath.FromSlash(name)) }

func lines(todos []todo) []string {
	var out []string
	for _, t := range todos {
		out = append(out, t.line)
	}
	return out
}

func day(t time.Time) string { return t.UTC().Format("2006-01-02") }
