package main

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/metalk8s/metalk8s/pkg/addons"
	"github.com/metalk8s/metalk8s/pkg/cluster"
	"github.com/metalk8s/metalk8s/pkg/inventory"
	"github.com/metalk8s/metalk8s/pkg/ssh"
	"github.com/metalk8s/metalk8s/pkg/steps"
)

const oneNode = "[kube-master]\nn1 ansible_host=192.0.2.1\n[etcd]\nn1\n[kube-node]\nn1\n[k8s-cluster:children]\nkube-master\nkube-node"

// up and plan refuse to run without a bundle, saying how to make one.
func TestUpNeedsBundle(t *testing.T) {
	isolate(t)
	saved := keepSteps
	keepSteps = nil
	t.Cleanup(func() { keepSteps = saved })
	inv := writeInventory(t, oneNode)
	code, out, errOut := metalk8s(t, "up", inv)
	if code != exitUsage || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "--bundle DIR") ||
		!strings.Contains(errOut, "metalk8s_bundle") || !strings.Contains(errOut, "metalk8s bundle build -o DIR -i "+inv) {
		t.Errorf("up without a bundle: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := metalk8s(t, "plan", inv); code != exitUsage || !strings.Contains(errOut, "no bundle for "+inv) {
		t.Errorf("plan without a bundle: exit %d %s", code, errOut)
	}
}

// The phases' help names every addon of the catalog.
func TestPhaseHelpAddons(t *testing.T) {
	_, out, _ := metalk8s(t, "plan", "--help")
	for _, a := range addons.Names() {
		if !strings.Contains(out, a) {
			t.Errorf("plan --help does not name addon %s:\n%s", a, out)
		}
	}
}

type memHost string

func (h memHost) Name() string                                { return string(h) }
func (h memHost) Run(context.Context, string) ([]byte, error) { return nil, nil }
func (h memHost) Put(context.Context, ssh.File) (bool, error) { return false, nil }

// fakeUp stands in for cluster.Run: one step on n1 that would change and,
// in the passes destroys names (0 the first), destroy something. It
// records each pass's options.
type fakeUp struct {
	change   bool
	destroys map[int]string
	passes   []cluster.Options
}

func (f *fakeUp) run(ctx context.Context, _ *inventory.Cluster, o cluster.Options) (*cluster.Result, error) {
	pass := len(f.passes)
	f.passes = append(f.passes, o)
	applied := !f.change
	s := &steps.Step{ID: "storage/vg@n1", Host: "n1", Phase: "storage",
		Check: func(context.Context, steps.Host) (steps.Change, error) {
			if applied {
				return steps.NoChange, nil
			}
			ch := steps.Changes("- wipe /dev/vdc")
			ch.Destructive = f.destroys[pass]
			return ch, nil
		},
		Apply: func(context.Context, steps.Host) error { applied = true; return nil }}
	g, err := steps.NewGraph([]*steps.Step{s})
	if err != nil {
		return nil, err
	}
	r := steps.Run(ctx, g, map[string]steps.Host{"n1": memHost("n1")}, steps.Options{Apply: o.Apply, Confirm: o.Confirm})
	return &cluster.Result{Run: "run", Report: r, Log: "run.log"}, nil
}

// up checks first; on a terminal it shows the plan and asks, without one
// it refuses a plan that destroys something unless --yes.
func TestUpConfirmation(t *testing.T) {
	inv := writeInventory(t, oneNode)
	wipe := "wipe /dev/vdc (ext4 filesystem)"
	for _, c := range []struct {
		name     string
		terminal bool
		answer   string
		args     []string
		f        fakeUp
		code     int
		applied  bool     // a pass with Apply ran
		want     []string // in stdout and stderr
	}{
		{"no terminal, nothing destroyed", false, "", nil, fakeUp{change: true}, 0, true, []string{"up: 1 steps changed"}},
		{"no terminal, a wipe", false, "", nil, fakeUp{change: true, destroys: map[int]string{0: wipe}}, 2, false,
			[]string{"up would destroy: n1 storage/vg: " + wipe + "; there is no terminal to ask: run it with --yes"}},
		{"no terminal, a wipe, --yes", false, "", []string{"--yes"}, fakeUp{change: true, destroys: map[int]string{0: wipe}}, 0, true,
			[]string{"up: 1 steps changed"}},
		{"no terminal, add-node, a wipe", false, "", []string{"add-node", "n1"}, fakeUp{change: true, destroys: map[int]string{0: wipe}}, 2, false,
			[]string{"add-node would destroy: n1 storage/vg: " + wipe}},
		{"no terminal, remove-node, a member removed", false, "", []string{"remove-node", "n1"},
			fakeUp{change: true, destroys: map[int]string{0: "remove etcd member n1"}}, 2, false,
			[]string{"remove-node would destroy: n1 storage/vg: remove etcd member n1; there is no terminal to ask: run it with --yes"}},
		{"no terminal, remove-node, --yes", false, "", []string{"remove-node", "n1", "--yes"},
			fakeUp{change: true, destroys: map[int]string{0: "remove etcd member n1"}}, 0, true, []string{"remove-node: 1 steps changed"}},
		{"terminal, yes", true, "y\n", nil, fakeUp{change: true, destroys: map[int]string{0: wipe, 1: wipe}}, 0, true,
			[]string{"n1:\n  storage/vg\n      - wipe /dev/vdc\n1 steps would change.\n", "These changes destroy what is there:\n  n1 storage/vg: " + wipe,
				"Apply these changes? [y/N] ", "up: 1 steps changed"}},
		{"terminal, no", true, "n\n", nil, fakeUp{change: true}, 1, false, []string{"Apply these changes? [y/N] ", "up: not confirmed; nothing changed"}},
		{"terminal, no answer", true, "", nil, fakeUp{change: true}, 1, false, []string{"not confirmed"}},
		{"terminal, nothing to change", true, "", nil, fakeUp{}, 0, false, []string{"No changes: the cluster matches the inventory.\nup: nothing to change.\n"}},
		{"terminal, yes, a wipe the plan did not show", true, "yes\n", nil, fakeUp{change: true, destroys: map[int]string{1: wipe}}, 1, true,
			[]string{"would " + wipe + ", which the plan did not show: run up again to see it (or with --yes)"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			savedRun, savedAsk, savedAnswers := clusterRun, interactive, answers
			t.Cleanup(func() { clusterRun, interactive, answers = savedRun, savedAsk, savedAnswers })
			clusterRun = c.f.run
			interactive = func(*cli.Context) bool { return c.terminal }
			answers = func(*cli.Context) io.Reader { return strings.NewReader(c.answer) }
			args := []string{"up", inv}
			if len(c.args) > 0 && strings.HasSuffix(c.args[0], "-node") {
				args = []string{c.args[0], "-i", inv}
				c.args = c.args[1:]
			}
			code, out, errOut := metalk8s(t, append(args, c.args...)...)
			applied := false
			for _, o := range c.f.passes {
				applied = applied || o.Apply
			}
			if code != c.code || applied != c.applied {
				t.Errorf("exit %d (want %d), applied %v (want %v)\n%s%s", code, c.code, applied, c.applied, out, errOut)
			}
			for _, w := range c.want {
				if !strings.Contains(out+errOut, w) {
					t.Errorf("output lacks %q:\n%s%s", w, out, errOut)
				}
			}
			if c.code == 2 && strings.Count(errOut, "\n") != 1 {
				t.Errorf("refusal is not one line: %q", errOut)
			}
			if len(c.f.passes) > 0 && c.f.passes[0].Apply && c.f.passes[0].Confirm != nil {
				t.Error("--yes applied with a Confirm")
			}
		})
	}
}

// An interrupt at the question is no answer; so is the end of input.
func TestReadAnswer(t *testing.T) {
	r, w := io.Pipe()
	defer w.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out strings.Builder
	if a := readAnswer(ctx, r, &out); a != "" || out.String() != "\n" {
		t.Errorf("interrupted: %q %q", a, out.String())
	}
	if a := readAnswer(context.Background(), strings.NewReader("y"), &out); a != "y" {
		t.Errorf("y at end of input: %q", a)
	}
}
