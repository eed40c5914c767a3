package ssh

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/pkg/sftp"
)

// File is what Upload puts on a host.
type File struct {
	Path   string      // absolute destination
	Data   []byte      // content, or:
	Local  string      // a local file to stream (large files)
	SHA256 string      // the content's hash, when already known
	Mode   fs.FileMode // permission bits
	Owner  string      // user[:group]; empty leaves the default
	// Replace writes without first comparing with the remote content (the
	// caller knows it differs): large files are not hashed twice.
	Replace bool
}

func (f File) open() (io.ReadCloser, error) {
	if f.Local != "" {
		return os.Open(f.Local)
	}
	return io.NopCloser(bytes.NewReader(f.Data)), nil
}

func (f File) sum() (string, error) {
	if f.SHA256 != "" {
		return f.SHA256, nil
	}
	if f.Local == "" {
		h := sha256.Sum256(f.Data)
		return hex.EncodeToString(h[:]), nil
	}
	r, err := f.open()
	if err != nil {
		return "", err
	}
	defer r.Close()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// write copies the content into w.
func (f File) write(w io.Writer) error {
	r, err := f.open()
	if err != nil {
		return err
	}
	defer r.Close()
	_, err = io.Copy(w, r)
	return err
}

type sftpClient struct{ c *sftp.Client }

func (s *sftpClient) close() { s.c.Close() }

func (c *Client) sftp(ctx context.Context) (*sftp.Client, error) {
	conn, err := c.connection(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sftpc != nil && c.conn == conn {
		return c.sftpc.c, nil
	}
	sc, err := sftp.NewClient(conn, sftp.UseConcurrentWrites(true))
	if err != nil {
		return nil, &ConnectError{Host: c.Name, Addr: c.Addr(), Err: fmt.Errorf("start sftp: %w", err)}
	}
	c.sftpc = &sftpClient{c: sc}
	return sc, nil
}

// RemoteSHA256 returns the SHA-256 of a remote file, or "" when it does
// not exist.
func (c *Client) RemoteSHA256(ctx context.Context, p string) (string, error) {
	res, err := c.Run(ctx, "if [ -e "+Quote(p)+" ]; then sha256sum < "+Quote(p)+"; fi")
	if err != nil {
		return "", err
	}
	sum, _, _ := strings.Cut(strings.TrimSpace(string(res.Stdout)), " ")
	return sum, nil
}

// Upload writes a file atomically (a temporary name, then a rename), with
// its mode and owner, and does nothing when the remote content already
// matches. It reports whether it changed the host.
func (c *Client) Upload(ctx context.Context, f File) (bool, error) {
	if !path.IsAbs(f.Path) {
		return false, fmt.Errorf("host %s: upload: %q is not an absolute path", c.Name, f.Path)
	}
	if !f.Replace {
		want, err := f.sum()
		if err != nil {
			return false, fmt.Errorf("host %s: upload %s: %w", c.Name, f.Path, err)
		}
		have, err := c.RemoteSHA256(ctx, f.Path)
		if err != nil {
			return false, err
		}
		if have == want {
			return false, c.ensureAttrs(ctx, f)
		}
	}
	if c.cfg.Become || c.cfg.Local() {
		return true, c.uploadBecome(ctx, f)
	}
	return true, c.uploadDirect(ctx, f)
}

func randomSuffix() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// uploadDirect writes through SFTP beside the destination and renames.
func (c *Client) uploadDirect(ctx context.Context, f File) error {
	sc, err := c.sftp(ctx)
	if err != nil {
		return err
	}
	fail := func(what string, err error) error {
		return fmt.Errorf("host %s: upload %s: %s: %w", c.Name, f.Path, what, err)
	}
	tmp := path.Join(path.Dir(f.Path), ".metalk8s-"+randomSuffix()+".tmp")
	if err := sc.MkdirAll(path.Dir(f.Path)); err != nil {
		return fail("create directory", err)
	}
	w, err := sc.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_EXCL)
	if err != nil {
		return fail("create temporary file", err)
	}
	defer sc.Remove(tmp) // a no-op once renamed
	if err := w.Chmod(f.Mode.Perm()); err != nil {
		w.Close()
		return fail("chmod", err)
	}
	if err := f.write(w); err != nil {
		w.Close()
		return fail("write", err)
	}
	if err := w.Close(); err != nil {
		return fail("close", err)
	}
	if f.Owner != "" {
		if _, err := c.Run(ctx, "chown "+Quote(f.Owner)+" "+Quote(tmp)); err != nil {
			return err
		}
	}
	if err := sc.PosixRename(tmp, f.Path); err != nil {
		return fail("rename", err)
	}
	return nil
}

// uploadBecome writes to a private temporary file as the login user (on
// this machine for a local host), then installs it in place with the
// host's commands (as root under become).
func (c *Client) uploadBecome(ctx context.Context, f File) error {
	tmp, err := c.stage(ctx, f)
	if err != nil {
		return err
	}
	if c.cfg.Local() {
		defer os.Remove(tmp)
	} else {
		defer c.Run(context.WithoutCancel(ctx), "rm -f "+Quote(tmp), AsLoginUser())
	}
	dst := f.Path
	next := path.Join(path.Dir(dst), ".metalk8s-"+randomSuffix()+".tmp")
	script := fmt.Sprintf("mkdir -p %s && cp %s %s && chmod %o %s",
		Quote(path.Dir(dst)), Quote(tmp), Quote(next), f.Mode.Perm(), Quote(next))
	if f.Owner != "" {
		script += " && chown " + Quote(f.Owner) + " " + Quote(next)
	}
	script += " && mv -f " + Quote(next) + " " + Quote(dst) + " || { rm -f " + Quote(next) + "; exit 1; }"
	_, err = c.Run(ctx, script)
	return err
}

// stage writes the content to a private temporary file through SFTP, or
// on this machine for a local host.
func (c *Client) stage(ctx context.Context, f File) (string, error) {
	if c.cfg.Local() {
		return c.stageLocal(f)
	}
	sc, err := c.sftp(ctx)
	if err != nil {
		return "", err
	}
	tmp := "/tmp/.metalk8s-" + randomSuffix()
	w, err := sc.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_EXCL)
	if err != nil {
		return "", fmt.Errorf("host %s: upload %s: create %s: %w", c.Name, f.Path, tmp, err)
	}
	w.Chmod(0o600)
	if err := f.write(w); err != nil {
		w.Close()
		sc.Remove(tmp)
		return "", fmt.Errorf("host %s: upload %s: write: %w", c.Name, f.Path, err)
	}
	if err := w.Close(); err != nil {
		sc.Remove(tmp)
		return "", fmt.Errorf("host %s: upload %s: close: %w", c.Name, f.Path, err)
	}
	return tmp, nil
}

// ensureAttrs fixes mode and owner of an up-to-date file.
func (c *Client) ensureAttrs(ctx context.Context, f File) error {
	script := fmt.Sprintf("chmod %o %s", f.Mode.Perm(), Quote(f.Path))
	if f.Owner != "" {
		script += " && chown " + Quote(f.Owner) + " " + Quote(f.Path)
	}
	_, err := c.Run(ctx, script)
	return err
}
