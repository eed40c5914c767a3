// Package cluster builds the one step graph of a cluster from its
// inventory, and walks it for plan and up.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/metalk8s/metalk8s/pkg/addons"
	"github.com/metalk8s/metalk8s/pkg/bundle"
	"github.com/metalk8s/metalk8s/pkg/etcd"
	"github.com/metalk8s/metalk8s/pkg/inventory"
	"github.com/metalk8s/metalk8s/pkg/kubeadm"
	"github.com/metalk8s/metalk8s/pkg/lvm"
	"github.com/metalk8s/metalk8s/pkg/network"
	"github.com/metalk8s/metalk8s/pkg/node"
	"github.com/metalk8s/metalk8s/pkg/pki"
	"github.com/metalk8s/metalk8s/pkg/ssh"
	"github.com/metalk8s/metalk8s/pkg/steps"
)

// Options for one plan or up.
type Options struct {
	Apply       bool // up; false is plan
	SSH         ssh.Options
	Forks       int
	Only, Skip  map[string]bool
	ForceUnlock bool
	Out         io.Writer    // progress and summary
	Live        bool         // redraw a per-host view (a terminal)
	Verbose     bool         // without Live: steps' starts too, and why steps wait (steps.Lines)
	Observe     steps.Events // also told of every step (for embedding and tests)
	Bundle      string       // bundle directory (else the inventory's metalk8s_bundle)
	// Keep, when set, keeps only the steps it accepts (embedding; tests on
	// the sshd fleet, whose hosts share this machine's kernel and files).
	Keep func(stepID string) bool
	// Pick, when set, runs only the steps it accepts (AddNodePick); the
	// others must be done already.
	Pick func(*steps.Step) bool
	// Remove, when set, runs remove-node's graph (RemoveNodeGraph) instead
	// of up's; Reset, reset's (ResetGraph).
	Remove *RemoveOptions
	Reset  *ResetOptions
	// Confirm is asked before a destructive change (steps.Options.Confirm).
	Confirm  func(*steps.Step, steps.Change) error
	SkipDiag bool // no diagnostics bundles (the check pass before up)
}

// Graph builds the steps for a cluster; bundleDir may be empty.
func Graph(cl *inventory.Cluster, bundleDir string) (*steps.Graph, error) {
	return graph(cl, bundleDir, true)
}

// graph is Graph; checkImages false leaves out the check that the bundle
// holds the addons' images (a run whose selection has no addons step).
func graph(cl *inventory.Cluster, bundleDir string, checkImages bool) (*steps.Graph, error) {
	store := node.NewFactStore()
	var all []*steps.Step
	var claiming map[string]bool // addon steps whose pods claim volumes
	all = append(all, node.Preflight(cl, store)...)
	all = append(all, node.StateDir(cl)...)
	all = append(all, node.System(cl)...)
	if bundleDir == "" {
		all = append(all, node.Packages(cl, store)...)
	}
	if bundleDir != "" {
		m, err := bundle.ReadManifest(bundleDir)
		if err != nil {
			return nil, err
		}
		// node_exporter on every node, for the monitoring addon
		withExporter, exporters, err := nodeExporter(cl)
		if err != nil {
			return nil, err
		}
		all = append(all, node.Bundle(cl, bundleDir, m, withExporter)...)
		ne, err := node.NodeExporter(cl, m, withExporter)
		if err != nil {
			return nil, fmt.Errorf("bundle %s: %w", bundleDir, err)
		}
		all = append(all, ne...)
		if len(m.Packages) > 0 {
			all = append(all, node.BundlePackages(cl, bundleDir, m, store)...)
		}
		all = append(all, node.Containerd(cl, bundleDir, m)...)
		// The nodes' CAs win over a missing local copy: recovered first.
		all = append(all, pki.RecoverStep(cl.ControlPlane[0].Name, filepath.Join(ArtifactsDir(cl), "pki"), recoverPairs(cl)))
		// etcd runs from the bundle's binary.
		et, err := etcd.Steps(cl, filepath.Join(ArtifactsDir(cl), "pki", "etcd"))
		if err != nil {
			return nil, err
		}
		all = append(all, et...)
		var k8s []*steps.Step
		k8s, claiming, err = kubernetesSteps(cl, all, bundleDir, m, exporters, checkImages)
		if err != nil {
			return nil, err
		}
		all = append(all, k8s...)
	}
	all = append(all, lvm.Steps(cl, ArtifactsDir(cl), all)...)
	// Last: the volumes phase needs the control plane's ready step (none without a bundle).
	vols := lvm.VolumeSteps(cl, ArtifactsDir(cl), all)
	all = append(all, vols...)
	waitForVolumes(all, claiming, vols)
	afterPreflight(all)
	return steps.NewGraph(all)
}

// afterPreflight makes every step that changes a host (Apply set) wait
// for all of that host's preflight checks and the cluster-wide ones (on
// no host of their own: unique-hostnames): a port taken or too little
// memory refuses a host before anything is changed on it. Check-only
// steps keep their own dependencies, so plan stays as parallel.
func afterPreflight(all []*steps.Step) {
	byHost := map[string][]string{}
	var clusterWide []string
	for _, s := range all {
		if s.Phase != "preflight" {
			continue
		}
		if s.Name() == "preflight/unique-hostnames" {
			clusterWide = append(clusterWide, s.ID)
			continue
		}
		byHost[s.Host] = append(byHost[s.Host], s.ID)
	}
	for _, s := range all {
		if s.Phase == "preflight" || s.Apply == nil {
			continue
		}
		for _, d := range append(byHost[s.Host], clusterWide...) {
			if !slices.Contains(s.Deps, d) {
				s.Deps = append(s.Deps, d)
			}
		}
	}
}

// waitForVolumes makes each step of all named in claiming (an addon
// whose pods claim local-lvm volumes) wait for the volumes phase's
// StorageClass and PersistentVolumes, not for its prune: otherwise the
// addon's claims stay Pending (no StorageClass; the lab's monitoring
// release once ran before it) and its wait times out.
func waitForVolumes(all []*steps.Step, claiming map[string]bool, vols []*steps.Step) {
	for _, s := range all {
		if !claiming[s.ID] {
			continue
		}
		for _, v := range vols {
			if !strings.HasPrefix(v.ID, lvm.PruneStep+"@") && !slices.Contains(s.Deps, v.ID) {
				s.Deps = append(s.Deps, v.ID)
			}
		}
	}
}

// kubernetesSteps are kubeadm's steps, the pod network's and the addons'
// releases (once every node is Ready); a node's kubeadm steps come after
// every prepare step of its host in before. claiming holds the IDs of
// the addons' steps whose objects claim local-lvm volumes (Addon.ClaimsVolumes).
func kubernetesSteps(cl *inventory.Cluster, before []*steps.Step, bundleDir string, m *bundle.Manifest, exporters []addons.Target, checkImages bool) (out []*steps.Step, claiming map[string]bool, err error) {
	art := ArtifactsDir(cl)
	kp, err := kubeadm.ParamsFrom(cl, true)
	if err != nil {
		return nil, nil, err
	}
	prepared := map[string][]string{}
	for _, s := range before {
		if s.Phase == "prepare" {
			prepared[s.Host] = append(prepared[s.Host], s.ID)
		}
	}
	out = kubeadm.Steps(cl, art, kp, prepared)
	joined := map[string]string{}
	for _, n := range cl.Nodes {
		if n.ControlPlane || n.Worker {
			joined[n.Name] = kubeadm.JoinStepID(n)
		}
	}
	images := kp.Versions().AddonImages()
	net, err := network.Steps(cl, art, network.Params{
		PodSubnet: kp.PodsSubnet, Bundled: kp.Bundled, EnableNFTables: kp.ProxyMode == "nftables",
		IPTablesResync: kp.FlannelIPTablesResync,
		FlannelImage:   images.Flannel, NetpolImage: images.KubeNetworkPolicies,
	}, joined)
	if err != nil {
		return nil, nil, err
	}
	out = append(out, net...)
	ads, err := addons.FromInventory(cl, addonParams(cl, kp.Versions(), kp.Bundled, exporters))
	if err != nil {
		return nil, nil, err
	}
	var bundled []string
	for _, im := range m.Images {
		bundled = append(bundled, im.Name)
	}
	if err := addons.CheckImages(ads, bundled, bundleDir); err != nil && checkImages {
		return nil, nil, &InputError{err}
	}
	first := cl.ControlPlane[0].Name
	claiming = map[string]bool{}
	for _, a := range ads {
		if a.Enabled && a.ClaimsVolumes(lvm.DefaultStorageClass) {
			claiming[addons.StepID(a.Name, first)] = true
		}
	}
	ready := steps.ID(network.NodesReadyStepID, first)
	return append(out, addons.Steps(cl, art, ads, []string{ready})...), claiming, nil
}

// recoverPairs are the PKI files pki/recover compares with the nodes'.
func recoverPairs(cl *inventory.Cluster) []pki.Pair {
	var cps []string
	for _, n := range cl.ControlPlane {
		cps = append(cps, n.Name)
	}
	return append(pki.KubernetesPairs(cps), etcd.RecoverPairs(cl)...)
}

// BundleDir is --bundle, else the inventory's metalk8s_bundle (relative to
// the inventory's directory), else none.
func BundleDir(cl *inventory.Cluster, flag string) string {
	if flag != "" {
		return flag
	}
	s, ok := cl.ControlPlane[0].Vars["metalk8s_bundle"].(string)
	if !ok || s == "" {
		return ""
	}
	if !filepath.IsAbs(s) {
		s = filepath.Join(filepath.Dir(cl.Inventory.Path), s)
	}
	return s
}

// ArtifactsDir is <inventory dir>/artifacts.
func ArtifactsDir(cl *inventory.Cluster) string {
	return filepath.Join(filepath.Dir(cl.Inventory.Path), "artifacts")
}

// Result is a finished plan or up.
type Result struct {
	Run    string
	Report *steps.Report
	Log    string   // the run log
	Diag   []string // diagnostics bundles of failed hosts
	// Skipped are the steps left out on unreachable hosts (remove-node
	// --unreachable), a line per host.
	Skipped []string
}

// Run walks the cluster's graph: checks only for plan; check, apply and
// check again for up, under the cluster lock.
func Run(ctx context.Context, cl *inventory.Cluster, o Options) (*Result, error) {
	bundleDir := BundleDir(cl, o.Bundle)
	var full *steps.Graph
	var skipped []string
	var err error
	nodes := cl.Nodes
	if o.Remove != nil {
		full, skipped, err = RemoveNodeGraph(cl, bundleDir, *o.Remove)
		if o.Remove.Unreachable {
			gone := map[string]bool{}
			for _, n := range o.Remove.Nodes {
				gone[n] = true
			}
			nodes = cl.Without(gone).Nodes
		}
	} else if o.Reset != nil {
		full, err = ResetGraph(cl, *o.Reset)
	} else {
		if bundleDir == "" && o.Keep == nil {
			return nil, inputErrorf("no bundle for %s: nodes download nothing, plan and up work from a bundle: "+
				"give --bundle DIR or set metalk8s_bundle: DIR in the inventory (make one: metalk8s bundle build -o DIR -i %s)",
				cl.Inventory.Path, cl.Inventory.Path)
		}
		// The addons' images are asked of the bundle only when a run
		// selects the addons phase (--skip addons leaves them out).
		addonsRun := !o.Skip["addons"] && (len(o.Only) == 0 || o.Only["addons"])
		full, err = graph(cl, bundleDir, addonsRun)
		var md *steps.MissingDepError
		if bundleDir != "" && errors.As(err, &md) {
			// A manifest that lacks what the inventory needs leaves steps
			// without theirs: say so, with the command that lists them.
			err = inputErrorf("the bundle %s does not hold what %s needs (%v); `metalk8s bundle verify -i %s %s` lists what it lacks",
				bundleDir, cl.Inventory.Path, err, cl.Inventory.Path, bundleDir)
		}
	}
	g := full
	if err == nil && o.Keep != nil {
		var kept []*steps.Step
		for _, s := range g.Steps {
			if o.Keep(s.ID) {
				kept = append(kept, s)
			}
		}
		g, err = steps.NewGraph(kept)
	}
	if err != nil {
		return nil, err
	}
	if err := emptyPhases(cl, full, g, bundleDir, o); err != nil {
		return nil, err
	}
	run := time.Now().UTC().Format("20060102-150405")
	if !o.Apply {
		run += "-plan"
	}
	art := ArtifactsDir(cl)
	if err := steps.InitArtifacts(art); err != nil {
		return nil, err
	}
	journal, err := steps.OpenJournal(filepath.Join(art, "journal.json"))
	if err != nil {
		return nil, err
	}
	secrets := []string{o.SSH.BecomePassword}
	for _, n := range cl.Nodes {
		secrets = append(secrets, n.SSH.BecomePassword)
	}
	log, err := steps.OpenRunLog(filepath.Join(art, "logs"), run, secrets)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	res := &Result{Run: run, Log: log.Path, Skipped: skipped}

	wo := steps.Options{Apply: o.Apply, Forks: o.Forks, Only: o.Only, Skip: o.Skip, Pick: o.Pick,
		Done: journal.Done, Transient: ssh.Transient, Confirm: o.Confirm}
	if o.Pick != nil {
		// add-node on an edited inventory (a member removed, a node
		// back in other roles): what the journal recorded with other
		// inputs is checked again, read-only.
		wo.Recheck = journal.Stale
	}
	if missing := steps.MissingDeps(g, &wo); len(missing) > 0 {
		return nil, &SelectionError{Missing: missing, Picked: o.Pick != nil}
	}

	pool, err := ssh.NewPool(o.SSH)
	if err != nil {
		return nil, err
	}
	hosts := map[string]steps.Host{}
	for _, n := range nodes {
		c, err := pool.Client(n.Name, n.SSH)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		hosts[n.Name] = &steps.SSHHost{Client: c, Log: log}
	}
	log.Printf("%s run %s on %s: %d steps, %d hosts", map[bool]string{true: "up", false: "plan"}[o.Apply], run, cl.Inventory.Path, len(g.Steps), len(hosts))

	if o.Apply {
		// The lock is on the first control plane (of those left, for
		// remove-node).
		first := cl.ControlPlane[0].Name
		if o.Remove != nil {
			first = g.Steps[0].Host
			for _, n := range cl.ControlPlane {
				if hosts[n.Name] != nil && !slices.Contains(o.Remove.Nodes, n.Name) {
					first = n.Name
					break
				}
			}
		}
		release, err := steps.Lock(ctx, hosts[first], run, o.ForceUnlock)
		if err != nil {
			return nil, err
		}
		defer release()
	}

	var ev steps.Events = &steps.Lines{W: o.Out, Verbose: o.Verbose}
	var live *steps.Live
	if o.Live {
		live = &steps.Live{W: o.Out, Total: len(g.Steps)}
		live.Start()
		ev = live
	}
	wo.Events = &recorder{next: ev, observe: o.Observe, journal: journal, hosts: hosts, run: run, log: log}
	res.Report = steps.Run(ctx, g, hosts, wo)
	if live != nil {
		live.Stop()
	}

	if o.Apply && o.Reset != nil && res.Report.Err() == nil {
		// The cluster is gone: its journal is kept aside, not read again.
		if err := os.Rename(filepath.Join(art, "journal.json"), filepath.Join(art, "journal.json.reset-"+run)); err != nil && !os.IsNotExist(err) {
			return nil, err
		}
	}
	for _, f := range res.Report.Failed() {
		// A host that could not be reached has nothing to collect: asking
		// it again only waits for the same timeout.
		if o.SkipDiag || !o.Apply && f.Status == steps.StatusCanceled || f.Step.Name() == "preflight/connect" {
			continue
		}
		p, err := steps.CollectDiag(ctx, hosts[f.Step.Host], f, filepath.Join(art, "diag"), run, log.Mask)
		if err != nil {
			log.Printf("diagnostics for %s: %v", f.Step.Host, err)
			continue
		}
		res.Diag = append(res.Diag, p)
	}
	return res, nil
}

// recorder keeps the journal as steps finish, then passes events on.
type recorder struct {
	next    steps.Events
	observe steps.Events
	journal *steps.Journal
	hosts   map[string]steps.Host
	run     string
	log     *steps.RunLog
}

func (r *recorder) Started(s *steps.Step) {
	r.log.Printf("%s step %s: start", s.Host, s.ID)
	if r.observe != nil {
		r.observe.Started(s)
	}
	r.next.Started(s)
}

func (r *recorder) Finished(o *steps.Outcome) {
	r.log.Printf("%s step %s: %s %v", o.Step.Host, o.Step.ID, o.Status, errOrDiff(o))
	if err := r.journal.Record(o, r.run); err != nil {
		r.log.Printf("journal: %v", err)
	}
	// remove-node's and reset's steps delete the host's state directory,
	// where the host's journal is: not recorded there.
	if o.Status == steps.StatusChanged && o.Step.Phase != "remove" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := steps.RecordOnHost(ctx, r.hosts[o.Step.Host], o, r.run); err != nil {
			r.log.Printf("%s journal on host: %v", o.Step.Host, err)
		}
		cancel()
	}
	if r.observe != nil {
		r.observe.Finished(o)
	}
	r.next.Finished(o)
}

func errOrDiff(o *steps.Outcome) string {
	if o.Err != nil {
		return o.Err.Error()
	}
	return strings.Join(o.Change.Diff, "; ")
}

// SelectionError: --only/--skip (or add-node) leave out steps that are
// not done yet.
type SelectionError struct {
	Missing []string
	Picked  bool // add-node's selection
}

func (e *SelectionError) Error() string {
	if e.Picked {
		return "the hosts to add need steps on the cluster's other hosts that are not done yet; run up first:\n  " +
			strings.Join(e.Missing, "\n  ")
	}
	return "the selected phases need steps of skipped phases that are not done yet; run those phases first:\n  " +
		strings.Join(e.Missing, "\n  ")
}

// emptyPhases refuses --only or --skip naming a phase with no steps in g,
// saying why it has none (full is g before Options.Keep).
func emptyPhases(cl *inventory.Cluster, full, g *steps.Graph, bundleDir string, o Options) error {
	count := func(g *steps.Graph, phase string) int {
		n := 0
		for _, s := range g.Steps {
			if s.Phase == phase {
				n++
			}
		}
		return n
	}
	inv := cl.Inventory.Path
	for _, p := range steps.Phases {
		flag := map[bool]string{true: "--only"}[o.Only[p]]
		if o.Skip[p] {
			flag = "--skip"
		}
		if flag == "" || count(g, p) > 0 {
			continue
		}
		why := "no host of " + inv + " needs it"
		switch {
		case count(full, p) > 0:
			why = "the steps this run keeps (Options.Keep) hold none of it"
		case p == "remove":
			why = "it holds the steps of remove-node and reset only"
		case bundleDir == "" && p != "preflight" && p != "prepare" && p != "storage":
			why = "without a bundle the graph has no etcd, Kubernetes or addon steps"
		case p == "storage":
			why = "no worker of " + inv + " has LVM drives (metalk8s_lvm_drives_<vg>)"
		}
		return inputErrorf("%s: phase %s has no steps: %s", flag, p, why)
	}
	return nil
}

// PlanText prints, per host, the steps that would change and their diffs,
// then the verdict (Verdict).
func PlanText(w io.Writer, r *steps.Report) int {
	changes := 0
	for _, h := range r.Graph.Hosts() {
		var lines []string
		for _, s := range r.Graph.Steps {
			o := r.Outcomes[s.ID]
			if s.Host != h {
				continue
			}
			for _, w := range o.Change.Warnings {
				lines = append(lines, fmt.Sprintf("  ! %s: %s", s.Name(), w))
			}
			if o.Status != steps.StatusPending {
				continue
			}
			changes++
			note := ""
			if o.AfterDeps {
				note = "  (after the steps it depends on)"
			}
			lines = append(lines, fmt.Sprintf("  %s%s", s.Name(), note))
			for _, d := range o.Change.Diff {
				lines = append(lines, "      "+d)
			}
		}
		if len(lines) > 0 {
			fmt.Fprintf(w, "%s:\n%s\n", h, strings.Join(lines, "\n"))
		}
	}
	fmt.Fprintln(w, NewVerdict(r).Text)
	return changes
}

// Verdict counts what a plan checked and what it could not.
type Verdict struct {
	// Complete: every step of the graph was checked (none failed, was
	// blocked, cancelled or skipped).
	Complete    bool   `json:"complete"`
	WouldChange int    `json:"would_change"`
	Unchanged   int    `json:"unchanged"`
	Failed      int    `json:"failed"`
	Blocked     int    `json:"blocked"`
	Canceled    int    `json:"canceled"`
	Skipped     int    `json:"skipped"` // not selected (--only, --skip, add-node)
	Text        string `json:"text"`
}

// NewVerdict counts a plan's outcomes. "No changes" only when every step
// was checked and none would change.
func NewVerdict(r *steps.Report) Verdict {
	v := Verdict{WouldChange: r.Count(steps.StatusPending), Unchanged: r.Count(steps.StatusOK),
		Failed: r.Count(steps.StatusFailed), Blocked: r.Count(steps.StatusBlocked),
		Canceled: r.Count(steps.StatusCanceled), Skipped: r.Count(steps.StatusSkipped)}
	unchecked := v.Failed + v.Blocked + v.Canceled
	v.Complete = unchecked+v.Skipped == 0
	notSelected := ""
	if v.Skipped > 0 {
		notSelected = fmt.Sprintf(" (%d steps not selected, not checked)", v.Skipped)
	}
	switch {
	case unchecked > 0:
		v.Text = fmt.Sprintf("Plan incomplete: %d failed, %d blocked, ", v.Failed, v.Blocked)
		if v.Canceled > 0 {
			v.Text += fmt.Sprintf("%d cancelled, ", v.Canceled)
		}
		v.Text += fmt.Sprintf("%d would change.", v.WouldChange)
	case v.WouldChange > 0:
		v.Text = fmt.Sprintf("%d steps would change%s.", v.WouldChange, notSelected)
	case v.Skipped > 0:
		v.Text = "No changes in the selected steps" + notSelected + "."
	default:
		v.Text = "No changes: the cluster matches the inventory."
	}
	return v
}

// PlanJSON is the machine form of a plan.
type PlanJSON struct {
	Run     string       `json:"run"`
	Verdict Verdict      `json:"verdict"`
	Changes []PlanChange `json:"changes"`
	Failed  []PlanChange `json:"failed"`
	// Warnings are steps with something to say, whether they change or not.
	Warnings []PlanChange `json:"warnings,omitempty"`
}

// PlanChange is one step that would change (or failed to check).
type PlanChange struct {
	Host      string   `json:"host"`
	Step      string   `json:"step"`
	Phase     string   `json:"phase"`
	Diff      []string `json:"diff,omitempty"`
	Warnings  []string `json:"warnings,omitempty"`
	AfterDeps bool     `json:"after_deps,omitempty"`
	Error     string   `json:"error,omitempty"`
	// Destructive says what the change destroys (steps.Change).
	Destructive string `json:"destructive,omitempty"`
}

// Destroys lists what a plan's changes destroy, "host step: what", in
// graph order.
func Destroys(r *steps.Report) []string {
	var out []string
	for _, s := range r.Graph.Steps {
		if o := r.Outcomes[s.ID]; o.Status == steps.StatusPending && o.Change.Destructive != "" {
			out = append(out, fmt.Sprintf("%s %s: %s", s.Host, s.Name(), o.Change.Destructive))
		}
	}
	return out
}

// Plan turns a report into PlanJSON.
func Plan(run string, r *steps.Report) PlanJSON {
	p := PlanJSON{Run: run, Verdict: NewVerdict(r), Changes: []PlanChange{}, Failed: []PlanChange{}}
	for _, s := range r.Graph.Steps {
		o := r.Outcomes[s.ID]
		c := PlanChange{Host: s.Host, Step: s.Name(), Phase: s.Phase, Diff: o.Change.Diff, Warnings: o.Change.Warnings,
			AfterDeps: o.AfterDeps, Destructive: o.Change.Destructive}
		if len(o.Change.Warnings) > 0 {
			p.Warnings = append(p.Warnings, c)
		}
		switch o.Status {
		case steps.StatusPending:
			p.Changes = append(p.Changes, c)
		case steps.StatusFailed, steps.StatusBlocked, steps.StatusCanceled:
			c.Error = fmt.Sprint(o.Err)
			p.Failed = append(p.Failed, c)
		}
	}
	return p
}
