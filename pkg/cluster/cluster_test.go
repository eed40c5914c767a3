package cluster

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metalk8s/metalk8s/pkg/inventory"
	"github.com/metalk8s/metalk8s/pkg/ssh"
	"github.com/metalk8s/metalk8s/pkg/steps"
	"github.com/metalk8s/metalk8s/test/fleet"

	"github.com/metalk8s/metalk8s/internal/testpeer"
)

// plan and up on the fleet of real sshd servers. The steps that exist so
// far only read the hosts, and write /var/lib/metalk8s/<inventory name>.

func fleetCluster(t *testing.T, f *fleet.Fleet) *inventory.Cluster {
	t.Helper()
	// A copy of the inventory per test keeps each test's artifacts apart.
	dir := t.TempDir()
	data, err := os.ReadFile(f.Inventory)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "hosts.ini")
	os.WriteFile(p, data, 0o600)
	inv, err := inventory.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := inventory.NewCluster(inv)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range cl.Nodes {
		os.RemoveAll(steps.StateDir(n.Name))
		os.Remove("/var/lib/metalk8s/" + n.Name + ".up.lock")
	}
	t.Cleanup(func() {
		for _, n := range cl.Nodes {
			os.RemoveAll(steps.StateDir(n.Name))
		}
	})
	return cl
}

func options(f *fleet.Fleet, apply bool) Options {
	return Options{Apply: apply, Out: io.Discard, SSH: ssh.Options{KnownHosts: f.KnownHosts, ConnectTimeout: 2 * time.Second}, Keep: fleet.SafeStep}
}

func changed(r *steps.Report, st steps.Status) []string {
	var out []string
	for id, o := range r.Outcomes {
		if o.Status == st {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

func TestPlanUpOnFleet(t *testing.T) {
	testpeer.OptOut(t, "fleet tests", false)
	f := fleet.Start(t, 3)
	t.Setenv("SSH_AUTH_SOCK", "")
	ctx := context.Background()

	t.Run("plan-equals-up-then-nothing", func(t *testing.T) {
		cl := fleetCluster(t, f)
		plan, err := Run(ctx, cl, options(f, false))
		if err != nil {
			t.Fatal(err)
		}
		if err := plan.Report.Err(); err != nil {
			t.Fatal(err)
		}
		pending := changed(plan.Report, steps.StatusPending)
		if len(pending) != 3 {
			t.Fatalf("plan: %v, want the 3 state dirs", pending)
		}
		for _, n := range cl.Nodes {
			if _, err := os.Stat(steps.StateDir(n.Name)); err == nil {
				t.Fatalf("plan changed %s", n.Name)
			}
		}
		up, err := Run(ctx, cl, options(f, true))
		if err != nil {
			t.Fatal(err)
		}
		if got := changed(up.Report, steps.StatusChanged); strings.Join(got, " ") != strings.Join(pending, " ") {
			t.Errorf("up applied %v, plan showed %v", got, pending)
		}
		again, err := Run(ctx, cl, options(f, true))
		if err != nil {
			t.Fatal(err)
		}
		if got := changed(again.Report, steps.StatusChanged); len(got) != 0 || again.Report.Count(steps.StatusOK) != len(again.Report.Outcomes) {
			t.Errorf("second up changed %v", got)
		}
		// The journal, on both sides, and the run log.
		j, err := steps.OpenJournal(filepath.Join(ArtifactsDir(cl), "journal.json"))
		if err != nil {
			t.Fatal(err)
		}
		if e, ok := j.Entry("prepare/state-dir@node-002"); !ok || e.Status != steps.StatusOK || e.Run != again.Run {
			t.Errorf("journal entry: %+v %v", e, ok)
		}
		if _, err := os.Stat(steps.StateDir("node-002") + "/journal/prepare_state-dir.json"); err != nil {
			t.Errorf("no journal on the host: %v", err)
		}
		log, _ := os.ReadFile(up.Log)
		if !strings.Contains(string(log), "node-001 $ mkdir -p /var/lib/metalk8s/node-001 && chmod 700") {
			t.Errorf("run log lacks the commands:\n%.2000s", log)
		}
		if st, _ := os.Stat(up.Log); st.Mode().Perm() != 0o600 {
			t.Errorf("run log mode %v", st.Mode().Perm())
		}
	})

	t.Run("host-down-mid-run-then-resume", func(t *testing.T) {
		cl := fleetCluster(t, f)
		victim := f.Host("node-002")
		link := func(state string) {
			if out, err := exec.Command("ip", "netns", "exec", victim.NetNS, "ip", "link", "set", "eth0", state).CombinedOutput(); err != nil {
				t.Fatalf("link %s: %v %s", state, err, out)
			}
		}
		defer link("up")
		o := options(f, true)
		// The node dies as soon as its facts are read.
		o.Observe = &onFinish{fn: func(out *steps.Outcome) {
			if out.Step.ID == "preflight/facts@node-002" {
				link("down")
			}
		}}
		res, err := Run(ctx, cl, o)
		if err != nil {
			t.Fatal(err)
		}
		r := res.Report
		for _, o := range r.Outcomes {
			switch {
			case o.Step.Host == "node-002" && o.Step.Phase == "prepare":
				if o.Status != steps.StatusBlocked && o.Status != steps.StatusFailed {
					t.Errorf("%s: %s on the dead host", o.Step.ID, o.Status)
				}
			case o.Step.Host != "node-002" && o.Step.ID != "preflight/unique-hostnames@node-001":
				if o.Status != steps.StatusOK && o.Status != steps.StatusChanged {
					t.Errorf("%s: %s, the other hosts must go on", o.Step.ID, o.Status)
				}
			}
		}
		if r.Err() == nil || len(res.Diag) == 0 {
			t.Fatalf("no failure or no diagnostics: %v %v", r.Err(), res.Diag)
		}
		checkDiag(t, res.Diag[0])
		if _, err := os.Stat(steps.StateDir("node-002")); err == nil {
			t.Fatal("the dead host changed")
		}
		link("up")
		res, err = Run(ctx, cl, options(f, true))
		if err != nil {
			t.Fatal(err)
		}
		if err := res.Report.Err(); err != nil {
			t.Fatal(err)
		}
		if got := changed(res.Report, steps.StatusChanged); strings.Join(got, " ") != "prepare/state-dir@node-002" {
			t.Errorf("resume changed %v, want only the dead host's step", got)
		}
	})

	t.Run("concurrent-up-refused", func(t *testing.T) {
		cl := fleetCluster(t, f)
		started, release := make(chan struct{}), make(chan struct{})
		o := options(f, true)
		var once sync.Once
		o.Observe = &onStart{fn: func(*steps.Step) {
			once.Do(func() { close(started); <-release })
		}}
		done := make(chan error, 1)
		go func() {
			_, err := Run(ctx, cl, o)
			done <- err
		}()
		<-started
		_, err := Run(ctx, cl, options(f, true))
		close(release)
		var le *steps.LockedError
		if !errors.As(err, &le) || !strings.Contains(err.Error(), "locked by") || !strings.Contains(err.Error(), "--force-unlock") {
			t.Errorf("second up: %v", err)
		}
		if err := <-done; err != nil {
			t.Fatalf("first up: %v", err)
		}
		// The lock is gone after the run; a stale one yields to --force-unlock.
		if _, err := os.Stat("/var/lib/metalk8s/node-001.up.lock"); err == nil {
			t.Error("lock left behind")
		}
		os.WriteFile("/var/lib/metalk8s/node-001.up.lock", []byte(`{"owner":"ghost@nowhere","pid":1,"run":"old"}`+"\n"), 0o600)
		if _, err := Run(ctx, cl, options(f, true)); !errors.As(err, &le) || le.Info.Owner != "ghost@nowhere" {
			t.Errorf("stale lock: %v", err)
		}
		fo := options(f, true)
		fo.ForceUnlock = true
		if _, err := Run(ctx, cl, fo); err != nil {
			t.Errorf("--force-unlock: %v", err)
		}
	})

	t.Run("only-and-skip", func(t *testing.T) {
		cl := fleetCluster(t, f)
		o := options(f, true)
		o.Only = map[string]bool{"prepare": true}
		_, err := Run(ctx, cl, o)
		var se *SelectionError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), "preflight/facts@node-001") {
			t.Fatalf("prepare alone on a fresh cluster: %v", err)
		}
		if _, err := Run(ctx, cl, options(f, true)); err != nil {
			t.Fatal(err)
		}
		res, err := Run(ctx, cl, o)
		if err != nil {
			t.Fatalf("prepare alone once preflight is done: %v", err)
		}
		if res.Report.Count(steps.StatusSkipped) == 0 || res.Report.Count(steps.StatusOK) != 3 {
			t.Errorf("only prepare: %v", res.Report.Outcomes)
		}
	})
}

type onFinish struct{ fn func(*steps.Outcome) }

func (e *onFinish) Started(*steps.Step)       {}
func (e *onFinish) Finished(o *steps.Outcome) { e.fn(o) }

type onStart struct{ fn func(*steps.Step) }

func (e *onStart) Started(s *steps.Step)   { e.fn(s) }
func (e *onStart) Finished(*steps.Outcome) {}

func checkDiag(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var names []string
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, h.Name)
		if h.Name == "diag/step.txt" {
			b, _ := io.ReadAll(tr)
			if !strings.Contains(string(b), "node-002") {
				t.Errorf("step.txt: %s", b)
			}
		}
	}
	all := strings.Join(names, " ")
	if !strings.Contains(all, "diag/step.txt") || !strings.Contains(all, "diag/dmesg-tail.txt") && !strings.Contains(all, "diag/unreachable.txt") {
		t.Errorf("bundle holds %v", names)
	}
	if !strings.Contains(filepath.Base(path), "-node-002.tar.gz") {
		t.Errorf("bundle name %s", path)
	}
}
