package ssh

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// PassphraseFunc asks for the passphrase of an encrypted key file.
type PassphraseFunc func(keyFile string) ([]byte, error)

// ErrNoTerminal: an encrypted key needs a passphrase and nobody can type it.
var ErrNoTerminal = errors.New("no terminal to ask for it")

// keyring loads each key file once and remembers its signer (or its
// error), so a passphrase is asked once per run, not once per host.
type keyring struct {
	passphrase PassphraseFunc
	agentSock  string

	mu      sync.Mutex
	signers map[string]gossh.Signer
	errs    map[string]error
	agent   agent.ExtendedAgent
	agentOK bool
}

func newKeyring(agentSock string, ask PassphraseFunc) *keyring {
	return &keyring{agentSock: agentSock, passphrase: ask, signers: map[string]gossh.Signer{}, errs: map[string]error{}}
}

// load returns the signer of a private key file.
func (k *keyring) load(path string) (gossh.Signer, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if s, ok := k.signers[path]; ok {
		return s, nil
	}
	if err, ok := k.errs[path]; ok {
		return nil, err
	}
	s, err := k.parse(path)
	if err != nil {
		k.errs[path] = err
		return nil, err
	}
	k.signers[path] = s
	return s, nil
}

func (k *keyring) parse(path string) (gossh.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read private key: %w", err)
	}
	s, err := gossh.ParsePrivateKey(data)
	var missing *gossh.PassphraseMissingError
	if !errors.As(err, &missing) {
		if err != nil {
			return nil, fmt.Errorf("private key %s: %w", path, err)
		}
		return s, nil
	}
	if k.passphrase == nil {
		return nil, fmt.Errorf("private key %s is encrypted and there is %w; add it to ssh-agent (ssh-add %s)", path, ErrNoTerminal, path)
	}
	pass, err := k.passphrase(path)
	if err != nil {
		return nil, fmt.Errorf("passphrase for %s: %w", path, err)
	}
	defer clear(pass)
	s, err = gossh.ParsePrivateKeyWithPassphrase(data, pass)
	if err != nil {
		return nil, fmt.Errorf("private key %s: wrong passphrase or bad key: %w", path, err)
	}
	return s, nil
}

// agentSigners returns the keys held by ssh-agent, if one is running.
func (k *keyring) agentSigners() []gossh.Signer {
	k.mu.Lock()
	if !k.agentOK && k.agentSock != "" {
		k.agentOK = true
		if conn, err := net.Dial("unix", k.agentSock); err == nil {
			k.agent = agent.NewClient(conn)
		}
	}
	a := k.agent
	k.mu.Unlock()
	if a == nil {
		return nil
	}
	signers, err := a.Signers()
	if err != nil {
		return nil
	}
	return signers
}

// defaultKeyFiles are OpenSSH's default identities that exist.
func defaultKeyFiles() []string {
	home, err := os.UserHomeDir()
	if err != nil {
		return nil
	}
	var out []string
	for _, n := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
		p := filepath.Join(home, ".ssh", n)
		if _, err := os.Stat(p); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// authMethod offers, in OpenSSH's order: the agent's keys, then the key
// files named (the inventory's, -i, IdentityFile), or the default
// identities when none is named (readconf.c fill_default_options);
// withDefaults adds those after the named ones (a jump host that names no
// key of its own: ssh would offer it its defaults, metalk8s the host's too).
func (k *keyring) authMethod(keyFiles []string, withDefaults bool) (gossh.AuthMethod, error) {
	files := defaultKeyFiles()
	if len(keyFiles) > 0 {
		files = nil
		for _, f := range keyFiles {
			f = expandHome(f)
			// A key named in the inventory must load: its error is the useful one.
			if _, err := k.load(f); err != nil {
				return nil, err
			}
			files = append(files, f)
		}
		if withDefaults {
			files = append(files, defaultKeyFiles()...) // best effort: not required to load
		}
	}
	return gossh.PublicKeysCallback(func() ([]gossh.Signer, error) {
		signers := k.agentSigners()
		for _, f := range files {
			if s, err := k.load(f); err == nil {
				signers = append(signers, s)
			}
		}
		if len(signers) == 0 {
			return nil, errors.New("no SSH key: no ssh-agent keys, no key file in the inventory, none in ~/.ssh")
		}
		return signers, nil
	}), nil
}

func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[1:])
		}
	}
	return p
}
