package pki

import (
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"
)

// The Kubernetes CAs, under kubeadm's names and common names
// (cmd/kubeadm/app/phases/certs/certlist.go). Their keys are of the
// cluster's encryptionAlgorithm, as kubeadm would make them.
var (
	KubernetesCA = CA{Name: "ca", CommonName: "kubernetes", Label: "Kubernetes"}
	FrontProxyCA = CA{Name: "front-proxy-ca", CommonName: "front-proxy-ca", Label: "front-proxy"}
)

// KubernetesFiles are the files Kubernetes keeps, by their names in Dir and
// under /etc/kubernetes/pki on a control plane.
var KubernetesFiles = []string{"ca.crt", "ca.key", "front-proxy-ca.crt", "front-proxy-ca.key", "sa.key", "sa.pub"}

// Kubernetes is what metalk8s makes of the Kubernetes PKI, in Dir
// (<inventory dir>/artifacts/pki/kubernetes): the cluster CA, the
// front-proxy CA and the service-account key pair. kubeadm makes the leaf
// certificates (apiserver, kubelet client, ...) from these CAs on each
// control plane, so every control plane shares them without kubeadm's
// --upload-certs. Like a CA, sa.key is never replaced once made: that
// would invalidate every service-account token.
type Kubernetes struct {
	Dir string
	Now func() time.Time // nil means time.Now
	// Algorithm is the key type of new CAs and of a new sa.key ("": RSA2048,
	// kubeadm v1beta4's default), as kubeadm's encryptionAlgorithm sets it
	// for its own (phases/certs, CreateServiceAccountKeyAndPublicKeyFiles).
	// Keys already made are kept whatever their type.
	Algorithm Algorithm
}

func (k *Kubernetes) algorithm() Algorithm {
	if k.Algorithm == "" {
		return RSA2048
	}
	return k.Algorithm
}

func (k *Kubernetes) sets() []*Set {
	ca, fp := KubernetesCA, FrontProxyCA
	ca.Algorithm, fp.Algorithm = k.algorithm(), k.algorithm()
	return []*Set{{Dir: k.Dir, Now: k.Now, CA: ca}, {Dir: k.Dir, Now: k.Now, CA: fp}}
}

// Plan lists what Ensure would make ("+ create ca.crt",
// "+ create front-proxy-ca.crt", "+ create sa.key", "~ rewrite sa.pub
// (...)"), writing nothing. Errors name the file: an unusable CA or one
// within 90 days of expiry, an unreadable sa.key.
func (k *Kubernetes) Plan() ([]string, error) {
	var out []string
	for _, s := range k.sets() {
		lines, err := s.Plan()
		if err != nil {
			return nil, err
		}
		out = append(out, lines...)
	}
	line, _, err := k.planSA()
	if err != nil {
		return nil, err
	}
	if line != "" {
		out = append(out, line)
	}
	return out, nil
}

// Ensure makes what Plan lists and returns the same lines; on error, the
// lines already done.
func (k *Kubernetes) Ensure() ([]string, error) {
	var done []string
	for _, s := range k.sets() {
		lines, err := s.Ensure()
		done = append(done, lines...)
		if err != nil {
			return done, err
		}
	}
	line, key, err := k.planSA()
	if err != nil || line == "" {
		return done, err
	}
	if key == nil {
		if key, err = newKey(k.algorithm()); err != nil {
			return done, fmt.Errorf("%s: %w", k.path("sa.key"), err)
		}
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return done, err
	}
	pub, err := encodePublic(key.Public())
	if err != nil {
		return done, err
	}
	files := []File{{k.path("sa.pub"), pub}}
	if line == "+ create sa.key" {
		files = []File{{k.path("sa.key"), keyPEM}, files[0]}
	}
	if err := WriteFiles(files...); err != nil {
		return done, err
	}
	return append(done, line), nil
}

// planSA says what to do about sa.key and sa.pub: "" (nothing), create
// both, or rewrite sa.pub from the existing key (returned).
func (k *Kubernetes) planSA() (string, crypto.Signer, error) {
	key, err := ReadKey(k.path("sa.key"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "+ create sa.key", nil, nil
	case err != nil:
		return "", nil, fmt.Errorf("%s: unreadable: %w; the service-account key is not replaced automatically, restore it", k.path("sa.key"), err)
	}
	have, err := ReadFile(k.path("sa.pub"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "~ rewrite sa.pub (missing)", key, nil
	case err != nil:
		return "", nil, fmt.Errorf("%s: %w", k.path("sa.pub"), err)
	}
	if pub, err := parsePublic(have); err != nil || !samePublic(pub, key.Public()) {
		return "~ rewrite sa.pub (does not match sa.key)", key, nil
	}
	return "", nil, nil
}

// Files returns the Kubernetes PKI files a control plane needs, keyed by
// their path relative to /etc/kubernetes/pki ("ca.crt", "sa.pub", ...).
// An error names the first file missing or unusable (run Ensure first).
func (k *Kubernetes) Files() (map[string][]byte, error) {
	for _, s := range k.sets() {
		if err := s.CheckPair(s.CA.Name); err != nil {
			return nil, fmt.Errorf("%w (run Ensure first)", err)
		}
	}
	if line, _, err := k.planSA(); err != nil || line != "" {
		if err == nil {
			err = fmt.Errorf("%s: %s (run Ensure first)", k.path("sa.key"), line)
		}
		return nil, err
	}
	out := map[string][]byte{}
	for _, name := range KubernetesFiles {
		data, err := ReadFile(k.path(name))
		if err != nil {
			return nil, err
		}
		out[name] = data
	}
	return out, nil
}

func (k *Kubernetes) path(name string) string { return filepath.Join(k.Dir, name) }

// CACertHash is kubeadm's public-key pin of a CA certificate (PEM), as
// `kubeadm join --discovery-token-ca-cert-hash` expects: "sha256:" and the
// hex SHA-256 of the certificate's DER SubjectPublicKeyInfo
// (cmd/kubeadm/app/util/pubkeypin). Errors: no certificate in certPEM.
func CACertHash(certPEM []byte) (string, error) {
	cert, err := ParseCert(certPEM)
	if err != nil {
		return "", fmt.Errorf("CA certificate hash: %w", err)
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}
