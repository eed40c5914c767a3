package bundle

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
)

// fetchMember fetches a's .tar.gz (checked against want, the published
// SHA-256), writes its member a.Extract to dst with a.Mode, and returns
// the member's SHA-256 and size. dst is written whole or not at all; a
// member missing from the archive is a MissingError naming it.
func (s Source) fetchMember(ctx context.Context, a Artifact, want, dst string) (string, int64, error) {
	archive := filepath.Join(filepath.Dir(dst), ".archive-"+a.Name)
	if _, err := s.Fetch(ctx, a, want, archive); err != nil {
		return "", 0, err
	}
	defer os.Remove(archive)
	f, err := os.Open(archive)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return "", 0, &MissingError{Name: a.Name, URL: s.URL(a, ""), Why: "not a .tar.gz: " + err.Error()}
	}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return "", 0, &MissingError{Name: a.Name, URL: s.URL(a, ""), Why: "the archive has no " + a.Extract}
		}
		if err != nil {
			return "", 0, &MissingError{Name: a.Name, URL: s.URL(a, ""), Why: "read the archive: " + err.Error()}
		}
		if hdr.Typeflag != tar.TypeReg || path.Clean(hdr.Name) != a.Extract {
			continue
		}
		var sum string
		n, err := writeChecked(tr, dst, os.FileMode(a.Mode), func(got string, err error) error {
			if err != nil {
				return fmt.Errorf("%s: extract %s: %w", a.Name, a.Extract, err)
			}
			sum = got
			return nil
		})
		return sum, n, err
	}
}
