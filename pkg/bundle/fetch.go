package bundle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Source is where release files come from: the real sites, or a mirror
// that lays them out as <mirror>/<site>/<path> with checksums beside them.
type Source struct {
	Mirror string // "" means the real sites, over https
	Client *http.Client
}

// URL of an artifact (suffix "" for the file, ".sha256" for its checksum).
func (s Source) URL(a Artifact, suffix string) string {
	if s.Mirror == "" {
		return "https://" + a.Host + "/" + a.Path + suffix
	}
	return strings.TrimRight(s.Mirror, "/") + "/" + a.Host + "/" + a.Path + suffix
}

// sumURL is where a checksum file is: a suffix (".sha256") is appended to
// the artifact's URL, a plain name ("runc.sha256sum") sits beside it.
func (s Source) sumURL(a Artifact, sum string) string {
	if strings.HasPrefix(sum, ".") {
		return s.URL(a, sum)
	}
	u := s.URL(a, "")
	return u[:strings.LastIndex(u, "/")+1] + sum
}

// MissingError names an artifact the source does not have.
type MissingError struct {
	Name string
	URL  string
	Why  string
}

func (e *MissingError) Error() string {
	return fmt.Sprintf("artifact %s: %s: %s", e.Name, e.URL, e.Why)
}

func (s Source) client() *http.Client {
	if s.Client != nil {
		return s.Client
	}
	return http.DefaultClient
}

func (s Source) get(ctx context.Context, name, url string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.client().Do(req)
	if err != nil {
		return nil, &MissingError{Name: name, URL: url, Why: err.Error()}
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, &MissingError{Name: name, URL: url, Why: resp.Status}
	}
	return resp.Body, nil
}

var reHex64 = regexp.MustCompile(`(?i)\b[0-9a-f]{64}\b`)

// Checksum fetches the published SHA-256 of an artifact: the first of its
// checksum files that exists ("HASH" or "HASH  file" lines).
func (s Source) Checksum(ctx context.Context, a Artifact) (string, error) {
	var firstErr error
	for _, suffix := range a.Sums {
		url := s.sumURL(a, suffix)
		body, err := s.get(ctx, a.Name, url)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		data, err := io.ReadAll(io.LimitReader(body, 1<<20))
		body.Close()
		if err != nil {
			return "", &MissingError{Name: a.Name, URL: url, Why: err.Error()}
		}
		base := filepath.Base(a.Path)
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 || !reHex64.MatchString(f[0]) {
				continue
			}
			if len(f) == 1 || strings.TrimPrefix(f[1], "*") == base {
				return strings.ToLower(f[0]), nil
			}
		}
		return "", &MissingError{Name: a.Name, URL: url, Why: "no SHA-256 for " + base + " in it"}
	}
	if firstErr == nil {
		firstErr = &MissingError{Name: a.Name, URL: s.URL(a, ""), Why: "no checksum file is known for it"}
	}
	return "", firstErr
}

// Fetch downloads an artifact to path, checking it against want; nothing
// is left at path unless the hash matches.
func (s Source) Fetch(ctx context.Context, a Artifact, want, path string) (int64, error) {
	return s.fetchURL(ctx, a, s.URL(a, ""), want, path)
}

func (s Source) fetchURL(ctx context.Context, a Artifact, url, want, path string) (int64, error) {
	body, err := s.get(ctx, a.Name, url)
	if err != nil {
		return 0, err
	}
	defer body.Close()
	return writeChecked(body, path, os.FileMode(a.Mode), func(got string, err error) error {
		if err != nil {
			return &MissingError{Name: a.Name, URL: url, Why: "download: " + err.Error()}
		}
		if got != want {
			return &MissingError{Name: a.Name, URL: url, Why: fmt.Sprintf("SHA-256 mismatch: got %s, the checksum file says %s", got, want)}
		}
		return nil
	})
}

// writeChecked copies r to path through a temporary file beside it,
// hashing it; check gets the SHA-256 (hex) or the copy's error, and only
// when it returns nil is the file given mode and renamed into place.
// It returns the size written; path is never left half-written.
func writeChecked(r io.Reader, path string, mode os.FileMode, check func(sum string, err error) error) (int64, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return 0, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".fetch-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), r)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err := check(hex.EncodeToString(h.Sum(nil)), err); err != nil {
		return 0, err
	}
	if err := os.Chmod(tmp.Name(), mode); err != nil {
		return 0, err
	}
	return n, os.Rename(tmp.Name(), path)
}

// fileSHA256 hashes a local file.
func fileSHA256(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// IsMissing reports whether err is a missing or damaged artifact.
func IsMissing(err error) bool {
	var me *MissingError
	return errors.As(err, &me)
}
