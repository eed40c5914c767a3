package pki

import (
	"io/fs"
	"path/filepath"
	"sort"
	"time"
)

// CertInfo is one certificate of the local PKI, for a `certs` listing.
type CertInfo struct {
	Path     string    // slash path relative to the listed directory: "etcd/node1/server.crt"
	Subject  string    // "CN=kubernetes"
	NotAfter time.Time // expiry
	IsCA     bool
}

// List returns every certificate (*.crt) under dir (artifacts/pki) with
// its subject and expiry, sorted by path. A missing dir lists nothing; a
// file that does not parse is an error naming it.
func List(dir string) ([]CertInfo, error) {
	var out []CertInfo
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir && errorsIsNotExist(err) {
				return fs.SkipAll
			}
			return err
		}
		if d.IsDir() || filepath.Ext(p) != ".crt" {
			return nil
		}
		cert, err := ReadCert(p)
		if err != nil {
			return &fs.PathError{Op: "read certificate", Path: p, Err: err}
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, CertInfo{Path: filepath.ToSlash(rel), Subject: cert.Subject.String(), NotAfter: cert.NotAfter, IsCA: cert.IsCA})
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, err
}
