package pki

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// staged holds, by absolute local path, the files a pki/recover check
// found missing here and held by the nodes. The PKI's local reads
// (ReadFile) see a missing file as restored, so the steps after the
// restore check the PKI as it will be: a plan without artifacts/pki
// shows the restores and no new CA or certificate. On disk, the file
// (once up writes it) always wins.
var staged = struct {
	sync.Mutex
	files map[string][]byte
}{files: map[string][]byte{}}

// stage replaces what is staged under dir with rs.
func stage(dir string, rs []Restore) {
	staged.Lock()
	defer staged.Unlock()
	prefix := filepath.Clean(dir) + string(filepath.Separator)
	for p := range staged.files {
		if strings.HasPrefix(p, prefix) {
			delete(staged.files, p)
		}
	}
	for _, r := range rs {
		staged.files[filepath.Join(dir, filepath.FromSlash(r.Local))] = r.Data
	}
}

// ReadFile reads a file of the local PKI (artifacts/pki); a missing one
// that the run's pki/recover check would restore reads as restored.
func ReadFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if d, ok := stagedFile(path); ok {
			return d, nil
		}
	}
	return data, err
}

// stagedFile is the staged restore of path, if any.
func stagedFile(path string) ([]byte, bool) {
	staged.Lock()
	defer staged.Unlock()
	d, ok := staged.files[filepath.Clean(path)]
	return d, ok
}

// stat is os.Stat for a file of the local PKI, where a missing file that
// the run's pki/recover check would restore exists (as ReadFile).
func stat(path string) error {
	_, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		if _, ok := stagedFile(path); ok {
			return nil
		}
	}
	return err
}
