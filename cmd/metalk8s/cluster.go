package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/metalk8s/metalk8s/pkg/addons"
	"github.com/metalk8s/metalk8s/pkg/bundle"
	"github.com/metalk8s/metalk8s/pkg/cluster"
	"github.com/metalk8s/metalk8s/pkg/inventory"
	"github.com/metalk8s/metalk8s/pkg/steps"
)

// keepSteps filters the graph; nil keeps every step. Tests on the sshd
// fleet set it: the fleet's hosts share this machine's kernel and files.
var keepSteps func(stepID string) bool

func phaseHelp() string {
	var b strings.Builder
	b.WriteString("Phases, in order (for --only and --skip):\n")
	for _, p := range steps.Phases {
		fmt.Fprintf(&b, "  %-14s %s\n", p, steps.PhaseHelp[p])
		if p == "addons" {
			fmt.Fprintf(&b, "  %-14s (%s)\n", "", strings.Join(addons.Names(), ", "))
		}
	}
	return b.String()
}

func phaseFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "bundle", Usage: "install from bundle `DIR` (default: the inventory's metalk8s_bundle; required: make one with metalk8s bundle build)"},
		&cli.StringFlag{Name: "only", Usage: "run only these `PHASES` (comma-separated)"},
		&cli.StringFlag{Name: "skip", Usage: "skip these `PHASES` (comma-separated); what they hold must already be done"},
	}
}

// yesFlag and confirmHelp: up, add-node and remove-node check first, then ask.
var yesFlag = &cli.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "apply without showing the plan and asking first, destructive changes included"}

const confirmHelp = "On a terminal it first shows the plan and asks before applying it. Without one it\n" +
	"applies, unless the plan destroys something (wipes a forced drive, reformats a\n" +
	"forced volume, replaces a certificate, removes an etcd member or a Node, deletes\n" +
	"volumes): then it changes nothing and exits 2. --yes skips both.\n"

func upCommand() *cli.Command {
	return &cli.Command{
		Name:      "up",
		Usage:     "bring the cluster described by the inventory up to date",
		ArgsUsage: "hosts.ini",
		Description: "Checks every step and applies those that would change, hosts in parallel; a\n" +
			"re-run changes nothing and resumes after a failure. Takes a lock on the first\n" +
			"control-plane host. Logs every command to <inventory dir>/artifacts/logs/RUN.log.\n" +
			confirmHelp + "\n" + phaseHelp(),
		Flags: append(append([]cli.Flag{inventoryFlag,
			&cli.BoolFlag{Name: "force-unlock", Usage: "remove a lock left by a dead run before taking it"},
			yesFlag,
		}, phaseFlags()...), sshFlags()...),
		Action: func(c *cli.Context) error { return runCluster(c, true, selection{}) },
	}
}

func planCommand() *cli.Command {
	return &cli.Command{
		Name:      "plan",
		Usage:     "show what up would change, without changing anything",
		ArgsUsage: "hosts.ini",
		Description: "Runs every check that up runs, changes nothing, and prints per host the steps\n" +
			"that would change. Exit codes: 0 nothing would change, 3 changes are pending,\n" +
			"1 failure (a check failed or could not run), 2 bad usage or bad input.\n\n" + phaseHelp(),
		Flags: append(append([]cli.Flag{inventoryFlag,
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: "`text` or json"},
			&cli.StringFlag{Name: "add-node", Usage: "show what add-node would change for these `NODES` (comma-separated)"},
			&cli.StringFlag{Name: "remove-node", Usage: "show what remove-node would change for these `NODES` (comma-separated; with its flags)"},
		}, append(removeFlags(), phaseFlags()...)...), sshFlags()...),
		Action: func(c *cli.Context) error {
			var adding []string
			if a := c.String("add-node"); a != "" {
				adding = strings.Split(a, ",")
			}
			var remove *cluster.RemoveOptions
			if r := c.String("remove-node"); r != "" {
				if adding != nil {
					return usageError{"plan: --add-node and --remove-node are two runs: give one"}
				}
				remove = removeOptions(c, strings.Split(r, ","))
			}
			return runCluster(c, false, selection{adding: adding, remove: remove})
		},
	}
}

func addNodeCommand() *cli.Command {
	return &cli.Command{
		Name:      "add-node",
		Usage:     "join hosts added to the inventory, touching the other hosts only where they must change",
		ArgsUsage: "hosts.ini NODE...",
		Description: "Runs up for the named hosts (any roles: worker, control plane, etcd member)\n" +
			"and, on the other hosts, only the cluster-side steps their joining causes: the\n" +
			"new members' certificates, etcd's quorum check, the workers' lists of API\n" +
			"servers, the nodes Ready, their PersistentVolumes and the addons' values; the\n" +
			"read-only preflight checks run everywhere. The rest of the cluster must be up\n" +
			"to date (a run of up). `metalk8s plan --add-node NODE,... hosts.ini` shows what it\n" +
			"would change. New etcd members and control planes join one at a time.\n" + confirmHelp,
		Flags: append(append([]cli.Flag{inventoryFlag,
			&cli.BoolFlag{Name: "force-unlock", Usage: "remove a lock left by a dead run before taking it"},
			yesFlag,
		}, phaseFlags()[:1]...), sshFlags()...),
		Action: func(c *cli.Context) error {
			nodes := c.Args().Slice()
			if c.String("inventory") == "" && len(nodes) > 0 {
				nodes = nodes[1:]
			}
			if len(nodes) == 0 {
				return usageError{"add-node: name the hosts to add: metalk8s add-node hosts.ini NODE..."}
			}
			return runCluster(c, true, selection{adding: nodes})
		},
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// checkBundle refuses a bundle directory (--bundle, else the inventory's
// metalk8s_bundle) that is not a bundle, before any host is reached.
func checkBundle(cl *inventory.Cluster, flag string) error {
	dir := cluster.BundleDir(cl, flag)
	if dir == "" {
		return nil
	}
	if _, err := bundle.ReadManifest(dir); err != nil {
		if flag != "" {
			return usageError{"--bundle: " + err.Error()}
		}
		return usageError{fmt.Sprintf("metalk8s_bundle of %s: %v", cl.Inventory.Path, err)}
	}
	return nil
}

// selection is which graph a run walks: up's (all nil), add-node's
// (adding: the hosts it joins, cluster.AddNodePick), remove-node's or
// reset's.
type selection struct {
	adding []string
	remove *cluster.RemoveOptions
	reset  *cluster.ResetOptions
}

// runCluster runs up (apply) or plan, of the graph sel selects.
func runCluster(c *cli.Context, apply bool, sel selection) error {
	adding, remove := sel.adding, sel.remove
	cl, err := loadCluster(c)
	if err != nil {
		return err
	}
	var pick func(*steps.Step) bool
	if adding != nil {
		if pick, err = cluster.AddNodePick(cl, adding); err != nil {
			return usageError{err.Error()}
		}
	}
	only, err := steps.ParsePhases(c.String("only"))
	if err != nil {
		return usageError{"--only: " + err.Error()}
	}
	skip, err := steps.ParsePhases(c.String("skip"))
	if err != nil {
		return usageError{"--skip: " + err.Error()}
	}
	jsonOut := !apply && c.String("output") == "json"
	if !apply && !jsonOut && c.String("output") != "text" {
		return usageError{"--output must be text or json"}
	}
	if err := checkBundle(cl, c.String("bundle")); err != nil {
		return err
	}
	pool, err := poolOptions(c)
	if err != nil {
		return err
	}
	out := c.App.Writer
	progress := out
	if jsonOut {
		progress = c.App.ErrWriter
	}
	ctx, stop := interruptible(c.Context, c.App.ErrWriter, " (the cluster's lock then stays: the next run needs --force-unlock)")
	defer stop()
	o := cluster.Options{Apply: apply, SSH: pool, Forks: c.Int("forks"),
		Only: only, Skip: skip, Bundle: c.String("bundle"), ForceUnlock: apply && c.Bool("force-unlock"), Out: progress,
		Live: isTerminal(progress) && !verbose(c), Verbose: verbose(c),
		Keep: keepSteps, Pick: pick, Remove: remove, Reset: sel.reset}
	if apply && sel.reset == nil && !c.Bool("yes") { // reset asks its own question
		confirm, done, err := confirmChanges(ctx, c, cl, o)
		if err != nil || done {
			return err
		}
		o.Confirm = confirm
	}
	res, err := runClusterPass(ctx, cl, o)
	if err != nil {
		return err
	}
	r := res.Report
	if jsonOut {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		enc.Encode(cluster.Plan(res.Run, r))
	} else {
		steps.Summary(progress, r)
		// Before the verdict, which stays stdout's last line.
		for _, sk := range res.Skipped {
			fmt.Fprintf(out, "skipped on %s\n", sk)
		}
		if len(res.Skipped) > 0 {
			fmt.Fprintln(out, "if such a host comes back, its kubelet and etcd start again: run remove-node on it again, without --unreachable, before it is reused")
		}
		if !apply {
			fmt.Fprintln(out)
			cluster.PlanText(out, r)
		}
	}
	fmt.Fprintf(c.App.ErrWriter, "log: %s\n", res.Log)
	for _, d := range res.Diag {
		fmt.Fprintf(c.App.ErrWriter, "diagnostics: %s\n", d)
	}
	if err := r.Err(); err != nil {
		return cli.Exit(fmt.Sprintf("%s failed:\n%v", c.Command.Name, err), exitFailure)
	}
	if !apply && r.Count(steps.StatusPending) > 0 {
		return cli.Exit("", exitPending)
	}
	if apply {
		fmt.Fprintf(out, "%s: %d steps changed, %d unchanged.\n", c.Command.Name, r.Count(steps.StatusChanged), r.Count(steps.StatusOK))
	}
	return nil
}

// Seams for tests: the walk, whether to ask, and where answers come from.
var (
	clusterRun  = cluster.Run
	interactive = func(c *cli.Context) bool { return stdinTerminal(c) && isTerminal(c.App.Writer) }
	answers     = func(c *cli.Context) io.Reader { return c.App.Reader }
)

// runClusterPass is cluster.Run with its bad input as usage errors.
func runClusterPass(ctx context.Context, cl *inventory.Cluster, o cluster.Options) (*cluster.Result, error) {
	res, err := clusterRun(ctx, cl, o)
	var se *cluster.SelectionError
	var ie *cluster.InputError
	if errors.As(err, &se) || errors.As(err, &ie) {
		return nil, usageError{err.Error()}
	}
	return res, err
}

// confirmChanges checks first what up (or add-node) would change. On a
// terminal it shows the plan and asks; without one it refuses a plan that
// destroys anything (--yes allows it). It returns the apply's
// steps.Options.Confirm: only the destructive changes the plan showed and
// the operator accepted pass. done: nothing to apply.
func confirmChanges(ctx context.Context, c *cli.Context, cl *inventory.Cluster, o cluster.Options) (confirm func(*steps.Step, steps.Change) error, done bool, err error) {
	ask := interactive(c)
	o.Apply, o.ForceUnlock, o.SkipDiag = false, false, true
	if !ask {
		o.Out, o.Live = io.Discard, false
	}
	res, err := runClusterPass(ctx, cl, o)
	if err != nil {
		return nil, false, err
	}
	r, name, out := res.Report, c.Command.Name, c.App.Writer
	destroys := cluster.Destroys(r)
	shown := map[string]string{}
	if ask {
		steps.Summary(o.Out, r)
		fmt.Fprintln(out)
		v := cluster.NewVerdict(r)
		cluster.PlanText(out, r)
		fmt.Fprintf(c.App.ErrWriter, "plan log: %s\n", res.Log)
		if v.Complete && v.WouldChange == 0 {
			fmt.Fprintf(out, "%s: nothing to change.\n", name)
			return nil, true, nil
		}
		if len(destroys) > 0 {
			fmt.Fprintf(out, "These changes destroy what is there:\n  %s\n", strings.Join(destroys, "\n  "))
		}
		fmt.Fprint(out, "Apply these changes? [y/N] ")
		if a := strings.ToLower(readAnswer(ctx, answers(c), out)); a != "y" && a != "yes" {
			return nil, false, cli.Exit(name+": not confirmed; nothing changed", exitFailure)
		}
		for _, s := range r.Graph.Steps {
			if oc := r.Outcomes[s.ID]; oc.Status == steps.StatusPending {
				shown[s.ID] = oc.Change.Destructive
			}
		}
	} else if len(destroys) > 0 {
		return nil, false, usageError{fmt.Sprintf("%s would destroy: %s; there is no terminal to ask: run it with --yes to allow that",
			name, strings.Join(destroys, "; "))}
	}
	return func(s *steps.Step, ch steps.Change) error {
		if shown[s.ID] == ch.Destructive {
			return nil
		}
		return fmt.Errorf("would %s, which the plan did not show: run %s again to see it (or with --yes)", ch.Destructive, name)
	}, false, nil
}

// readAnswer reads a line of in; end of input or an interrupt (Ctrl-C,
// which ctx hears) is no answer.
func readAnswer(ctx context.Context, in io.Reader, out io.Writer) string {
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(in).ReadString('\n')
		line <- s
	}()
	select {
	case s := <-line:
		if !strings.HasSuffix(s, "\n") {
			fmt.Fprintln(out) // end of input: end the prompt's line
		}
		return strings.TrimSpace(s)
	case <-ctx.Done():
		fmt.Fprintln(out)
		return ""
	}
}
