package pki

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ReadCert reads the first CERTIFICATE block of a PEM file.
func ReadCert(file string) (*x509.Certificate, error) {
	data, err := ReadFile(file)
	if err != nil {
		return nil, err
	}
	return ParseCert(data)
}

// ParseCert parses the first PEM block of data, which must be a CERTIFICATE.
func ParseCert(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no CERTIFICATE PEM block")
	}
	return x509.ParseCertificate(block.Bytes)
}

// ReadKey reads a private key PEM file (see ParseKey).
func ReadKey(file string) (crypto.Signer, error) {
	data, err := ReadFile(file)
	if err != nil {
		return nil, err
	}
	return ParseKey(data)
}

// ParseKey parses a PEM private key: PKCS#8 ("PRIVATE KEY", what metalk8s
// writes), SEC 1 ("EC PRIVATE KEY") or PKCS#1 ("RSA PRIVATE KEY"), the
// forms kubeadm reads and writes.
func ParseKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
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

// encodeKey is key as a PKCS#8 PEM block.
func encodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// encodePublic is pub as a PKIX "PUBLIC KEY" PEM block (kubeadm's sa.pub).
func encodePublic(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// samePublic says whether a certificate's or key's public key is pub.
func samePublic(a, b crypto.PublicKey) bool {
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}

// File is one file to write: Path on this machine and its content.
type File struct {
	Path string
	Data []byte
}

// WriteFiles writes files (mode 0600) atomically each: all go to temp files
// beside their target first, then are renamed in order, so a crash leaves
// each file either old or new. Put a key before its certificate: a crash in
// between leaves a pair that does not match, which the next run renews.
// Parent directories are made 0700 (MkdirPrivate).
func WriteFiles(files ...File) error {
	var tmps []string
	defer func() {
		for _, t := range tmps {
			os.Remove(t) // already renamed on success
		}
	}()
	for _, f := range files {
		if err := MkdirPrivate(filepath.Dir(f.Path)); err != nil {
			return err
		}
		tmp, err := writeTemp(f.Path, f.Data)
		if err != nil {
			return err
		}
		tmps = append(tmps, tmp)
	}
	for i, f := range files {
		if err := os.Rename(tmps[i], f.Path); err != nil {
			return fmt.Errorf("write %s: %w", f.Path, err)
		}
	}
	return nil
}

// writeTemp writes data to a new 0600 file next to file and returns its name.
func writeTemp(file string, data []byte) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".*")
	if err != nil {
		return "", fmt.Errorf("write %s: %w", file, err)
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
		return "", fmt.Errorf("write %s: %w", file, err)
	}
	return f.Name(), nil
}

// MkdirPrivate makes dir with mode 0700 if needed (its missing parents
// 0755) and makes sure of its mode.
func MkdirPrivate(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(dir), err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("chmod %s: %w", dir, err)
	}
	return nil
}

// certPEM is a DER certificate as a PEM block.
func certPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// parsePublic parses a PEM "PUBLIC KEY" (PKIX) block.
func parsePublic(data []byte) (crypto.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, errors.New("no PUBLIC KEY PEM block")
	}
	return x509.ParsePKIXPublicKey(block.Bytes)
}

func errorsIsNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
