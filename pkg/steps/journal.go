package steps

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/metalk8s/metalk8s/pkg/ssh"
)

// Entry is what the journal remembers of a step.
type Entry struct {
	Host        string    `json:"host"`
	Step        string    `json:"step"`
	Fingerprint string    `json:"fingerprint"`
	Status      Status    `json:"status"`
	Run         string    `json:"run"`
	At          time.Time `json:"at"`
	Diff        []string  `json:"diff,omitempty"`
}

// Journal records, per host and step, the last time it was found done or
// applied, and with which inputs. It lives in <inventory>/artifacts/.
type Journal struct {
	path    string
	mu      sync.Mutex
	entries map[string]Entry
}

// OpenJournal reads the journal, or starts an empty one.
func OpenJournal(path string) (*Journal, error) {
	j := &Journal{path: path, entries: map[string]Entry{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return j, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read journal: %w", err)
	}
	if err := json.Unmarshal(data, &j.entries); err != nil {
		return nil, fmt.Errorf("journal %s is damaged (%v); move it away to start afresh", path, err)
	}
	return j, nil
}

func entryFor(o *Outcome, run string) Entry {
	return Entry{Host: o.Step.Host, Step: o.Step.Name(), Fingerprint: o.Step.Fingerprint(),
		Status: o.Status, Run: run, At: time.Now().UTC(), Diff: o.Change.Diff}
}

// Done reports whether the step was last found done with the same inputs.
func (j *Journal) Done(s *Step) bool {
	e, ok := j.found(s)
	return ok && e.Fingerprint == s.Fingerprint()
}

// Stale reports whether the step was last found done with other inputs
// than it has now (an inventory edited since): its check, not the
// journal, must say whether it is done (Options.Recheck).
func (j *Journal) Stale(s *Step) bool {
	e, ok := j.found(s)
	return ok && e.Fingerprint != s.Fingerprint()
}

// found is the step's entry when it was last found done or applied.
func (j *Journal) found(s *Step) (Entry, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	e, ok := j.entries[s.ID]
	return e, ok && (e.Status == StatusOK || e.Status == StatusChanged)
}

// Record remembers a finished step (done or applied) and saves the journal.
func (j *Journal) Record(o *Outcome, run string) error {
	if o.Status != StatusOK && o.Status != StatusChanged {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries[o.Step.ID] = entryFor(o, run)
	return WriteFileAtomic(j.path, mustJSON(j.entries), 0o600)
}

// Entry returns the record of a step.
func (j *Journal) Entry(id string) (Entry, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	e, ok := j.entries[id]
	return e, ok
}

func mustJSON(v any) []byte {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic(err) // our own plain types always marshal
	}
	return append(b, '\n')
}

// WriteFileAtomic writes a temporary file and renames it, so a reader
// never sees half a file.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// StateDir is where metalk8s keeps its own files on a host, keyed by the
// inventory name (hosts of the test fleet share one filesystem).
func StateDir(host string) string { return "/var/lib/metalk8s/" + host }

// RecordOnHost writes the journal entry of an applied step on the host.
func RecordOnHost(ctx context.Context, h Host, o *Outcome, run string) error {
	e := entryFor(o, run)
	name := strings.NewReplacer("/", "_", "@", "_").Replace(o.Step.Name()) + ".json"
	_, err := h.Put(ctx, ssh.File{Path: StateDir(h.Name()) + "/journal/" + name, Data: mustJSON(e), Mode: 0o600})
	return err
}
