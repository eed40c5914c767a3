// Package etcd keeps the etcd PKI on the operator's machine: a CA, a server
// and a peer cert per member, and the healthcheck and apiserver client certs.
package etcd

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/metalk8s/metalk8s/pkg/inventory"
	"github.com/metalk8s/metalk8s/pkg/pki"
)

// Member is one etcd host: its name and the names/addresses its server cert must carry.
type Member struct {
	Name string   // inventory host name
	SANs []string // DNS names and IP addresses
}

// PKI is the set of etcd certificates kept in Dir; pkg/pki makes, reuses
// and renews them (pki.Set), this package only lists them and lays them
// out on the members.
type PKI struct {
	Dir string
	Now func() time.Time // nil means time.Now
}

// CA is the etcd CA: kubeadm's etcd-ca, ECDSA P-256.
var CA = pki.CA{Name: "ca", CommonName: "etcd-ca", Label: "etcd"}

// set is the pki.Set of the members' certificates.
func (p *PKI) set(members []Member) (*pki.Set, error) {
	leaves, err := leaves(members)
	if err != nil {
		return nil, err
	}
	return &pki.Set{Dir: p.Dir, Now: p.Now, CA: CA, Leaves: leaves}, nil
}

// Plan says what Ensure would create or renew, without writing anything.
func (p *PKI) Plan(members []Member) ([]string, error) {
	s, err := p.set(members)
	if err != nil {
		return nil, err
	}
	return s.Plan()
}

// Ensure creates or renews what Plan lists and returns the same lines.
// On error it returns the lines already done.
func (p *PKI) Ensure(members []Member) ([]string, error) {
	s, err := p.set(members)
	if err != nil {
		return nil, err
	}
	return s.Ensure()
}

// leaves lists the certificates the members need, in plan order.
func leaves(members []Member) ([]pki.Leaf, error) {
	both := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	client := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	seen := map[string]bool{}
	var out []pki.Leaf
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
			pki.Leaf{Name: m.Name + "/server", CommonName: m.Name, Usage: both, SANs: sans},
			pki.Leaf{Name: m.Name + "/peer", CommonName: m.Name, Usage: both, SANs: sans})
	}
	return append(out,
		pki.Leaf{Name: "healthcheck-client", CommonName: "kube-etcd-healthcheck-client", Organization: []string{"system:masters"}, Usage: client},
		pki.Leaf{Name: "apiserver-etcd-client", CommonName: "kube-apiserver-etcd-client", Usage: client}), nil
}

// checkName refuses member names that are not a plain directory name.
func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) {
		return fmt.Errorf("etcd member %q: not usable as a directory name", name)
	}
	return nil
}

// NodeFiles maps a member's files on the node (kubeadm's layout under
// /etc/kubernetes/pki) to their names in Dir. The CA key is there too, as
// kubeadm lays out etcd's CA: the nodes are where a lost local copy of the
// PKI is recovered from (pki.Recover).
func NodeFiles(member string) map[string]string {
	const k = "/etc/kubernetes/pki/"
	return map[string]string{
		k + "etcd/ca.crt":                 "ca.crt",
		k + "etcd/ca.key":                 "ca.key",
		k + "etcd/server.crt":             member + "/server.crt",
		k + "etcd/server.key":             member + "/server.key",
		k + "etcd/peer.crt":               member + "/peer.crt",
		k + "etcd/peer.key":               member + "/peer.key",
		k + "etcd/healthcheck-client.crt": "healthcheck-client.crt",
		k + "etcd/healthcheck-client.key": "healthcheck-client.key",
		k + "apiserver-etcd-client.crt":   "apiserver-etcd-client.crt",
		k + "apiserver-etcd-client.key":   "apiserver-etcd-client.key",
	}
}

// Files returns the PEM files a member node needs, keyed by their path on the node.
func (p *PKI) Files(member string) (map[string][]byte, error) {
	if err := checkName(member); err != nil {
		return nil, err
	}
	s := &pki.Set{Dir: p.Dir, CA: CA}
	for _, name := range []string{"ca", member + "/server", member + "/peer", "healthcheck-client", "apiserver-etcd-client"} {
		if err := s.CheckPair(name); err != nil {
			return nil, fmt.Errorf("%w (run Ensure first)", err)
		}
	}
	out := map[string][]byte{}
	for node, name := range NodeFiles(member) {
		data, err := pki.ReadFile(p.path(name))
		if err != nil {
			return nil, err
		}
		out[node] = data
	}
	return out, nil
}

// ClientTLS returns a client config using the healthcheck-client cert and trusting the CA.
// Missing files are a MissingError.
func (p *PKI) ClientTLS() (*tls.Config, error) {
	names := []string{"ca.crt", "healthcheck-client.crt", "healthcheck-client.key"}
	data := make([][]byte, len(names))
	missing := &MissingError{}
	for i, name := range names {
		d, err := pki.ReadFile(p.path(name))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			missing.Files = append(missing.Files, p.path(name))
		case err != nil:
			return nil, err
		}
		data[i] = d
	}
	if len(missing.Files) > 0 {
		return nil, missing
	}
	ca, err := pki.ParseCert(data[0])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.path("ca.crt"), err)
	}
	crt, key := data[1], data[2]
	cert, err := tls.X509KeyPair(crt, key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.path("healthcheck-client.crt"), err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// MissingError lists the client's PKI files (the CA certificate, the
// healthcheck client's certificate and key) missing from the local PKI.
type MissingError struct{ Files []string }

func (e *MissingError) Error() string {
	return "missing from the local etcd PKI: " + strings.Join(e.Files, ", ")
}

// Unwrap makes errors.Is(err, fs.ErrNotExist) true.
func (e *MissingError) Unwrap() error { return fs.ErrNotExist }

// path turns a name in Dir ("node1/server.crt") into a file path.
func (p *PKI) path(name string) string { return (&pki.Set{Dir: p.Dir}).Path(name) }

// RecoverPairs are the etcd PKI files pki.RecoverStep recovers from the
// nodes (kubeadm's layout, NodeFiles) into artifacts/pki/etcd: the CA from
// the etcd members and control planes (which hold etcd/ca.crt), each
// member's server and peer pairs from that member, the client pairs from
// every host that may hold them.
func RecoverPairs(cl *inventory.Cluster) []pki.Pair {
	if len(cl.Etcd) == 0 {
		return nil
	}
	var all, members []string
	for _, n := range cl.Etcd {
		members = append(members, n.Name)
		all = append(all, n.Name)
	}
	for _, n := range cl.ControlPlane {
		if !n.Etcd {
			all = append(all, n.Name)
		}
	}
	pair := func(local, node string, hosts []string, trusted bool) pki.Pair {
		src := func(ext string) pki.Source {
			return pki.Source{Local: "etcd/" + local + ext, Node: "/etc/kubernetes/pki/" + node + ext, Hosts: hosts}
		}
		return pki.Pair{Files: [2]pki.Source{src(".crt"), src(".key")}, Trusted: trusted}
	}
	out := []pki.Pair{pair("ca", "etcd/ca", all, true)}
	for _, m := range members {
		if checkName(m) != nil {
			continue // the etcd PKI step refuses it
		}
		out = append(out, pair(m+"/server", "etcd/server", []string{m}, false), pair(m+"/peer", "etcd/peer", []string{m}, false))
	}
	return append(out, pair("healthcheck-client", "etcd/healthcheck-client", members, false),
		pair("apiserver-etcd-client", "apiserver-etcd-client", all, false))
}
