package etcd

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/metalk8s/metalk8s/pkg/inventory"
	"github.com/metalk8s/metalk8s/pkg/ssh"
	"github.com/metalk8s/metalk8s/pkg/steps"
)

// CheckRemoval says why removing the member name from a cluster whose
// members answered health would lose etcd's quorum, or nil: the members
// left (len(health)-1) must keep a majority of them healthy, and one must
// be left (etcd's rule for a safe member removal: remove a member only
// when the rest still form a quorum). A member not in health is an error.
func CheckRemoval(health []Health, name string) error {
	var found bool
	var healthy, down []string
	for _, h := range health {
		switch {
		case h.Name == name:
			found = true
		case h.Healthy:
			healthy = append(healthy, h.Name)
		default:
			down = append(down, h.Name)
		}
	}
	if !found {
		return fmt.Errorf("%s is not an etcd member", name)
	}
	left := len(health) - 1
	if left == 0 {
		return fmt.Errorf("%s is the only etcd member: removing it would remove the cluster's data", name)
	}
	if quorum := left/2 + 1; len(healthy) < quorum {
		sort.Strings(down)
		return fmt.Errorf("removing %s would leave %d members with %d healthy (%s down), fewer than a quorum of %d: bring them back first",
			name, left, len(healthy), strings.Join(down, ", "), quorum)
	}
	return nil
}

// RemoveMember removes the member whose peer URL is peerURL (a member is
// known by its peer URL, not its name: one added but not started has
// none), with c; gone already is not an error. It reports whether it
// removed one.
func RemoveMember(ctx context.Context, c *clientv3.Client, peerURL string) (bool, error) {
	_, ids, err := Members(ctx, c)
	if err != nil {
		return false, err
	}
	id, ok := ids[peerURL]
	if !ok {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := c.MemberRemove(ctx, id); err != nil {
		return false, fmt.Errorf("etcd member remove %s (%x): %w", peerURL, id, err)
	}
	return true, nil
}

// Removal step IDs, on the first remaining member: "<name>@<first>",
// the removed member's name after a slash ("etcd-member/node3").
const (
	QuorumStepName = "remove/etcd-quorum"
	MemberStepName = "remove/etcd-member"
	ResetStepName  = "remove/etcd-reset" // on the removed host
)

// RemovalSteps are remove-node's etcd steps for member n, run from the
// members left (left, at least one): a check-only step that refuses when
// removing n would lose quorum (CheckRemoval; unreachable counts n as
// down) and the removal itself (by peer URL, quorum checked again, the
// members left healthy after), which deps precede. A member already gone
// changes nothing, so a re-run resumes.
func RemovalSteps(pkiDir string, left []*inventory.Node, n *inventory.Node, unreachable bool, deps []string) (quorum, remove *steps.Step) {
	p := &PKI{Dir: pkiDir}
	first := left[0].Name
	var names []string
	for _, m := range left {
		names = append(names, m.Name)
	}
	peer := peerURL(n)
	// present says whether n is still a member, with the health of every
	// member CheckRemoval needs.
	present := func(ctx context.Context) (bool, []Health, error) {
		ds, err := dialers(ctx, names)
		if err != nil {
			return false, nil, err
		}
		c, err := Client(ctx, p, ds)
		if err != nil {
			return false, nil, err
		}
		defer c.Close()
		_, ids, err := Members(ctx, c)
		if err != nil || ids[peer] == 0 {
			return false, nil, err
		}
		if !unreachable {
			if d, err := dialers(ctx, []string{n.Name}); err == nil {
				ds[n.Name] = d[n.Name]
			}
		}
		health := Healthy(ctx, p, ds)
		if _, ok := ds[n.Name]; !ok {
			health = append(health, Health{Name: n.Name, Err: fmt.Errorf("unreachable")})
		}
		return true, health, nil
	}
	quorum = &steps.Step{ID: steps.ID(QuorumStepName+"/"+n.Name, first), Host: first, Phase: "remove",
		Deps: deps, Inputs: peer,
		Check: func(ctx context.Context, _ steps.Host) (steps.Change, error) {
			in, health, err := present(ctx)
			if err != nil || !in {
				return steps.NoChange, err
			}
			return steps.NoChange, CheckRemoval(health, n.Name)
		}}
	remove = &steps.Step{ID: steps.ID(MemberStepName+"/"+n.Name, first), Host: first, Phase: "remove",
		Deps: append([]string{quorum.ID}, deps...), Inputs: peer,
		Check: func(ctx context.Context, _ steps.Host) (steps.Change, error) {
			in, _, err := present(ctx)
			if err != nil || !in {
				return steps.NoChange, err
			}
			ch := steps.Changes(fmt.Sprintf("- etcd member %s (%s)", n.Name, peer))
			ch.Destructive = "remove etcd member " + n.Name
			return ch, nil
		},
		Apply: func(ctx context.Context, _ steps.Host) error {
			in, health, err := present(ctx)
			if err != nil || !in {
				return err
			}
			if err := CheckRemoval(health, n.Name); err != nil {
				return err
			}
			c, err := clientTo(ctx, p, names)
			if err != nil {
				return err
			}
			defer c.Close()
			if _, err := RemoveMember(ctx, c, peer); err != nil {
				return err
			}
			return waitHealthy(ctx, p, names, 2*time.Minute)
		}}
	return quorum, remove
}

// resetPaths are what a member leaves on its host: its unit, settings,
// data, certificates and their expiry metrics.
var resetPaths = []string{UnitFile, "/etc/etcd", DataDir, PKIDir, CertMetricsFile}

// ResetStep stops a removed member's etcd and deletes resetPaths on its
// host (run once the member is out of the cluster: deps). Its data is a
// copy of the cluster's, useless once removed, and a member added again
// must start empty.
func ResetStep(n *inventory.Node, deps []string) *steps.Step {
	return &steps.Step{ID: steps.ID(ResetStepName, n.Name), Host: n.Name, Phase: "remove", Deps: deps,
		Units: []string{"etcd"},
		Check: func(ctx context.Context, h steps.Host) (steps.Change, error) {
			have, err := steps.Existing(ctx, h, resetPaths)
			if err != nil || len(have) == 0 {
				return steps.NoChange, err
			}
			return steps.Changes("- stop etcd and delete " + strings.Join(have, ", ")), nil
		},
		Apply: func(ctx context.Context, h steps.Host) error {
			_, err := h.Run(ctx, "systemctl disable --now etcd 2>/dev/null; rm -rf "+ssh.QuoteAll(resetPaths...)+" && systemctl daemon-reload")
			return err
		}}
}
