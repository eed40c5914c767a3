package bundle

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// NodePackages are the OS packages nodes may need beyond a minimal
// install; each node installs those its roles and volumes use. Time sync
// stays the operator's choice (preflight checks the clocks).
var NodePackages = []string{"lvm2", "ipvsadm", "ipset", "conntrack", "socat", "ebtables", "iptables", "ethtool", "e2fsprogs", "xfsprogs"}

// DebSource is a Debian-style archive: its base URL and the release.
type DebSource struct {
	Mirror    string // http://deb.debian.org/debian
	Suite     string // bookworm
	Component string // main
	Arch      string // amd64
	Family    string // how nodes name it: "debian-12"
}

// DebFamilies are the Debian releases metalk8s bundles packages for.
var DebFamilies = map[string]string{"debian-12": "bookworm", "debian-11": "bullseye"}

// DebFamilyNames lists DebFamilies' names, sorted: what bundle build
// --os accepts.
func DebFamilyNames() []string {
	var out []string
	for f := range DebFamilies {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}

// DebSourceFor returns the source of a family's packages on a mirror.
func DebSourceFor(family, mirror string) (DebSource, error) {
	suite, ok := DebFamilies[family]
	if !ok {
		return DebSource{}, fmt.Errorf("no package source known for %q (bundles hold packages for %s)", family, strings.Join(DebFamilyNames(), ", "))
	}
	return DebSource{Mirror: mirror, Suite: suite, Component: "main", Arch: "amd64", Family: family}, nil
}

// indexURLs are the release's InRelease and the Packages.gz it lists.
func (d DebSource) indexURLs() (inRelease, packages, entry string) {
	base := strings.TrimRight(d.Mirror, "/") + "/dists/" + d.Suite + "/"
	entry = d.Component + "/binary-" + d.Arch + "/Packages.gz"
	return base + "InRelease", base + entry, entry
}

// Package is one .deb of the bundle.
type Package struct {
	Family  string `json:"family"`
	Name    string `json:"name"`
	Version string `json:"version"`
	Path    string `json:"path"`
	SHA256  string `json:"sha256"`
	Size    int64  `json:"size"`
}

// debIndex maps package names (and what they provide) to stanzas.
type debIndex struct {
	pkgs     map[string]map[string]string
	provides map[string][]string
}

// fetchIndex reads the release's Packages.gz, checked against the SHA-256
// that InRelease gives for it. (The signature of InRelease itself is not
// checked here: the operator's apt keyring is not ours to read.)
func (d DebSource) fetchIndex(ctx context.Context, src Source) (*debIndex, error) {
	relURL, pkgURL, entry := d.indexURLs()
	rel, err := src.get(ctx, "InRelease", relURL)
	if err != nil {
		return nil, err
	}
	relData, err := io.ReadAll(io.LimitReader(rel, 8<<20))
	rel.Close()
	if err != nil {
		return nil, err
	}
	want := ""
	inSHA := false
	for _, line := range strings.Split(string(relData), "\n") {
		if !strings.HasPrefix(line, " ") {
			inSHA = strings.HasPrefix(line, "SHA256:")
			continue
		}
		if f := strings.Fields(line); inSHA && len(f) == 3 && f[2] == entry {
			want = f[0]
		}
	}
	if want == "" {
		return nil, &MissingError{Name: entry, URL: relURL, Why: "not listed in InRelease"}
	}
	body, err := src.get(ctx, entry, pkgURL)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	h := sha256.New()
	gz, err := gzip.NewReader(io.TeeReader(body, h))
	if err != nil {
		return nil, &MissingError{Name: entry, URL: pkgURL, Why: err.Error()}
	}
	idx, err := parseIndex(gz)
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, gz)
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return nil, &MissingError{Name: entry, URL: pkgURL, Why: "SHA-256 " + got + " differs from InRelease's " + want}
	}
	return idx, nil
}

func parseIndex(r io.Reader) (*debIndex, error) {
	idx := &debIndex{pkgs: map[string]map[string]string{}, provides: map[string][]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	cur := map[string]string{}
	last := ""
	flush := func() {
		name := cur["Package"]
		if name != "" {
			if _, dup := idx.pkgs[name]; !dup {
				idx.pkgs[name] = cur
				for _, p := range splitList(cur["Provides"]) {
					idx.provides[p] = append(idx.provides[p], name)
				}
			}
		}
		cur, last = map[string]string{}, ""
	}
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			flush()
		case line[0] == ' ' || line[0] == '\t':
			if last != "" {
				cur[last] += "\n" + line
			}
		default:
			k, v, ok := strings.Cut(line, ":")
			if ok {
				last = k
				cur[k] = strings.TrimSpace(v)
			}
		}
	}
	flush()
	return idx, sc.Err()
}

// splitList reads "a (>= 1), b [amd64]" into names.
func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if f := strings.Fields(part); len(f) > 0 {
			out = append(out, strings.SplitN(f[0], ":", 2)[0])
		}
	}
	return out
}

// base is what every install of the release has: the Essential and
// required packages and all they depend on. A virtual or alternative
// dependency counts as met by a required package when one offers it (mawk
// for awk), as apt and debootstrap choose, not by the archive's first.
func (idx *debIndex) base() map[string]bool {
	var roots []string
	required := map[string]bool{}
	for name, st := range idx.pkgs {
		if st["Essential"] == "yes" || st["Priority"] == "required" {
			roots = append(roots, name)
			required[name] = true
		}
	}
	sort.Strings(roots)
	seen := map[string]bool{}
	var walk func(string)
	walk = func(name string) {
		if seen[name] {
			return
		}
		seen[name] = true
		st := idx.pkgs[name]
		for _, field := range []string{"Pre-Depends", "Depends"} {
			for _, group := range strings.Split(st[field], ",") {
				if p := idx.pick(group, required); p != "" {
					walk(p)
				}
			}
		}
	}
	for _, r := range roots {
		walk(r)
	}
	return seen
}

// resolve returns the packages and every dependency they pull in,
// leaving out the base every system of the release has.
func (idx *debIndex) resolve(names []string) ([]map[string]string, error) {
	chosen := map[string]bool{}
	base := idx.base()
	var order []string
	var visit func(name string) error
	visit = func(name string) error {
		if chosen[name] {
			return nil
		}
		st, ok := idx.pkgs[name]
		if !ok {
			return fmt.Errorf("package %s is not in the archive", name)
		}
		chosen[name] = true
		order = append(order, name)
		for _, field := range []string{"Pre-Depends", "Depends"} {
			for _, group := range strings.Split(st[field], ",") {
				if strings.TrimSpace(group) == "" {
					continue
				}
				pick := idx.pick(group, base)
				if pick == "" {
					return fmt.Errorf("package %s: no package in the archive satisfies %q", name, strings.TrimSpace(group))
				}
				if base[pick] {
					continue
				}
				if err := visit(pick); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for _, n := range names {
		if err := visit(n); err != nil {
			return nil, err
		}
	}
	sort.Strings(order)
	var out []map[string]string
	for _, n := range order {
		out = append(out, idx.pkgs[n])
	}
	return out, nil
}

// pick chooses the alternative of "a | b (>= 2)" to use: one in prefer
// (itself or a package providing it), else the first the archive has.
func (idx *debIndex) pick(group string, prefer map[string]bool) string {
	for _, alt := range strings.Split(group, "|") {
		f := strings.Fields(alt)
		if len(f) == 0 {
			continue
		}
		name := strings.SplitN(f[0], ":", 2)[0]
		if _, ok := idx.pkgs[name]; ok && prefer[name] {
			return name
		}
		for _, p := range idx.provides[name] {
			if prefer[p] {
				return p
			}
		}
	}
	for _, alt := range strings.Split(group, "|") {
		f := strings.Fields(alt)
		if len(f) == 0 {
			continue
		}
		name := strings.SplitN(f[0], ":", 2)[0]
		if _, ok := idx.pkgs[name]; ok {
			return name
		}
		if prov := idx.provides[name]; len(prov) > 0 {
			return prov[0]
		}
	}
	return ""
}

// fetchDebs downloads the packages nodes need, with their dependencies,
// checked against the index, into dir/packages/<family>/ with a Packages
// file that makes the directory a repository apt can read.
func fetchDebs(ctx context.Context, src Source, d DebSource, names []string, dir, oldDir string) ([]Package, error) {
	idx, err := d.fetchIndex(ctx, src)
	if err != nil {
		return nil, err
	}
	list, err := idx.resolve(names)
	if err != nil {
		return nil, err
	}
	rel := path.Join("packages", d.Family)
	if err := os.MkdirAll(filepath.Join(dir, rel), 0o755); err != nil {
		return nil, err
	}
	var out []Package
	var stanzas strings.Builder
	for _, st := range list {
		file := path.Base(st["Filename"])
		a := Artifact{Name: st["Package"], Mode: 0o644}
		url := strings.TrimRight(d.Mirror, "/") + "/" + st["Filename"]
		dst := filepath.Join(dir, rel, file)
		var n int64
		if linkIfSame(filepath.Join(oldDir, rel, file), st["SHA256"], dst) {
			_, n, _ = fileSHA256(dst)
		} else if n, err = src.fetchURL(ctx, a, url, st["SHA256"], dst); err != nil {
			return nil, err
		}
		out = append(out, Package{Family: d.Family, Name: st["Package"], Version: st["Version"], Path: path.Join(rel, file), SHA256: st["SHA256"], Size: n})
		for _, k := range []string{"Package", "Version", "Architecture", "Multi-Arch", "Essential", "Priority", "Pre-Depends", "Depends", "Provides", "Conflicts", "Breaks", "Replaces"} {
			if v, ok := st[k]; ok {
				fmt.Fprintf(&stanzas, "%s: %s\n", k, v)
			}
		}
		fmt.Fprintf(&stanzas, "Filename: ./%s\nSize: %d\nSHA256: %s\n\n", file, n, st["SHA256"])
	}
	if err := os.WriteFile(filepath.Join(dir, rel, "Packages"), []byte(stanzas.String()), 0o644); err != nil {
		return nil, err
	}
	return out, nil
}
