package steps

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/metalk8s/metalk8s/pkg/ssh"
)

// ReadCmd is one command a check ran on a host.
type ReadCmd struct {
	Cmd    string `json:"cmd"`
	Secret bool   `json:"secret,omitempty"` // its stdout is never logged
}

// Prefetch runs, when a run first reaches a host, the commands the last
// run's checks ran there, all at once in one round trip, and hands each
// result to the first check of this run that runs the same command. On a
// cluster that already matches the inventory (a second up, a plan) every
// check is then answered without a command of its own.
//
// Checks are read-only, so running their commands early changes nothing;
// what the run itself changes is never served stale: the first Apply on
// any host drops every result not yet taken (an Apply on one host can
// change what another host reads, etcd's member list say). A result
// serves each step once, so a check that polls reads afresh the second
// time.
// Commands this run did not record, or a batch that failed, run as usual.
type Prefetch struct {
	// Timeout bounds one host's batch; past it the host's checks run
	// their commands one by one. Default 2 minutes.
	Timeout time.Duration

	last map[string][]ReadCmd // host -> what the last run's checks ran

	mu      sync.Mutex
	stale   bool
	batches map[string]*batch
	next    map[string][]ReadCmd
	seen    map[string]map[string]bool
}

// maxAge is how long a batch's results serve: a run slower than that
// (a plan on a busy cluster) reads the rest afresh.
const maxAge = 5 * time.Minute

type batch struct {
	once    sync.Once
	at      time.Time              // when the batch ended
	results map[string]*ssh.Result // cmd -> result
	taken   map[string]bool        // step + "\x00" + cmd: served already
}

// prefetchFile is the file's shape: host -> commands, in the order the
// checks first ran them.
type prefetchFile struct {
	Hosts map[string][]ReadCmd `json:"hosts"`
}

// LoadPrefetch reads what the last run recorded at path
// (<inventory>/artifacts/reads.json). A missing file gives an empty
// Prefetch; a damaged one too, with the error for the run log (it is a
// cache: the run is as right without it, only slower).
func LoadPrefetch(path string) (*Prefetch, error) {
	p := &Prefetch{last: map[string][]ReadCmd{}}
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return p, nil
	}
	if err != nil {
		return p, fmt.Errorf("read %s: %w", path, err)
	}
	// Its commands run as root on the nodes: only a file this user wrote
	// and nobody else can change is read.
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != os.Getuid() || fi.Mode().Perm()&0o022 != 0 {
		return p, fmt.Errorf("%s is not this user's or is writable by others (%v); ignored, the next run rewrites it", path, fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return p, fmt.Errorf("read %s: %w", path, err)
	}
	var f prefetchFile
	if err := json.Unmarshal(data, &f); err != nil {
		return p, fmt.Errorf("%s is damaged (%v); ignored, the next run rewrites it", path, err)
	}
	if f.Hosts != nil {
		p.last = f.Hosts
	}
	return p, nil
}

// Save writes the commands this run's checks ran, atomically and 0600,
// for the next run. Hosts this run did not reach keep what the last run
// recorded.
func (p *Prefetch) Save(path string) error {
	p.mu.Lock()
	f := prefetchFile{Hosts: map[string][]ReadCmd{}}
	for h, cmds := range p.last {
		f.Hosts[h] = cmds
	}
	for h, cmds := range p.next {
		f.Hosts[h] = cmds
	}
	p.mu.Unlock()
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".reads-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Commands is what the last run recorded for host.
func (p *Prefetch) Commands(host string) []ReadCmd { return p.last[host] }

type prefetchKey struct{}
type checkingKey struct{}

// checking marks ctx as the Check of step: its commands are recorded and
// may be served from the prefetch.
func checking(ctx context.Context, step string) context.Context {
	return context.WithValue(ctx, checkingKey{}, step)
}

// Fresh marks ctx so that the checks' commands run under it are never
// answered from the prefetch: for readings whose moment matters (a clock).
func Fresh(ctx context.Context) context.Context {
	return context.WithValue(ctx, checkingKey{}, "")
}

// prefetchFor is the run's Prefetch and the step while a Check runs,
// else nil.
func prefetchFor(ctx context.Context) (*Prefetch, string) {
	step, _ := ctx.Value(checkingKey{}).(string)
	if step == "" {
		return nil, ""
	}
	p, _ := ctx.Value(prefetchKey{}).(*Prefetch)
	return p, step
}

// invalidate drops every result not taken yet: the run is about to change
// something.
func (p *Prefetch) invalidate() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stale = true
	for _, b := range p.batches {
		b.results = nil
	}
}

// record notes that a check ran cmd on host.
func (p *Prefetch) record(host, cmd string, secret bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seen == nil {
		p.seen, p.next = map[string]map[string]bool{}, map[string][]ReadCmd{}
	}
	if p.seen[host] == nil {
		p.seen[host] = map[string]bool{}
	}
	if !p.seen[host][cmd] {
		p.seen[host][cmd] = true
		p.next[host] = append(p.next[host], ReadCmd{Cmd: cmd, Secret: secret})
	}
}

// take returns the prefetched result of cmd on h for step, running h's
// batch first if this is the run's first command there; ok is false when
// there is none (not recorded, already served to step, dropped, or the
// batch failed).
func (p *Prefetch) take(ctx context.Context, h *SSHHost, step, cmd string) (res *ssh.Result, ok bool) {
	p.mu.Lock()
	if p.stale || len(p.last[h.Name()]) == 0 {
		p.mu.Unlock()
		return nil, false
	}
	if p.batches == nil {
		p.batches = map[string]*batch{}
	}
	b := p.batches[h.Name()]
	if b == nil {
		b = &batch{}
		p.batches[h.Name()] = b
	}
	p.mu.Unlock()

	b.once.Do(func() {
		p.mu.Lock()
		stale := p.stale
		p.mu.Unlock()
		if stale {
			return
		}
		results := p.runBatch(ctx, h)
		p.mu.Lock()
		defer p.mu.Unlock()
		if !p.stale {
			b.results, b.taken, b.at = results, map[string]bool{}, time.Now()
		}
	})

	p.mu.Lock()
	defer p.mu.Unlock()
	res = b.results[cmd]
	key := step + "\x00" + cmd
	if res == nil || b.taken[key] || time.Since(b.at) > maxAge {
		return nil, false
	}
	b.taken[key] = true
	return res, true
}

// maxBatch bounds a batch script's size: in a session of its own (when
// the host's shells are busy) it is one argument of sh -c, which Linux
// caps at 128 KiB.
const maxBatch = 100 << 10

// runBatch runs the host's recorded commands in one round trip and
// returns their results by command, or nil when the batch failed.
func (p *Prefetch) runBatch(ctx context.Context, h *SSHHost) map[string]*ssh.Result {
	cmds := batchable(p.last[h.Name()])
	if len(cmds) == 0 {
		return nil
	}
	script := BatchScript(cmds)
	if len(ssh.Quote(script)) > maxBatch {
		h.Log.Printf("%s prefetch skipped: %d commands make a %d-byte script (at most %d)", h.Name(), len(cmds), len(script), maxBatch)
		return nil
	}
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	start := time.Now()
	res, err := h.Client.Run(ctx, script, ssh.WithTimeout(timeout))
	took := time.Since(start).Round(time.Millisecond)
	if err != nil {
		// The output holds secrets: the log gets the error without it.
		_, err = withoutStdout(res, err)
		h.Log.Printf("%s prefetch of %d commands failed after %s; its checks run their own: %v", h.Name(), len(cmds), took, err)
		return nil
	}
	results, err := ParseBatch(h.Name(), cmds, res.Stdout)
	if err != nil {
		h.Log.Printf("%s prefetch of %d commands: %v; its checks run their own", h.Name(), len(cmds), err)
		return nil
	}
	h.Log.Printf("%s prefetch: the last run's %d check commands, all at once, in %s", h.Name(), len(cmds), took)
	return results
}

// batchable are the commands a batch runs: not those whose output is a
// secret (a key's copy in a temporary file could outlive a killed batch).
func batchable(cmds []ReadCmd) []ReadCmd {
	var out []ReadCmd
	for _, c := range cmds {
		if !c.Secret {
			out = append(out, c)
		}
	}
	return out
}

// BatchScript is one /bin/sh script that runs every command at once, each
// in a subshell of its own with stdin from /dev/null as a lone command
// would, and then prints, in order: each command's exit code, a line
// "--", the sizes of each command's stdout and stderr, a line "--", and
// those outputs back to back (ParseBatch reads it). The outputs wait in
// a private temporary directory, removed when the script ends or is
// signalled.
func BatchScript(cmds []ReadCmd) string {
	var b strings.Builder
	b.WriteString("mk8s_batch=$(mktemp -d) || exit 1\ntrap 'rm -rf \"$mk8s_batch\"' EXIT\ntrap 'exit 129' HUP INT TERM\n")
	for i, c := range cmds {
		// The command on lines of its own: a trailing comment in it
		// cannot swallow the subshell's closing parenthesis.
		fmt.Fprintf(&b, "{ (\n%s\n) </dev/null >\"$mk8s_batch/%d.o\" 2>\"$mk8s_batch/%d.e\"; echo $? >\"$mk8s_batch/%d.c\"; } &\n", c.Cmd, i, i, i)
	}
	b.WriteString("wait\n")
	var codes, outs []string
	for i := range cmds {
		codes = append(codes, fmt.Sprintf("\"$mk8s_batch/%d.c\"", i))
		outs = append(outs, fmt.Sprintf("\"$mk8s_batch/%d.o\" \"$mk8s_batch/%d.e\"", i, i))
	}
	fmt.Fprintf(&b, "cat %s && echo -- && stat -c %%s %s && echo -- && cat %s\n",
		strings.Join(codes, " "), strings.Join(outs, " "), strings.Join(outs, " "))
	return b.String()
}

// ParseBatch reads BatchScript's output into results by command (the
// first, should one be there twice). Any mismatch in counts or sizes is
// an error: the output is then not trusted at all.
func ParseBatch(host string, cmds []ReadCmd, out []byte) (map[string]*ssh.Result, error) {
	n := len(cmds)
	rest := out
	line := func() (string, bool) {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			return "", false
		}
		l := string(rest[:i])
		rest = rest[i+1:]
		return l, true
	}
	num := func(what string) (int, error) {
		l, ok := line()
		if !ok {
			return 0, fmt.Errorf("batch output ends before %s", what)
		}
		v, err := strconv.Atoi(strings.TrimSpace(l))
		if err != nil || v < 0 {
			return 0, fmt.Errorf("batch output: %s is %q, not a number", what, l)
		}
		return v, nil
	}
	sep := func() error {
		if l, ok := line(); !ok || l != "--" {
			return errors.New("batch output: separator missing")
		}
		return nil
	}
	codes := make([]int, n)
	for i := range codes {
		v, err := num("an exit code")
		if err != nil {
			return nil, err
		}
		codes[i] = v
	}
	if err := sep(); err != nil {
		return nil, err
	}
	sizes := make([]int, 2*n)
	total := 0
	for i := range sizes {
		v, err := num("a size")
		if err != nil {
			return nil, err
		}
		sizes[i] = v
		total += v
	}
	if err := sep(); err != nil {
		return nil, err
	}
	if total != len(rest) {
		return nil, fmt.Errorf("batch output: %d bytes of output, the sizes say %d", len(rest), total)
	}
	results := map[string]*ssh.Result{}
	for i, c := range cmds {
		stdout := rest[:sizes[2*i]]
		rest = rest[sizes[2*i]:]
		stderr := rest[:sizes[2*i+1]]
		rest = rest[sizes[2*i+1]:]
		if results[c.Cmd] == nil {
			results[c.Cmd] = &ssh.Result{Host: host, Cmd: c.Cmd, ExitCode: codes[i], Stdout: stdout, Stderr: stderr}
		}
	}
	return results, nil
}

// resultErr is the error a lone run of the command would have returned.
func resultErr(res *ssh.Result) error {
	if res.ExitCode == 0 {
		return nil
	}
	return &ssh.CommandError{Result: *res}
}
