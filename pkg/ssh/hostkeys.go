package ssh

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// HostKeyError is a host key that was refused: unknown, or changed.
type HostKeyError struct {
	Host        string // inventory name or bastion
	Addr        string
	Fingerprint string
	KnownHosts  string
	Changed     bool
	Line        int // the known_hosts line of the key we expected, if changed
}

func (e *HostKeyError) Error() string {
	return fmt.Sprintf("host %s (%s): %s", e.Host, e.Addr, e.reason())
}

func (e *HostKeyError) reason() string {
	if e.Changed {
		return fmt.Sprintf("HOST KEY CHANGED: it now presents %s, which differs from %s:%d; "+
			"if the change is expected, remove the old line and connect again", e.Fingerprint, e.KnownHosts, e.Line)
	}
	return fmt.Sprintf("unknown host key %s, not in %s; check the fingerprint and "+
		"add it, or run again with --trust-new-hosts to record new hosts", e.Fingerprint, e.KnownHosts)
}

// hostKeys verifies server keys against one known_hosts file, and records
// new ones when trusting new hosts (OpenSSH's accept-new).
type hostKeys struct {
	path     string
	trustNew bool

	mu sync.Mutex
	cb gossh.HostKeyCallback
}

func newHostKeys(path string, trustNew bool) (*hostKeys, error) {
	hk := &hostKeys{path: path, trustNew: trustNew}
	if err := hk.reload(); err != nil {
		return nil, err
	}
	return hk, nil
}

func (hk *hostKeys) reload() error {
	if _, err := os.Stat(hk.path); errors.Is(err, os.ErrNotExist) {
		if !hk.trustNew {
			// No file: every host is unknown, and says so.
			hk.cb = func(string, net.Addr, gossh.PublicKey) error {
				return &knownhosts.KeyError{}
			}
			return nil
		}
		if err := os.MkdirAll(filepath.Dir(hk.path), 0o700); err != nil {
			return fmt.Errorf("create known_hosts: %w", err)
		}
		if err := os.WriteFile(hk.path, nil, 0o600); err != nil {
			return fmt.Errorf("create known_hosts: %w", err)
		}
	}
	cb, err := knownhosts.New(hk.path)
	if err != nil {
		return fmt.Errorf("read known_hosts %s: %w", hk.path, err)
	}
	hk.cb = cb
	return nil
}

// callback returns the check for one connection; name is for messages.
func (hk *hostKeys) callback(name string) gossh.HostKeyCallback {
	return func(addr string, remote net.Addr, key gossh.PublicKey) error {
		hk.mu.Lock()
		defer hk.mu.Unlock()
		err := hk.cb(addr, remote, key)
		var ke *knownhosts.KeyError
		if err == nil || !errors.As(err, &ke) {
			return err
		}
		fp := gossh.FingerprintSHA256(key)
		if len(ke.Want) > 0 {
			return &HostKeyError{Host: name, Addr: addr, Fingerprint: fp, KnownHosts: hk.path, Changed: true, Line: ke.Want[0].Line}
		}
		if !hk.trustNew {
			return &HostKeyError{Host: name, Addr: addr, Fingerprint: fp, KnownHosts: hk.path}
		}
		return hk.record(addr, key)
	}
}

func (hk *hostKeys) record(addr string, key gossh.PublicKey) error {
	f, err := os.OpenFile(hk.path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("record host key of %s: %w", addr, err)
	}
	line := knownhosts.Line([]string{knownhosts.Normalize(addr)}, key) + "\n"
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return fmt.Errorf("record host key of %s: %w", addr, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("record host key of %s: %w", addr, err)
	}
	return hk.reload()
}

// algorithms lists the host key algorithms known_hosts holds for addr, so
// the server is asked for a key we can check rather than one we cannot.
func (hk *hostKeys) algorithms(addr string) []string {
	hk.mu.Lock()
	defer hk.mu.Unlock()
	var ke *knownhosts.KeyError
	if err := hk.cb(addr, probeAddr{addr}, probeKey{}); !errors.As(err, &ke) {
		return nil
	}
	var out []string
	seen := map[string]bool{}
	for _, k := range ke.Want {
		for _, a := range algorithmsFor(k.Key.Type()) {
			if !seen[a] {
				seen[a] = true
				out = append(out, a)
			}
		}
	}
	return out
}

func algorithmsFor(keyType string) []string {
	switch keyType {
	case gossh.KeyAlgoRSA:
		return []string{gossh.KeyAlgoRSASHA512, gossh.KeyAlgoRSASHA256, gossh.KeyAlgoRSA}
	case gossh.CertAlgoRSAv01:
		return []string{gossh.CertAlgoRSASHA512v01, gossh.CertAlgoRSASHA256v01, gossh.CertAlgoRSAv01}
	}
	return []string{keyType}
}

// probeKey matches no real key; checking it reveals the keys on file.
type probeKey struct{}

func (probeKey) Type() string                          { return "metalk8s-probe" }
func (probeKey) Marshal() []byte                       { return []byte("metalk8s-probe") }
func (probeKey) Verify([]byte, *gossh.Signature) error { return errors.New("probe") }

type probeAddr struct{ s string }

func (probeAddr) Network() string  { return "tcp" }
func (a probeAddr) String() string { return a.s }
