package steps

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metalk8s/metalk8s/pkg/inventory"
	"github.com/metalk8s/metalk8s/pkg/ssh"
)

// These tests run real commands with this machine's /bin/sh, through the
// same Client as an SSH host (ansible_connection=local).

func localSSHHost(t *testing.T, name string, log *RunLog) *SSHHost {
	t.Helper()
	dir := t.TempDir()
	pool, err := ssh.NewPool(ssh.Options{KnownHosts: filepath.Join(dir, "known_hosts"), CommandTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	c, err := pool.Client(name, inventory.SSHConfig{Connection: "local", Host: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &SSHHost{Client: c, Log: log}
}

// Every command's exit code, stdout and stderr from the batch are those of
// the same command run alone, awkward ones included.
func TestBatchMatchesLoneRuns(t *testing.T) {
	h := localSSHHost(t, "n1", nil)
	cmds := []ReadCmd{
		{Cmd: "echo hello"},
		{Cmd: "printf 'no final newline'"},
		{Cmd: "printf ''"},
		{Cmd: "echo out; echo err >&2; exit 3"},
		{Cmd: "echo '--'; echo 0; echo -- >&2"},
		{Cmd: "echo before # a comment with a )"},
		{Cmd: "cat; echo read-stdin"},
		{Cmd: "for i in 1 2 3; do\n  echo line $i\ndone"},
		{Cmd: "printf '\\000\\001binary\\n'"},
		{Cmd: "false"},
		{Cmd: "echo hello"}, // twice: the first result is kept
	}
	ctx := context.Background()
	res, err := h.Client.Run(ctx, BatchScript(cmds))
	if err != nil {
		t.Fatalf("batch: %v", err)
	}
	got, err := ParseBatch("n1", cmds, res.Stdout)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cmds {
		want, _ := h.Client.Run(ctx, c.Cmd)
		b := got[c.Cmd]
		if b.ExitCode != want.ExitCode || !bytes.Equal(b.Stdout, want.Stdout) || !bytes.Equal(b.Stderr, want.Stderr) {
			t.Errorf("%q: batch exit %d out %q err %q; alone exit %d out %q err %q", c.Cmd,
				b.ExitCode, b.Stdout, b.Stderr, want.ExitCode, want.Stdout, want.Stderr)
		}
	}
}

func TestParseBatchRefusesDamage(t *testing.T) {
	cmds := []ReadCmd{{Cmd: "a"}, {Cmd: "b"}}
	good := "0\n1\n--\n2\n0\n0\n3\n--\nx\nerr"
	if _, err := ParseBatch("n", cmds, []byte(good)); err != nil {
		t.Fatalf("good output: %v", err)
	}
	for name, out := range map[string]string{
		"truncated":     good[:len(good)-1],
		"extra":         good + "!",
		"no separator":  strings.Replace(good, "--\n2", "2", 1),
		"missing code":  "0\n--\n2\n0\n0\n3\n--\nx\nerr",
		"bad size":      strings.Replace(good, "\n3\n", "\nthree\n", 1),
		"negative size": strings.Replace(good, "\n3\n", "\n-3\n", 1),
		"empty":         "",
	} {
		if _, err := ParseBatch("n", cmds, []byte(out)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// A run with the last run's record answers its checks from the batch;
// the first Apply drops what is left, so a check after it reads afresh; a
// result serves one call; Fresh readings and secrets behave.
func TestPrefetchRun(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	os.WriteFile(state, []byte("old\n"), 0o600)
	secret := "s3cr3t-key-material"
	os.WriteFile(filepath.Join(dir, "key"), []byte(secret), 0o600)
	read := "cat " + ssh.Quote(state)

	var seen []string // what the second check after the change read
	var twice []string
	graph := func() *Graph {
		return mustGraph(t,
			&Step{ID: "a@n1", Host: "n1", Phase: "prepare",
				Check: func(ctx context.Context, h Host) (Change, error) {
					for range 2 { // a poll: the second call is live
						out, err := h.Run(ctx, "echo $$")
						if err != nil {
							return NoChange, err
						}
						twice = append(twice, string(out))
					}
					if _, err := h.(SecretRunner).RunSecret(ctx, "cat "+ssh.Quote(filepath.Join(dir, "key"))); err != nil {
						return NoChange, err
					}
					h.Run(Fresh(ctx), "date +%s%N")
					out, err := h.Run(ctx, read)
					if err != nil || string(out) == "new\n" {
						return NoChange, err
					}
					return Changes("~ state"), nil
				},
				Apply: func(ctx context.Context, h Host) error {
					_, err := h.Run(ctx, "echo new > "+ssh.Quote(state))
					return err
				}},
			&Step{ID: "b@n1", Host: "n1", Phase: "prepare", Deps: []string{"a@n1"},
				Check: func(ctx context.Context, h Host) (Change, error) {
					out, err := h.Run(ctx, read)
					seen = append(seen, string(out))
					return NoChange, err
				}},
		)
	}
	runOnce := func(apply bool, run string) (string, *Report) {
		t.Helper()
		path := filepath.Join(dir, "reads.json")
		p, err := LoadPrefetch(path)
		if err != nil {
			t.Fatal(err)
		}
		log, err := OpenRunLog(filepath.Join(dir, "logs"), run, nil)
		if err != nil {
			t.Fatal(err)
		}
		h := localSSHHost(t, "n1", log)
		seen, twice = nil, nil
		r := Run(context.Background(), graph(), map[string]Host{"n1": h}, Options{Apply: apply, Prefetch: p, Sleep: noSleep})
		if err := r.Err(); err != nil {
			t.Fatalf("%s: %v", run, err)
		}
		if err := p.Save(path); err != nil {
			t.Fatal(err)
		}
		log.Close()
		data, _ := os.ReadFile(log.Path)
		if strings.Contains(string(data), secret) {
			t.Fatalf("%s: the secret is in the run log", run)
		}
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("reads.json: %v %v", fi.Mode(), err)
		}
		return string(data), r
	}

	// First run, a plan: nothing recorded yet, everything live.
	log1, _ := runOnce(false, "1")
	if strings.Contains(log1, "(prefetched)") || strings.Contains(log1, "prefetch:") {
		t.Fatalf("first run used a prefetch:\n%s", log1)
	}
	rec, _ := LoadPrefetch(filepath.Join(dir, "reads.json"))
	var recorded []string
	for _, c := range rec.Commands("n1") {
		recorded = append(recorded, c.Cmd)
	}
	if strings.Join(recorded, "|") != "echo $$|cat "+ssh.Quote(filepath.Join(dir, "key"))+"|"+read ||
		!rec.Commands("n1")[1].Secret {
		t.Fatalf("recorded %+v", rec.Commands("n1"))
	}

	// Second run, up: a's check is answered by the batch (one result per
	// call), its Apply drops the rest, b's check after it reads "new".
	log2, r := runOnce(true, "2")
	if r.Outcomes["a@n1"].Status != StatusChanged {
		t.Fatalf("a: %s", r.Outcomes["a@n1"].Status)
	}
	if n := strings.Count(log2, "(prefetched)"); n != 2 {
		t.Errorf("%d prefetched answers, want 2 (echo $$ once, the state; the key is never batched):\n%s", n, log2)
	}
	if len(twice) != 4 || twice[0] == twice[1] {
		t.Errorf("the second identical call was served the first's result: %q", twice)
	}
	if strings.Contains(log2, "date +%s%N\n    exit 0 (prefetched)") {
		t.Errorf("a Fresh reading came from the prefetch")
	}
	if len(seen) != 1 || seen[0] != "new\n" {
		t.Errorf("b read %q after a's apply, want the new state", seen)
	}

	// Third run, a plan on the changed state: all from the batch, b's
	// read of the state too (the same command as a's, served to each step
	// once).
	log3, r := runOnce(false, "3")
	if r.Outcomes["a@n1"].Status != StatusOK {
		t.Fatalf("a: %s", r.Outcomes["a@n1"].Status)
	}
	if n := strings.Count(log3, "(prefetched)"); n != 3 {
		t.Errorf("%d prefetched answers, want 3:\n%s", n, log3)
	}
	if strings.Contains(BatchScript(batchable(rec.Commands("n1"))), "key") {
		t.Error("a secret's command is in the batch")
	}

	// A record others can write is not trusted.
	os.Chmod(filepath.Join(dir, "reads.json"), 0o666)
	if p, err := LoadPrefetch(filepath.Join(dir, "reads.json")); err == nil || len(p.Commands("n1")) != 0 {
		t.Errorf("a world-writable reads.json was read: %v", err)
	}
}

// A damaged record is ignored with an error for the log; the run goes on.
func TestLoadPrefetchDamaged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "reads.json")
	os.WriteFile(path, []byte("{not json"), 0o600)
	p, err := LoadPrefetch(path)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("err = %v", err)
	}
	if p == nil || len(p.Commands("n1")) != 0 {
		t.Errorf("damaged record gave %v", p)
	}
}
