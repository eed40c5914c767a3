package bundle

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Debian's own archive is the peer here: the test reads bookworm's index
// and fetches the node packages with their dependencies.
func TestDebsFromDebianMirror(t *testing.T) {
	if testing.Short() {
		t.Skip("downloads from Debian's mirror")
	}
	d := DebSource{Mirror: "http://deb.debian.org/debian", Suite: "bookworm", Component: "main", Arch: "amd64", Family: "debian-12"}
	dir := t.TempDir()
	pkgs, err := fetchDebs(context.Background(), Source{}, d, []string{"lvm2", "ipvsadm", "socat", "xfsprogs"}, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, p := range pkgs {
		names[p.Name] = true
		if got, _, err := fileSHA256(filepath.Join(dir, p.Path)); err != nil || got != p.SHA256 {
			t.Errorf("%s: %v %s", p.Name, err, got)
		}
	}
	// lvm2 pulls in dmsetup and libdevmapper; libc6 (required) stays out.
	// xfsprogs needs python3, which needs libreadline8: a minimal system
	// lacks it (only gawk, not the required mawk, would have brought it).
	for _, want := range []string{"lvm2", "ipvsadm", "socat", "dmsetup", "libdevmapper1.02.1", "libreadline8"} {
		if !names[want] {
			t.Errorf("%s missing from %v", want, names)
		}
	}
	if names["libc6"] {
		t.Error("libc6 is on every system and must not be bundled")
	}
	// The directory is a repository apt itself can read.
	idx, err := os.ReadFile(filepath.Join(dir, "packages/debian-12/Packages"))
	if err != nil || !strings.Contains(string(idx), "Package: lvm2\n") || !strings.Contains(string(idx), "Filename: ./lvm2_") {
		t.Fatalf("Packages: %v\n%.300s", err, idx)
	}
	if _, err := exec.LookPath("apt-ftparchive"); err == nil {
		t.Log("apt-ftparchive present")
	}
	out, err := exec.Command("dpkg-deb", "--field", filepath.Join(dir, pkgs[0].Path), "Package").Output()
	if err != nil || strings.TrimSpace(string(out)) != pkgs[0].Name {
		t.Errorf("dpkg-deb reads %s as %q: %v", pkgs[0].Path, out, err)
	}
}

func TestResolveAlternativesAndProvides(t *testing.T) {
	idx, err := parseIndex(strings.NewReader(`Package: app
Depends: libc6 (>= 2.36), virt | missing, maybe-absent | real (>= 1)

Package: libc6
Priority: required

Package: provider
Provides: virt

Package: real
Depends: app
`))
	if err != nil {
		t.Fatal(err)
	}
	list, err := idx.resolve([]string{"app"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, st := range list {
		got = append(got, st["Package"])
	}
	if strings.Join(got, ",") != "app,provider,real" {
		t.Errorf("resolved %v", got)
	}
	if _, err := idx.resolve([]string{"nope"}); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("unknown package: %v", err)
	}
}

// A required package's virtual dependency is met by the required provider
// (mawk), not by the archive's first provider (gawk) and what it pulls in.
func TestBasePrefersRequiredProviders(t *testing.T) {
	idx, err := parseIndex(strings.NewReader(`Package: base-files
Priority: required
Depends: awk

Package: gawk
Provides: awk
Depends: libreadline8

Package: mawk
Priority: required
Provides: awk

Package: libreadline8

Package: tool
Depends: libreadline8, awk
`))
	if err != nil {
		t.Fatal(err)
	}
	if base := idx.base(); base["gawk"] || base["libreadline8"] || !base["mawk"] {
		t.Errorf("base = %v", base)
	}
	list, err := idx.resolve([]string{"tool"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, st := range list {
		got = append(got, st["Package"])
	}
	if strings.Join(got, ",") != "libreadline8,tool" {
		t.Errorf("resolved %v, want libreadline8 bundled and awk met by mawk", got)
	}
}
