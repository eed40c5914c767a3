package pki

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/metalk8s/metalk8s/pkg/ssh"
	"github.com/metalk8s/metalk8s/pkg/steps"
)

// runQuiet runs cmd on h and returns its stdout, which never reaches the
// run log, the journal or an error message (steps.SecretRunner); a host
// that cannot keep it out is refused.
func runQuiet(ctx context.Context, h steps.Host, cmd string) ([]byte, error) {
	if q, ok := h.(steps.SecretRunner); ok {
		return q.RunSecret(ctx, cmd)
	}
	return nil, fmt.Errorf("host %s: cannot read keys without logging them (%T)", h.Name(), h)
}

// readCommand prints the sizes of the files that exist (wc -c: "<size>
// <path>" lines, then a total when more than one), a line "--", and
// their bytes one after the other; missing files print nothing. Two
// processes whatever the number of files: on the lab's emulated CPUs, a
// wc and a cat per file took 39 s for 16 files on a busy node.
func readCommand(paths []string) string {
	var q []string
	for _, p := range paths {
		q = append(q, ssh.Quote(p))
	}
	return "set --; for f in " + strings.Join(q, " ") + `; do if [ -f "$f" ]; then set -- "$@" "$f"; fi; done; if [ $# -gt 0 ]; then wc -c -- "$@" && echo -- && cat -- "$@"; fi`
}

// parseRead reads readCommand's output into path -> content.
func parseRead(out []byte, asked []string) (map[string][]byte, error) {
	files := map[string][]byte{}
	if len(out) == 0 {
		return files, nil
	}
	bad := errors.New("unexpected output (not shown: it may hold keys)")
	type entry struct {
		name string
		size int
	}
	var order []entry
	total := 0
	for {
		head, rest, ok := bytes.Cut(out, []byte("\n"))
		if !ok {
			return nil, errors.New("truncated output")
		}
		out = rest
		line := strings.TrimSpace(string(head))
		if line == "--" {
			break
		}
		size, name, _ := strings.Cut(line, " ")
		n, err := strconv.Atoi(size)
		if err != nil || n < 0 {
			return nil, bad
		}
		if name == "total" && len(order) > 1 {
			continue
		}
		if !contains(asked, name) {
			return nil, bad
		}
		order = append(order, entry{name, n})
		total += n
	}
	if total != len(out) {
		return nil, bad
	}
	for _, e := range order {
		files[e.name], out = out[:e.size], out[e.size:]
	}
	return files, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ReadHeld reads, on every host the pairs name (through steps.HostFrom),
// the node files of those pairs, in one command per host, hosts in
// parallel. It returns what was read and, per host, why it could not be
// read (an unreachable host).
func ReadHeld(ctx context.Context, pairs []Pair) (Held, map[string]error) {
	want := map[string][]string{} // host -> node paths
	for _, p := range pairs {
		for _, src := range p.Files {
			for _, h := range src.Hosts {
				if !contains(want[h], src.Node) {
					want[h] = append(want[h], src.Node)
				}
			}
		}
	}
	held, failed := Held{}, map[string]error{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for host, paths := range want {
		wg.Add(1)
		go func() {
			defer wg.Done()
			files, err := readHost(ctx, host, paths)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed[host] = err
			} else {
				held[host] = files
			}
		}()
	}
	wg.Wait()
	return held, failed
}

func readHost(ctx context.Context, host string, paths []string) (map[string][]byte, error) {
	h := steps.HostFrom(ctx, host)
	if h == nil {
		return nil, fmt.Errorf("no connection to %s", host)
	}
	sort.Strings(paths)
	out, err := runQuiet(ctx, h, readCommand(paths))
	if err != nil {
		return nil, fmt.Errorf("read the PKI on %s: %w", host, err)
	}
	files, err := parseRead(out, paths)
	if err != nil {
		return nil, fmt.Errorf("read the PKI on %s: %w", host, err)
	}
	return files, nil
}
