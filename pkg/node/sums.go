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

// remoteSums reads the SHA-256 of files on a host; missing files are
// absent from the result. Stamps (*.installed) hold a hash. One command
// reads every stat and cache entry; a second hashes only the files whose
// cache entry is missing or stale. Few processes: forks are slow on
// emulated CPUs and small nodes alike.
func remoteSums(ctx context.Context, h steps.Host, files []string) (map[string]remoteSum, error) {
	var stamps, plain, keys []string
	for _, f := range files {
		if strings.HasSuffix(f, ".installed") {
			stamps = append(stamps, ssh.Quote(f))
		} else {
			plain = append(plain, ssh.Quote(f))
			keys = append(keys, ssh.Quote(cacheKey(h.Name(), f)))
		}
	}
	sums := map[string]remoteSum{}
	if len(files) == 0 {
		return sums, nil
	}
	var script strings.Builder
	if len(plain) > 0 {
		script.WriteString("stat -c '%n|%s %i %y %z' -- " + strings.Join(plain, " ") + " 2>/dev/null; ")
	}
	script.WriteString("echo '--'; ")
	if all := append(keys, stamps...); len(all) > 0 {
		script.WriteString("grep -H '' -- " + strings.Join(all, " ") + " 2>/dev/null; ")
	}
	script.WriteString("true")
	out, err := h.Run(ctx, script.String())
	if err != nil {
		return nil, err
	}
	statPart, grepPart, _ := strings.Cut(string(out), "--\n")
	stats := map[string]string{}
	for _, line := range strings.Split(statPart, "\n") {
		if p, st, ok := strings.Cut(line, "|"); ok {
			stats[p] = st
		}
	}
	content := map[string]string{} // file -> first line
	for _, line := range strings.Split(grepPart, "\n") {
		if p, c, ok := strings.Cut(line, ":"); ok {
			if _, seen := content[p]; !seen {
				content[p] = c
			}
		}
	}
	var rehash []string
	for _, f := range files {
		if strings.HasSuffix(f, ".installed") {
			if c, ok := content[f]; ok {
				sums[f] = remoteSum{SHA256: strings.TrimSpace(c), Cached: true}
			}
			continue
		}
		st, ok := stats[f]
		if !ok {
			continue // missing
		}
		sum, cached, _ := strings.Cut(content[cacheKey(h.Name(), f)], " ")
		if cached == st && sum != "" {
			sums[f] = remoteSum{SHA256: sum, Cached: true}
		} else {
			rehash = append(rehash, f)
		}
	}
	if len(rehash) == 0 {
		return sums, nil
	}
	var q []string
	for _, f := range rehash {
		q = append(q, ssh.Quote(f))
	}
	out, err = h.Run(ctx, "sha256sum -- "+strings.Join(q, " "))
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(out), "\n") {
		if sum, p, ok := strings.Cut(line, "  "); ok {
			sums[p] = remoteSum{SHA256: sum}
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
// file is hashed first and a mismatch is an error naming the file. Two
// commands whatever the number of files: hash and stat, then write.
func seal(ctx context.Context, h steps.Host, files map[string]string, verify bool) error {
	if len(files) == 0 {
		return nil
	}
	paths := sortedKeys(files)
	var q []string
	for _, p := range paths {
		q = append(q, ssh.Quote(p))
	}
	script := ""
	if verify {
		script = "sha256sum -- " + strings.Join(q, " ") + "; "
	}
	script += "echo '--'; stat -c '%n|%s %i %y %z' -- " + strings.Join(q, " ")
	out, err := h.Run(ctx, script)
	if err != nil {
		return err
	}
	sumPart, statPart, _ := strings.Cut(string(out), "--\n")
	if verify {
		got := map[string]string{}
		for _, line := range strings.Split(sumPart, "\n") {
			if sum, p, ok := strings.Cut(line, "  "); ok {
				got[p] = sum
			}
		}
		for _, p := range paths {
			if got[p] != files[p] {
				return fmt.Errorf("host %s: %s: SHA-256 %s after writing it, want %s", h.Name(), p, got[p], files[p])
			}
		}
	}
	var w strings.Builder
	fmt.Fprintf(&w, "mkdir -p %s", ssh.Quote(sumCache(h.Name())))
	for _, line := range strings.Split(statPart, "\n") {
		if p, st, ok := strings.Cut(line, "|"); ok && files[p] != "" {
			fmt.Fprintf(&w, " && printf '%%s\\n' %s > %s", ssh.Quote(files[p]+" "+st), ssh.Quote(cacheKey(h.Name(), p)))
		}
	}
	_, err = h.Run(ctx, w.String())
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
