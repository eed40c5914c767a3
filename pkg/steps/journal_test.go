package steps

import (
	"path/filepath"
	"testing"
)

// Done needs the recorded inputs; Stale is a record with other inputs.
func TestJournalDoneAndStale(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.json")
	j, err := OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	s := &Step{ID: "etcd/member@node1", Host: "node1", Inputs: []string{"node1", "node2", "node3"}}
	if j.Done(s) || j.Stale(s) {
		t.Fatalf("an empty journal: done %v, stale %v", j.Done(s), j.Stale(s))
	}
	if err := j.Record(&Outcome{Step: s, Status: StatusChanged}, "run1"); err != nil {
		t.Fatal(err)
	}
	if !j.Done(s) || j.Stale(s) {
		t.Errorf("recorded: done %v, stale %v", j.Done(s), j.Stale(s))
	}
	again, err := OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	s.Inputs = []string{"node1", "node2"} // node3 removed from [etcd]
	if again.Done(s) || !again.Stale(s) {
		t.Errorf("other inputs: done %v, stale %v", again.Done(s), again.Stale(s))
	}
	failed := &Step{ID: "etcd/health@node1", Host: "node1"}
	_ = again.Record(&Outcome{Step: failed, Status: StatusFailed}, "run2")
	if again.Stale(failed) {
		t.Error("a failed step is not recorded, so not stale")
	}
}
