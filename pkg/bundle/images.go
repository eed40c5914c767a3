package bundle

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Registry is where images come from: "" for their upstream registries,
// or a registry (a mirror, a local one) that holds them under the same
// repository path: registry.k8s.io/pause:3.10.1 -> HOST/pause:3.10.1.
type Registry struct {
	Host     string
	Insecure bool // plain HTTP, for a registry on loopback
}

// Ref returns where to pull an upstream image from.
func (r Registry) Ref(upstream string) (name.Reference, error) {
	src := upstream
	if r.Host != "" {
		_, path, ok := strings.Cut(upstream, "/")
		if !ok {
			return nil, fmt.Errorf("image %s has no registry part", upstream)
		}
		src = r.Host + "/" + path
	}
	var opts []name.Option
	if r.Insecure {
		opts = append(opts, name.Insecure)
	}
	return name.ParseReference(src, opts...)
}

// pullImages fetches every image (linux/amd64) and writes them, named by
// their upstream references, into one archive that `ctr images import`
// reads, their layers recompressed with zstd (see zstdImage). It returns
// each image's ID (its config digest).
func pullImages(ctx context.Context, r Registry, images []string, path string) ([]Image, error) {
	spool, err := os.MkdirTemp(filepath.Dir(path), ".layers-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(spool)
	refs := map[name.Reference]v1.Image{}
	var out []Image
	for _, up := range images {
		src, err := r.Ref(up)
		if err != nil {
			return nil, err
		}
		img, err := remote.Image(src, remote.WithContext(ctx), remote.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"}))
		if err != nil {
			return nil, fmt.Errorf("image %s: pull %s: %w", up, src, err)
		}
		id, err := img.ConfigName()
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", up, err)
		}
		tag, err := name.NewTag(up)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", up, err)
		}
		if img, err = zstdImage(img, filepath.Join(spool, strconv.Itoa(len(refs)))); err != nil {
			return nil, fmt.Errorf("image %s: recompress: %w", up, err)
		}
		refs[tag] = img
		out = append(out, Image{Name: up, Digest: id.String()})
	}
	if err := tarball.MultiRefWriteToFile(path, refs); err != nil {
		return nil, fmt.Errorf("write image archive: %w", err)
	}
	return out, nil
}

// archiveDigests reads the image IDs of every tag in an image archive.
func archiveDigests(path string) (map[string]string, error) {
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(path) })
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, desc := range m {
		for _, t := range desc.RepoTags {
			tag, err := name.NewTag(t)
			if err != nil {
				return nil, err
			}
			img, err := tarball.ImageFromPath(path, &tag)
			if err != nil {
				return nil, err
			}
			id, err := img.ConfigName()
			if err != nil {
				return nil, err
			}
			out[t] = id.String()
		}
	}
	return out, nil
}
