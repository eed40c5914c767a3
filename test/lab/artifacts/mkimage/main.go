// Command mkimage assembles linux/amd64 container images from files on disk,
// without a daemon or a registry, and writes them out as
//
//   - one OCI image layout holding every image (each tag points at a
//     one-platform image index, like the multi-arch tags of registry.k8s.io),
//     annotated so that `ctr images import` and serve/ know their names;
//   - one docker-archive tarball with every image and all of its names
//     (`ctr -n k8s.io images import`, `docker load`);
//   - optionally one docker-archive per image (the kube-*.tar files that
//     dl.k8s.io publishes next to the binaries).
//
// Output is reproducible: every tar entry and the image config carry the same
// fixed time (-epoch), owners are 0:0 and entries are sorted, so the same
// inputs give the same digests.
//
// The spec file is line based, one directive per line, fields separated by
// blanks (paths must not contain blanks), '#' starts a comment:
//
//	image REF [ALIAS...]      start a new image (first name is the main one)
//	archive PATH [REF...]     also write this image alone as a docker-archive,
//	                          tagged REF... (default: all its names)
//	entrypoint ARG...         config Entrypoint
//	cmd ARG...                config Cmd
//	user UID[:GID]            config User
//	env KEY=VALUE             config Env (PATH is always set)
//	layer                     start a new layer in the current image
//	tree SRCDIR [DSTDIR]      copy a directory tree into the layer
//	file SRC DST [MODE]       copy one file (MODE octal, default 0755)
//	dir PATH [MODE]           an empty directory (default 0755)
//	link PATH TARGET          a symlink
package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// entry is one thing to put into a layer.
type entry struct {
	kind   byte // 'f' file, 'd' dir, 'l' symlink
	src    string
	target string
	mode   int64
}

type layerSpec struct {
	lines   []string // the directives, used as the cache key
	desc    []string // the same without host paths, for the image history
	entries map[string]entry
}

type imageSpec struct {
	refs        []string
	archive     string
	archiveRefs []string
	entrypoint  []string
	cmd         []string
	user        string
	env         []string
	layers      []*layerSpec
}

func clean(p string) string {
	p = path.Clean("/" + p)
	return strings.TrimPrefix(p, "/")
}

func (l *layerSpec) add(dst string, e entry) {
	dst = clean(dst)
	if dst == "" {
		return
	}
	l.entries[dst] = e
	for d := path.Dir(dst); d != "." && d != "/"; d = path.Dir(d) {
		if _, ok := l.entries[d]; !ok {
			l.entries[d] = entry{kind: 'd', mode: 0o755}
		}
	}
}

func (l *layerSpec) addTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil || rel == "." {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		to := path.Join(dst, filepath.ToSlash(rel))
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			l.add(to, entry{kind: 'l', target: t})
		case fi.IsDir():
			l.add(to, entry{kind: 'd', mode: tarMode(fi.Mode())})
		case fi.Mode().IsRegular():
			l.add(to, entry{kind: 'f', src: p, mode: tarMode(fi.Mode())})
		default:
			return fmt.Errorf("%s: unsupported file type %s", p, fi.Mode().Type())
		}
		return nil
	})
}

// tarMode turns Go's file mode bits into the Unix ones tar stores.
func tarMode(m fs.FileMode) int64 {
	r := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		r |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		r |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		r |= 0o1000
	}
	return r
}

func parseMode(s string, def int64) (int64, error) {
	if s == "" {
		return def, nil
	}
	return strconv.ParseInt(s, 8, 64)
}

func parseSpec(file string) ([]*imageSpec, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var images []*imageSpec
	var cur *imageSpec
	var layer *layerSpec
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		bad := func(why string) error { return fmt.Errorf("%s:%d: %s: %q", file, n, why, line) }
		arg := func(i int) string {
			if i < len(fields) {
				return fields[i]
			}
			return ""
		}
		if fields[0] != "image" && cur == nil {
			return nil, bad("directive before the first image")
		}
		switch fields[0] {
		case "image":
			if len(fields) < 2 {
				return nil, bad("image needs a reference")
			}
			for _, r := range fields[1:] {
				if _, err := name.NewTag(r, name.StrictValidation); err != nil {
					return nil, bad(err.Error())
				}
			}
			cur = &imageSpec{refs: fields[1:]}
			images = append(images, cur)
			layer = nil
			continue
		case "archive":
			if len(fields) < 2 {
				return nil, bad("archive needs a path")
			}
			cur.archive, cur.archiveRefs = fields[1], fields[2:]
			for _, r := range cur.archiveRefs {
				if _, err := name.NewTag(r, name.StrictValidation); err != nil {
					return nil, bad(err.Error())
				}
			}
			continue
		case "entrypoint":
			cur.entrypoint = fields[1:]
			continue
		case "cmd":
			cur.cmd = fields[1:]
			continue
		case "user":
			cur.user = arg(1)
			continue
		case "env":
			cur.env = append(cur.env, fields[1:]...)
			continue
		case "layer":
			layer = &layerSpec{entries: map[string]entry{}}
			cur.layers = append(cur.layers, layer)
			continue
		}
		if layer == nil {
			return nil, bad("content before the first layer")
		}
		layer.lines = append(layer.lines, line)
		switch fields[0] {
		case "tree": // host paths would make the digest depend on where the cache is
			layer.desc = append(layer.desc, "tree "+filepath.Base(fields[1])+" "+path.Join("/", arg(2)))
		case "file":
			layer.desc = append(layer.desc, "file "+path.Join("/", arg(2)))
		default:
			layer.desc = append(layer.desc, line)
		}
		switch fields[0] {
		case "tree":
			if len(fields) < 2 {
				return nil, bad("tree needs a source directory")
			}
			if err := layer.addTree(fields[1], arg(2)); err != nil {
				return nil, bad(err.Error())
			}
		case "file":
			if len(fields) < 3 {
				return nil, bad("file needs SRC and DST")
			}
			m, err := parseMode(arg(3), 0o755)
			if err != nil {
				return nil, bad(err.Error())
			}
			if fi, err := os.Stat(fields[1]); err != nil || !fi.Mode().IsRegular() {
				return nil, bad("not a regular file")
			}
			layer.add(fields[2], entry{kind: 'f', src: fields[1], mode: m})
		case "dir":
			m, err := parseMode(arg(2), 0o755)
			if err != nil || len(fields) < 2 {
				return nil, bad("dir PATH [MODE]")
			}
			layer.add(fields[1], entry{kind: 'd', mode: m})
		case "link":
			if len(fields) != 3 {
				return nil, bad("link PATH TARGET")
			}
			layer.add(fields[1], entry{kind: 'l', target: fields[2]})
		default:
			return nil, bad("unknown directive")
		}
	}
	return images, sc.Err()
}

// tarLayer writes the layer's entries as an uncompressed, sorted tar.
func tarLayer(l *layerSpec, mtime time.Time) ([]byte, error) {
	names := make([]string, 0, len(l.entries))
	for n := range l.entries {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		e := l.entries[n]
		h := &tar.Header{Name: n, Mode: e.mode, ModTime: mtime, Uid: 0, Gid: 0}
		var data []byte
		switch e.kind {
		case 'd':
			h.Typeflag, h.Name = tar.TypeDir, n+"/"
		case 'l':
			h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, e.target, 0o777
		case 'f':
			b, err := os.ReadFile(e.src)
			if err != nil {
				return nil, err
			}
			data = b
			h.Typeflag, h.Size = tar.TypeReg, int64(len(b))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

type builder struct {
	mtime  time.Time
	layers map[string]v1.Layer // by directives, so shared layers are built once
}

func (b *builder) layer(l *layerSpec) (v1.Layer, error) {
	key := strings.Join(l.lines, "\n")
	if ly, ok := b.layers[key]; ok {
		return ly, nil
	}
	raw, err := tarLayer(l, b.mtime)
	if err != nil {
		return nil, err
	}
	ly, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(raw)), nil
	}, tarball.WithCompressedCaching, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	b.layers[key] = ly
	return ly, nil
}

// image returns the platform image and the one-entry index that wraps it.
func (b *builder) image(s *imageSpec) (v1.Image, v1.ImageIndex, error) {
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	for i, ls := range s.layers {
		ly, err := b.layer(ls)
		if err != nil {
			return nil, nil, fmt.Errorf("%s layer %d: %w", s.refs[0], i, err)
		}
		img, err = mutate.Append(img, mutate.Addendum{
			Layer:   ly,
			History: v1.History{Created: v1.Time{Time: b.mtime}, CreatedBy: "mkimage: " + strings.Join(ls.desc, "; ")},
		})
		if err != nil {
			return nil, nil, err
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Created = v1.Time{Time: b.mtime}
	cf.Config.Env = append([]string{defaultPath}, s.env...)
	cf.Config.Entrypoint, cf.Config.Cmd, cf.Config.User = s.entrypoint, s.cmd, s.user
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return nil, nil, err
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), mutate.IndexAddendum{
		Add:        img,
		Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}},
	})
	return img, idx, nil
}

func main() {
	spec := flag.String("spec", "", "spec file (see the package comment)")
	ociDir := flag.String("oci", "", "OCI image layout directory to (re)write")
	archive := flag.String("archive", "", "docker-archive tarball with every image")
	list := flag.String("list", "", "write 'REF INDEX-DIGEST MANIFEST-DIGEST' lines here")
	epoch := flag.Int64("epoch", 0, "timestamp (Unix seconds) for every file and config")
	flag.Parse()
	if *spec == "" {
		log.Fatal("mkimage: -spec is required")
	}
	specs, err := parseSpec(*spec)
	if err != nil {
		log.Fatal(err)
	}
	b := &builder{mtime: time.Unix(*epoch, 0).UTC(), layers: map[string]v1.Layer{}}

	var lp layout.Path
	if *ociDir != "" {
		if err := os.RemoveAll(*ociDir); err != nil {
			log.Fatal(err)
		}
		if lp, err = layout.Write(*ociDir, empty.Index); err != nil {
			log.Fatal(err)
		}
	}
	all := map[name.Reference]v1.Image{}
	var lines []string
	for _, s := range specs {
		start := time.Now()
		img, idx, err := b.image(s)
		if err != nil {
			log.Fatal(err)
		}
		md, err := img.Digest()
		if err != nil {
			log.Fatal(err)
		}
		id, err := idx.Digest()
		if err != nil {
			log.Fatal(err)
		}
		mine := map[name.Reference]v1.Image{}
		for _, r := range s.refs {
			t, _ := name.NewTag(r, name.StrictValidation)
			mine[t], all[t] = img, img
			// r as written (docker.io/library/x:t, as containerd names it),
			// not t.Name(), which says index.docker.io
			lines = append(lines, fmt.Sprintf("%s %s %s", r, id, md))
			if *ociDir != "" {
				if err := lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{
					"io.containerd.image.name":          r,
					"org.opencontainers.image.ref.name": t.TagStr(),
				})); err != nil {
					log.Fatal(err)
				}
			}
		}
		if s.archive != "" {
			if len(s.archiveRefs) > 0 {
				mine = map[name.Reference]v1.Image{}
				for _, r := range s.archiveRefs {
					t, _ := name.NewTag(r, name.StrictValidation)
					mine[t] = img
				}
			}
			if err := tarball.MultiRefWriteToFile(s.archive, mine); err != nil {
				log.Fatal(err)
			}
		}
		size := int64(0)
		ls, _ := img.Layers()
		for _, l := range ls {
			n, _ := l.Size()
			size += n
		}
		fmt.Printf("%-50s %s %6.1f MiB %5.1fs\n", s.refs[0], id.Hex[:12], float64(size)/(1<<20), time.Since(start).Seconds())
	}
	if *archive != "" {
		if err := tarball.MultiRefWriteToFile(*archive, all); err != nil {
			log.Fatal(err)
		}
	}
	if *list != "" {
		if err := os.WriteFile(*list, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}
