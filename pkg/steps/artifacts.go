package steps

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ArtifactsGitignore is the .gitignore InitArtifacts writes: the private
// keys and the disposable files stay out of an inventory's Git repository.
const ArtifactsGitignore = `# Written by metalk8s when this directory had no .gitignore; edit it freely,
# metalk8s never rewrites it (an empty file keeps it from coming back).
# Private keys: the CAs' (ca.key, front-proxy-ca.key, etcd/ca.key) sign
# anything for the cluster, sa.key signs its tokens, admin.conf holds the
# cluster-admin's key. Keep and back them up, but not in Git (README, State).
*.key
admin.conf
# Disposable: each run's log and a failed step's diagnostics.
logs/
diag/
`

// InitArtifacts makes the artifacts directory dir (<inventory
// dir>/artifacts, 0700 when new) and writes dir/.gitignore when there is
// none; an existing one, the operator's, is left as it is.
func InitArtifacts(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	path := filepath.Join(dir, ".gitignore")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	_, err = f.WriteString(ArtifactsGitignore)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
