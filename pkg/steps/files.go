package steps

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/metalk8s/metalk8s/pkg/ssh"
)

// FileDiff says how a small file we own differs from want, given the
// SHA-256 the host has for it ("" when the file is missing).
func FileDiff(path, have string, want []byte) []string {
	sum := sha256.Sum256(want)
	switch have {
	case hex.EncodeToString(sum[:]):
		return nil
	case "":
		return []string{"+ write " + path}
	}
	return []string{"~ rewrite " + path}
}

// FilesChange compares small files with the host's, in one command.
func FilesChange(ctx context.Context, h Host, files []ssh.File) (Change, error) {
	var q []string
	for _, f := range files {
		q = append(q, ssh.Quote(f.Path))
	}
	out, err := h.Run(ctx, "sha256sum -- "+strings.Join(q, " ")+" 2>/dev/null; true")
	if err != nil {
		return NoChange, err
	}
	have := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if sum, p, ok := strings.Cut(l, "  "); ok {
			have[p] = sum
		}
	}
	var diff []string
	for _, f := range files {
		diff = append(diff, FileDiff(f.Path, have[f.Path], f.Data)...)
	}
	return Changes(diff...), nil
}

// PutFiles writes files in order and reports whether any of them changed.
func PutFiles(ctx context.Context, h Host, files []ssh.File) (changed bool, err error) {
	for _, f := range files {
		c, err := h.Put(ctx, f)
		if err != nil {
			return changed, err
		}
		changed = changed || c
	}
	return changed, nil
}

// Existing lists which of paths exist on h, in their order.
func Existing(ctx context.Context, h Host, paths []string) ([]string, error) {
	out, err := h.Run(ctx, "for p in "+ssh.QuoteAll(paths...)+`; do test -e "$p" && echo "$p"; done; true`)
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(out)), nil
}

// RunScript runs the shell script on h with args (each quoted), "-n"
// before them when dry (the script's own dry-run convention), and returns
// its output's non-empty lines.
func RunScript(ctx context.Context, h Host, script string, dry bool, args ...string) ([]string, error) {
	a := ssh.QuoteAll(args...)
	if dry {
		a = "-n " + a
	}
	out, err := h.Run(ctx, "sh -s -- "+a+" <<'METALK8S_EOF'\n"+script+"METALK8S_EOF")
	if err != nil {
		return nil, err
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	return lines, nil
}
