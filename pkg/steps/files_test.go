package steps

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/metalk8s/metalk8s/pkg/ssh"
)

// localHost runs commands with this machine's sh and sha256sum.
type localHost struct{}

func (localHost) Name() string { return "local" }
func (localHost) Run(ctx context.Context, cmd string) ([]byte, error) {
	return exec.CommandContext(ctx, "sh", "-c", cmd).Output()
}
func (localHost) Put(_ context.Context, f ssh.File) (bool, error) {
	if old, err := os.ReadFile(f.Path); err == nil && bytes.Equal(old, f.Data) {
		return false, nil
	}
	return true, os.WriteFile(f.Path, f.Data, f.Mode)
}

func TestFilesChange(t *testing.T) {
	dir := t.TempDir()
	same, other, missing := filepath.Join(dir, "same"), filepath.Join(dir, "other file"), filepath.Join(dir, "missing")
	os.WriteFile(same, []byte("a\n"), 0o644)
	os.WriteFile(other, []byte("old\n"), 0o644)
	files := []ssh.File{{Path: same, Data: []byte("a\n"), Mode: 0o644}, {Path: other, Data: []byte("new\n"), Mode: 0o644},
		{Path: missing, Data: []byte("m\n"), Mode: 0o644}}
	ctx := context.Background()
	ch, err := FilesChange(ctx, localHost{}, files)
	want := []string{"~ rewrite " + other, "+ write " + missing}
	if err != nil || !ch.Needed || !reflect.DeepEqual(ch.Diff, want) {
		t.Fatalf("FilesChange: %+v %v; want %q", ch, err, want)
	}
	if changed, err := PutFiles(ctx, localHost{}, files); err != nil || !changed {
		t.Fatalf("PutFiles: %v %v", changed, err)
	}
	if ch, err := FilesChange(ctx, localHost{}, files); err != nil || ch.Needed {
		t.Errorf("after PutFiles: %+v %v", ch, err)
	}
	if changed, err := PutFiles(ctx, localHost{}, files); err != nil || changed {
		t.Errorf("PutFiles again: %v %v", changed, err)
	}
}
