package bundle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// BuildOptions say what to gather and from where.
type BuildOptions struct {
	Out      string
	Versions Versions
	Source   Source
	Registry Registry
	NoImages bool
	// Images are more images to pull beside Images(Versions): those the
	// addons' charts, rendered with the inventory's values, run.
	Images []string
	Debs   []DebSource // OS packages for Debian nodes, per family; none: no packages
	Log    io.Writer
}

// Build gathers a release into Out. It works in a temporary directory
// beside Out and renames it into place at the end, so Out is either the
// old bundle or the new one, never half of one. Files the old bundle
// already holds with the right hash are reused, not downloaded again.
func Build(ctx context.Context, o BuildOptions) (*Manifest, error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	out, err := filepath.Abs(o.Out)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(out); err == nil {
		if !st.IsDir() {
			return nil, fmt.Errorf("%s exists and is not a directory", out)
		}
		if _, err := ReadManifest(out); err != nil {
			if entries, _ := os.ReadDir(out); len(entries) > 0 {
				return nil, fmt.Errorf("%s is not empty and holds no bundle; refusing to replace it", out)
			}
		}
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(out), "."+filepath.Base(out)+".build-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	old, _ := ReadManifest(out)

	m := &Manifest{Versions: o.Versions}
	for _, a := range Artifacts(o.Versions) {
		sum, err := o.Source.Checksum(ctx, a)
		if err != nil {
			return nil, err
		}
		dst := filepath.Join(tmp, a.Dest)
		f := File{Name: a.Name, Path: a.Dest, SHA256: sum, Source: o.Source.URL(a, "")}
		if a.Extract != "" {
			// the file is a member of the published archive
			f.ArchiveSHA256 = sum
		}
		switch {
		case reused(old, out, a, sum, dst):
			f.SHA256, f.Size, _ = fileSHA256(dst)
			fmt.Fprintf(o.Log, "%-12s %s (unchanged)\n", a.Name, a.Dest)
		case a.Extract != "":
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return nil, err
			}
			if f.SHA256, f.Size, err = o.Source.fetchMember(ctx, a, sum, dst); err != nil {
				return nil, err
			}
			fmt.Fprintf(o.Log, "%-12s %s (%d bytes from %s, archive sha256 %s)\n", a.Name, a.Dest, f.Size, a.Extract, sum[:12])
		default:
			if f.Size, err = o.Source.Fetch(ctx, a, sum, dst); err != nil {
				return nil, err
			}
			fmt.Fprintf(o.Log, "%-12s %s (%d bytes, sha256 %s)\n", a.Name, a.Dest, f.Size, sum[:12])
		}
		m.Files = append(m.Files, f)
	}
	if !o.NoImages {
		m.ImageArchive = "images/images.tar"
		if err := os.MkdirAll(filepath.Join(tmp, "images"), 0o755); err != nil {
			return nil, err
		}
		imgs, err := pullImages(ctx, o.Registry, withImages(o.Versions, o.Images), filepath.Join(tmp, m.ImageArchive))
		if err != nil {
			return nil, err
		}
		m.Images = imgs
		if m.ImageArchiveSHA256, _, err = fileSHA256(filepath.Join(tmp, m.ImageArchive)); err != nil {
			return nil, err
		}
		for _, img := range imgs {
			fmt.Fprintf(o.Log, "%-12s %s (%s)\n", "image", img.Name, img.Digest[:19])
		}
	}
	for _, d := range o.Debs {
		pkgs, err := fetchDebs(ctx, o.Source, d, NodePackages, tmp, out)
		if err != nil {
			return nil, err
		}
		m.Packages = append(m.Packages, pkgs...)
		fmt.Fprintf(o.Log, "%-12s %d .deb files for %s (%s)\n", "packages", len(pkgs), d.Family, strings.Join(NodePackages, ", "))
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(tmp, ManifestName), append(data, '\n'), 0o644); err != nil {
		return nil, err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, err
	}
	return m, swapDir(tmp, out)
}

// withImages is Images(v) followed by the extra images it lacks, in
// their order, each once.
func withImages(v Versions, extra []string) []string {
	out := Images(v)
	seen := map[string]bool{}
	for _, img := range out {
		seen[img] = true
	}
	for _, img := range extra {
		if !seen[img] {
			seen[img] = true
			out = append(out, img)
		}
	}
	return out
}

// reused links a file of the old bundle into the new one when its hash
// (its archive's, for an extracted file) is still the published one.
func reused(old *Manifest, oldDir string, a Artifact, sum, dst string) bool {
	if old == nil {
		return false
	}
	f, ok := old.file(a.Name)
	if !ok || f.Path != a.Dest {
		return false
	}
	if a.Extract != "" {
		if f.ArchiveSHA256 != sum {
			return false
		}
		sum = f.SHA256
	} else if f.SHA256 != sum {
		return false
	}
	return linkIfSame(filepath.Join(oldDir, f.Path), sum, dst)
}

// linkIfSame hard-links src to dst when src holds the content sum.
func linkIfSame(src, sum, dst string) bool {
	if got, _, err := fileSHA256(src); err != nil || got != sum {
		return false
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return false
	}
	return os.Link(src, dst) == nil
}

// swapDir puts dir in place of out: out is renamed away, dir renamed in,
// and the old one removed.
func swapDir(dir, out string) error {
	if _, err := os.Stat(out); errors.Is(err, os.ErrNotExist) {
		return os.Rename(dir, out)
	}
	aside := dir + ".old"
	if err := os.Rename(out, aside); err != nil {
		return err
	}
	if err := os.Rename(dir, out); err != nil {
		os.Rename(aside, out)
		return err
	}
	return os.RemoveAll(aside)
}
