// Package tools holds the scripts the Makefile runs; its tests run them.
package tools

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// fakeGo writes dir/go, a go command that reports version v.
func fakeGo(t *testing.T, dir, v string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go"), []byte("#!/bin/sh\necho go"+v+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

// goSh runs tools/go.sh with only the given PATH and GO_ROOT.
func goSh(t *testing.T, path, root string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("./go.sh", args...)
	cmd.Env = []string{"PATH=" + path, "GO_ROOT=" + root, "HOME=" + t.TempDir()}
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// wantGo is go.mod's go version.
func wantGo(t *testing.T) string {
	data, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go ([0-9.]+)$`).FindSubmatch(data)
	if m == nil {
		t.Fatal("go.mod has no go line")
	}
	return string(m[1])
}

// The Makefile's go: PATH's when new enough, else GO_ROOT's; make deps
// installs nothing when either is new enough.
func TestGoShChoosesAGoNewEnough(t *testing.T) {
	want := wantGo(t)
	dir := t.TempDir()
	old, newer, root := filepath.Join(dir, "old"), filepath.Join(dir, "new"), filepath.Join(dir, "root")
	fakeGo(t, old, "1.19.8")
	fakeGo(t, newer, want)
	fakeGo(t, filepath.Join(root, "bin"), "1.99.0")
	sys := "/usr/bin:/bin"
	for _, c := range []struct{ path, root, want string }{
		{newer + ":" + sys, root, filepath.Join(newer, "go")},
		{old + ":" + sys, root, filepath.Join(root, "bin/go")},
		{sys, root, filepath.Join(root, "bin/go")},
		{old + ":" + sys, filepath.Join(dir, "none"), filepath.Join(dir, "none/bin/go")}, // make deps puts one there
	} {
		got, err := goSh(t, c.path, c.root, "path")
		if err != nil || got != c.want {
			t.Errorf("PATH=%s GO_ROOT=%s: go.sh path = %q, %v; want %s", c.path, c.root, got, err, c.want)
		}
	}
	// install: nothing to do.
	if out, err := goSh(t, newer+":"+sys, root, "install"); err != nil || out != "" {
		t.Errorf("go.sh install with Go %s on PATH: %q, %v; want nothing done", want, out, err)
	}
	out, err := goSh(t, old+":"+sys, root, "install")
	if err != nil || !strings.Contains(out, "put "+filepath.Join(root, "bin")+" first") {
		t.Errorf("go.sh install with an old Go on PATH and a new one in GO_ROOT: %q, %v; want advice on PATH", out, err)
	}
	if _, err := goSh(t, sys, root, "bogus"); err == nil {
		t.Error("go.sh bogus: no error")
	}
}

// The real thing: Debian's Go 1.19 downloads the official toolchain
// module from the Go module proxy into a fresh GO_ROOT, replacing an
// older Go there, and it runs.
func TestGoShInstallsTheToolchain(t *testing.T) {
	if testing.Short() {
		t.Skip("downloads Debian's Go and the Go toolchain (150 MB)")
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		t.Skip("no apt-get")
	}
	want := wantGo(t)
	root := filepath.Join(t.TempDir(), "go")
	fakeGo(t, filepath.Join(root, "bin"), "1.19.8")
	out, err := goSh(t, "/usr/sbin:/usr/bin:/sbin:/bin", root, "install")
	t.Log(out)
	if err != nil {
		t.Fatalf("go.sh install: %v", err)
	}
	v, err := exec.Command(filepath.Join(root, "bin/go"), "version").Output()
	if err != nil || !strings.Contains(string(v), "go"+want+" ") {
		t.Fatalf("%s/bin/go version: %q, %v; want go%s", root, v, err, want)
	}
	if _, err := os.Stat(root + "-1.19.8-old/bin/go"); err != nil {
		t.Errorf("the older Go was not kept aside: %v", err)
	}
}
