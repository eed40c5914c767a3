package node

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/metalk8s/metalk8s/pkg/ssh"
	"github.com/metalk8s/metalk8s/pkg/steps"
)

// Hashing hundreds of megabytes on every check is slow on small nodes, so
// a node keeps a hash cache in its state directory: for each file, its
// SHA-256 with the size, inode, mtime and ctime (ns) it had when hashed or
// written; ctime cannot be set back, so a tampered file shows. A file
// whose stat no longer matches is hashed again. Checks only read the
// cache; applies write it (seal), after verifying what they wrote.

func sumCache(host string) string { return steps.StateDir(host) + "/sums" }

// cacheKey is the cache file of a path: slashes become '%'.
func cacheKey(host, p string) string {
	return sumCache(host) + "/" + strings.ReplaceAll(p, "/", "%")
}

// remoteSum is a file's hash on a host; cached says it came from the cache.
type remoteSum struct {
	SHA256 string
	Cached bool
}

// remoteSums reads the SHA-256 of files on a host in one command; missing
// files are absent from the result. Stamps (*.installed) hold a hash.
func remoteSums(ctx context.Context, h steps.Host, files []string) (map[string]remoteSum, error) {
	var q []string
	for _, f := range files {
		q = append(q, ssh.Quote(f))
	}
	script := `C=` + ssh.Quote(sumCache(h.Name())) + `; for f in ` + strings.Join(q, " ") + `; do [ -f "$f" ] || continue; ` +
		`case "$f" in *.installed) echo "$(cat "$f") c $f"; continue;; esac; ` +
		`k="$C/$(printf %s "$f" | tr / %)"; s=$(stat -c '%s %i %y %z' "$f"); ` +
		`if [ -f "$k" ] && [ "$(cut -d' ' -f2- "$k")" = "$s" ]; then echo "$(cut -d' ' -f1 "$k") c $f"; ` +
		`else echo "$(sha256sum < "$f" | cut -d' ' -f1) h $f"; fi; done`
	out, err := h.Run(ctx, script)
	if err != nil {
		return nil, err
	}
	sums := map[string]remoteSum{}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.SplitN(line, " ", 3); len(f) == 3 {
			sums[f[2]] = remoteSum{SHA256: f[0], Cached: f[1] == "c"}
		}
	}
	return sums, nil
}

// differing returns the items whose remote file (at where) does not hold
// the content hashed by want, reading every hash in one command.
func differing[T any](ctx context.Context, h steps.Host, items []T, where func(T) string, want func(T) string) ([]T, error) {
	out, _, err := differingUncached(ctx, h, items, where, want)
	return out, err
}

// differingUncached is differing, also returning the paths that match but
// were hashed afresh: an apply seals them so the next check is quick.
func differingUncached[T any](ctx context.Context, h steps.Host, items []T, where func(T) string, want func(T) string) ([]T, map[string]string, error) {
	var paths []string
	for _, it := range items {
		paths = append(paths, where(it))
	}
	sums, err := remoteSums(ctx, h, paths)
	if err != nil {
		return nil, nil, err
	}
	var out []T
	fresh := map[string]string{}
	for _, it := range items {
		got := sums[where(it)]
		switch {
		case got.SHA256 != want(it):
			out = append(out, it)
		case !got.Cached:
			fresh[where(it)] = got.SHA256
		}
	}
	return out, fresh, nil
}

// seal records the hashes of files in the host's cache. With verify, each
// file is hashed first and a mismatch is an error naming the file.
func seal(ctx context.Context, h steps.Host, files map[string]string, verify bool) error {
	if len(files) == 0 {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "set -e; C=%s; mkdir -p \"$C\"; seal() { ", ssh.Quote(sumCache(h.Name())))
	if verify {
		b.WriteString(`got=$(sha256sum < "$2" | cut -d' ' -f1); if [ "$got" != "$1" ]; then echo "$2: SHA-256 $got, want $1" >&2; exit 1; fi; `)
	}
	b.WriteString(`k="$C/$(printf %s "$2" | tr / %)"; printf '%s %s\n' "$1" "$(stat -c '%s %i %y %z' "$2")" > "$k.tmp"; mv -f "$k.tmp" "$k"; }`)
	for _, p := range sortedKeys(files) {
		fmt.Fprintf(&b, "; seal %s %s", files[p], ssh.Quote(p))
	}
	_, err := h.Run(ctx, b.String())
	return err
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// stage puts files on a host where their content differs, each written
// without a second comparison, then verifies and seals them; matching files
// hashed afresh are sealed too.
func stage(ctx context.Context, h steps.Host, files []ssh.File) error {
	missing, fresh, err := differingUncached(ctx, h, files,
		func(f ssh.File) string { return f.Path }, func(f ssh.File) string { return f.SHA256 })
	if err != nil {
		return err
	}
	if err := putAll(ctx, h, missing); err != nil {
		return err
	}
	written := map[string]string{}
	for _, f := range missing {
		written[f.Path] = f.SHA256
	}
	if err := seal(ctx, h, written, true); err != nil {
		return err
	}
	return seal(ctx, h, fresh, false)
}

// putParallel is how many files stage writes at once over the one SFTP
// session: many small files (packages) cost round trips, not bandwidth.
const putParallel = 6

// putAll writes files, a few at a time; the first error wins.
func putAll(ctx context.Context, h steps.Host, files []ssh.File) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, putParallel)
	errs := make(chan error, len(files))
	var wg sync.WaitGroup
	for _, f := range files {
		f.Replace = true
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if _, err := h.Put(ctx, f); err != nil {
				errs <- err
				cancel()
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}
