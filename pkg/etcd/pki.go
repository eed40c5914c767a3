// Package etcd keeps the etcd PKI on the operator's machine: a CA, a server
// and a peer cert per member, and the healthcheck and apiserver client certs.
package etcd

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// Member is one etcd host: its name and the names/addresses its server cert must carry.
type Member struct {
	Name string   // inventory host name
	SANs []string // DNS names and IP addresses
}

// PKI is the set of etcd certificates kept in Dir.
type PKI struct {
	Dir string
	Now func() time.Time // nil means time.Now
}

const (
	renewBefore = 90 * 24 * time.Hour
	skew        = 5 * time.Minute
)

// leaf is one certificate signed by the CA; name is its path in Dir
// without the .crt/.key extension.
type leaf struct {
	name  string
	cn    string
	org   []string
	usage []x509.ExtKeyUsage
	sans  []string // normalised; nil for client certs
}

// step is one line of a plan: the CA (leaf == nil) or a leaf to (re)make.
type step struct {
	leaf *leaf
	line string
}

// Plan says what Ensure would create or renew, without writing anything.
func (p *PKI) Plan(members []Member) ([]string, error) {
	_, steps, err := p.plan(members)
	if err != nil {
		return nil, err
	}
	return lines(steps), nil
}

// Ensure creates or renews what Plan lists and returns the same lines.
// On error it returns the lines already done.
func (p *PKI) Ensure(members []Member) ([]string, error) {
	ca, steps, err := p.plan(members)
	if err != nil || len(steps) == 0 {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(p.Dir), 0o755); err != nil {
		return nil, err
	}
	if err := mkdirPrivate(p.Dir); err != nil {
		return nil, err
	}
	for i, s := range steps {
		if s.leaf == nil {
			ca, err = p.createCA()
		} else {
			err = p.issue(ca, s.leaf)
		}
		if err != nil {
			return lines(steps[:i]), err
		}
	}
	return lines(steps), nil
}

func (p *PKI) plan(members []Member) (*authority, []step, error) {
	if p.Dir == "" {
		return nil, nil, errors.New("etcd PKI: no directory")
	}
	leaves, err := leaves(members)
	if err != nil {
		return nil, nil, err
	}
	ca, err := p.loadCA()
	if err != nil {
		return nil, nil, err
	}
	var steps []step
	if ca == nil {
		steps = append(steps, step{line: "+ create ca.crt"})
	}
	for i := range leaves {
		if line := p.check(ca, &leaves[i]); line != "" {
			steps = append(steps, step{leaf: &leaves[i], line: line})
		}
	}
	return ca, steps, nil
}

// loadCA returns the CA, or nil if ca.crt does not exist yet.
func (p *PKI) loadCA() (*authority, error) {
	if _, err := os.Stat(p.path("ca.crt")); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	cert, key, bad := p.loadPair("ca")
	if bad != nil {
		return nil, fmt.Errorf("%s: %s", p.path(bad.name), bad.why)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("%s: not a CA certificate", p.path("ca.crt"))
	}
	if !p.now().Add(renewBefore).Before(cert.NotAfter) {
		return nil, fmt.Errorf("%s: the etcd CA expires %s, within 90 days; CA rotation is not automatic, replace the CA by hand",
			p.path("ca.crt"), day(cert.NotAfter))
	}
	return &authority{cert: cert, key: key}, nil
}

// check says why l must be made again, or "" if it can be kept.
func (p *PKI) check(ca *authority, l *leaf) string {
	renew := func(why string) string { return "~ renew " + l.name + ".crt (" + why + ")" }
	cert, _, bad := p.loadPair(l.name)
	now := p.now()
	switch {
	case bad != nil && bad.name == l.name+".crt" && bad.why == missing:
		return "+ create " + l.name + ".crt"
	case bad != nil:
		return renew(path.Base(bad.name) + " " + bad.why)
	case ca == nil || cert.CheckSignatureFrom(ca.cert) != nil:
		return renew("not signed by the current CA")
	case now.After(cert.NotAfter):
		return renew("expired " + day(cert.NotAfter))
	case !now.Add(renewBefore).Before(cert.NotAfter):
		return renew("expires " + day(cert.NotAfter) + ", within 90 days")
	}
	if l.sans != nil {
		if diff := sanDiff(l.sans, certSANs(cert)); diff != "" {
			return renew("SANs changed: " + diff)
		}
	}
	return ""
}

// leaves lists the certificates the members need, in plan order.
func leaves(members []Member) ([]leaf, error) {
	both := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	client := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	seen := map[string]bool{}
	var out []leaf
	for _, m := range members {
		if err := checkName(m.Name); err != nil {
			return nil, err
		}
		if seen[m.Name] {
			return nil, fmt.Errorf("etcd member %q listed twice", m.Name)
		}
		seen[m.Name] = true
		sans := wantSANs(m.SANs)
		out = append(out,
			leaf{name: m.Name + "/server", cn: m.Name, usage: both, sans: sans},
			leaf{name: m.Name + "/peer", cn: m.Name, usage: both, sans: sans})
	}
	return append(out,
		leaf{name: "healthcheck-client", cn: "kube-etcd-healthcheck-client", org: []string{"system:masters"}, usage: client},
		leaf{name: "apiserver-etcd-client", cn: "kube-apiserver-etcd-client", usage: client}), nil
}

// checkName refuses member names that are not a plain directory name.
func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) {
		return fmt.Errorf("etcd member %q: not usable as a directory name", name)
	}
	return nil
}

// Files returns the PEM files a member node needs, keyed by their path on the node.
func (p *PKI) Files(member string) (map[string][]byte, error) {
	if err := checkName(member); err != nil {
		return nil, err
	}
	const k = "/etc/kubernetes/pki/"
	src := map[string]string{ // path on the node -> name in Dir
		k + "etcd/ca.crt":                 "ca.crt",
		k + "etcd/server.crt":             member + "/server.crt",
		k + "etcd/server.key":             member + "/server.key",
		k + "etcd/peer.crt":               member + "/peer.crt",
		k + "etcd/peer.key":               member + "/peer.key",
		k + "etcd/healthcheck-client.crt": "healthcheck-client.crt",
		k + "etcd/healthcheck-client.key": "healthcheck-client.key",
		k + "apiserver-etcd-client.crt":   "apiserver-etcd-client.crt",
		k + "apiserver-etcd-client.key":   "apiserver-etcd-client.key",
	}
	if _, err := readCert(p.path("ca.crt")); err != nil {
		return nil, fmt.Errorf("%s: %v (run Ensure first)", p.path("ca.crt"), err)
	}
	for _, name := range []string{member + "/server", member + "/peer", "healthcheck-client", "apiserver-etcd-client"} {
		if _, _, bad := p.loadPair(name); bad != nil {
			return nil, fmt.Errorf("%s: %s (run Ensure first)", p.path(bad.name), bad.why)
		}
	}
	out := map[string][]byte{}
	for node, name := range src {
		data, err := os.ReadFile(p.path(name))
		if err != nil {
			return nil, err
		}
		out[node] = data
	}
	return out, nil
}

// ClientTLS returns a client config using the healthcheck-client cert and trusting the CA.
func (p *PKI) ClientTLS() (*tls.Config, error) {
	ca, err := readCert(p.path("ca.crt"))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", p.path("ca.crt"), err)
	}
	cert, err := tls.LoadX509KeyPair(p.path("healthcheck-client.crt"), p.path("healthcheck-client.key"))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", p.path("healthcheck-client.crt"), err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

func (p *PKI) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// path turns a name in Dir ("node1/server.crt") into a file path.
func (p *PKI) path(name string) string { return filepath.Join(p.Dir, filepath.FromSlash(name)) }

func lines(steps []step) []string {
	var out []string
	for _, s := range steps {
		out = append(out, s.line)
	}
	return out
}

func day(t time.Time) string { return t.UTC().Format("2006-01-02") }
