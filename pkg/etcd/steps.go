// Package etcd runs a TLS etcd cluster on the etcd group, from the
// bundle's binary under systemd, for kubeadm to use as external etcd.
package etcd

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/metalk8s/metalk8s/pkg/inventory"
	"github.com/metalk8s/metalk8s/pkg/pki"
	"github.com/metalk8s/metalk8s/pkg/ssh"
	"github.com/metalk8s/metalk8s/pkg/steps"
)

// Members are the PKI members of a cluster's etcd hosts: their name, ip
// and SSH address in the server and peer certificates.
func MembersOf(cl *inventory.Cluster) []Member {
	var out []Member
	for _, n := range cl.Etcd {
		sans := []string{n.Name}
		for _, a := range []string{n.IP, n.SSH.Host} {
			if a != "" && !contains(sans, a) {
				sans = append(sans, a)
			}
		}
		out = append(out, Member{Name: n.Name, SANs: sans})
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// run state shared by the etcd steps of one run.
type state struct {
	mu      sync.Mutex
	hasData map[string]bool // as the data steps found it
	started map[string]bool // members this run bootstrapped or joined
	join    sync.Mutex      // one member joins or restarts at a time
}

// Steps returns the etcd steps: the PKI (on this machine), then on each
// etcd host its certificates, whether it holds data, and its member; then
// the cluster's health.
func Steps(cl *inventory.Cluster, pkiDir string) ([]*steps.Step, error) {
	if len(cl.Etcd) == 0 {
		return nil, nil
	}
	p := &PKI{Dir: pkiDir}
	members := MembersOf(cl)
	first := cl.Etcd[0].Name
	pkiID := steps.ID("etcd/pki", first)
	st := &state{hasData: map[string]bool{}, started: map[string]bool{}}
	var out []*steps.Step
	// The PKI is made only after pki/recover has restored a lost local
	// copy from the nodes, so a running cluster never gets new CAs.
	recoverID := pki.RecoverStepID(cl.ControlPlane[0].Name)
	out = append(out, &steps.Step{ID: pkiID, Host: first, Phase: "etcd", Deps: []string{steps.ID("preflight/facts", first), recoverID}, Inputs: members,
		Check: func(ctx context.Context, h steps.Host) (steps.Change, error) {
			lines, err := p.Plan(members)
			return pki.Changes(lines), err
		},
		Apply: func(ctx context.Context, h steps.Host) error {
			_, err := p.Ensure(members)
			return err
		}})
	var dataIDs, memberIDs []string
	for _, n := range cl.Etcd {
		dataIDs = append(dataIDs, steps.ID("etcd/data", n.Name))
	}
	var names []string
	peers := map[string]string{}
	for _, n := range cl.Etcd {
		names = append(names, n.Name)
		peers[n.Name] = peerURL(n)
	}
	token := clusterToken(names)
	for _, n := range cl.Etcd {
		t, err := TimingsFor(n)
		if err != nil {
			return nil, err
		}
		host := n.Name
		certs := steps.ID("etcd/certs", host)
		memberID := steps.ID("etcd/member", host)
		memberIDs = append(memberIDs, memberID)
		env := envFor(n, t)
		files := []ssh.File{
			{Path: UnitFile, Data: []byte(unit), Mode: 0o644},
			{Path: EnvFile, Data: env, Mode: 0o644},
		}
		out = append(out,
			&steps.Step{ID: certs, Host: host, Phase: "etcd", Deps: []string{pkiID, steps.ID("prepare/state-dir", host)}, Inputs: members,
				Check: func(ctx context.Context, h steps.Host) (steps.Change, error) {
					want, err := certFiles(p, host)
					if err != nil {
						// Not made yet: the PKI step makes them first.
						return steps.Changes("+ install the etcd certificates in " + PKIDir), nil
					}
					return steps.FilesChange(ctx, h, want)
				},
				Apply: func(ctx context.Context, h steps.Host) error {
					want, err := certFiles(p, host)
					if err != nil {
						return err
					}
					for _, f := range want {
						if _, err := h.Put(ctx, f); err != nil {
							return err
						}
					}
					return nil
				}},
			&steps.Step{ID: steps.ID("etcd/data", host), Host: host, Phase: "etcd", Deps: []string{steps.ID("prepare/state-dir", host)},
				Check: func(ctx context.Context, h steps.Host) (steps.Change, error) {
					out, err := h.Run(ctx, "test -d "+DataDir+"/member && echo yes || echo no")
					if err != nil {
						return steps.NoChange, err
					}
					st.mu.Lock()
					st.hasData[host] = strings.TrimSpace(string(out)) == "yes"
					st.mu.Unlock()
					return steps.NoChange, nil
				}},
			&steps.Step{ID: memberID, Host: host, Phase: "etcd", Units: []string{"etcd"},
				Deps:   append([]string{certs, steps.ID("prepare/binaries", host)}, dataIDs...),
				Inputs: []any{env, unit, names},
				Check: func(ctx context.Context, h steps.Host) (steps.Change, error) {
					ch, err := steps.FilesChange(ctx, h, files)
					if err != nil {
						return ch, err
					}
					diff := ch.Diff
					if !st.has(host) {
						if st.any() {
							diff = append(diff, "+ join the existing etcd cluster (member add, then start)")
						} else {
							diff = append(diff, fmt.Sprintf("+ bootstrap a new etcd cluster of %s", strings.Join(names, ", ")))
						}
					}
					active, err := unitState(ctx, h)
					if err != nil {
						return steps.NoChange, err
					}
					if !active && st.has(host) {
						diff = append(diff, "~ start etcd")
					} else if active && len(ch.Diff) > 0 {
						diff = append(diff, "~ restart etcd")
					}
					return steps.Changes(diff...), nil
				},
				Apply: func(ctx context.Context, h steps.Host) error {
					return applyMember(ctx, h, p, st, host, files, names, peers, token)
				}},
		)
	}
	out = append(out, &steps.Step{ID: steps.ID("etcd/health", first), Host: first, Phase: "etcd", Deps: memberIDs, Inputs: names,
		Check: func(ctx context.Context, h steps.Host) (steps.Change, error) {
			// Members not running are not dialled: the client would retry
			// each until its timeout.
			var down []string
			for _, n := range names {
				mh := steps.HostFrom(ctx, n)
				if mh == nil {
					return steps.NoChange, fmt.Errorf("etcd: no connection to member %s", n)
				}
				active, err := unitState(ctx, mh)
				if err != nil {
					return steps.NoChange, err
				}
				if !active {
					down = append(down, n)
				}
			}
			if len(down) > 0 {
				return steps.Changes("~ wait for every member to be healthy (etcd not running on " + strings.Join(down, ", ") + ")"), nil
			}
			// Running members slow to answer (a busy host) are not a
			// change: wait a little.
			if err := waitHealthy(ctx, p, names, time.Minute); err != nil {
				return steps.Changes("~ wait for every member to be healthy (" + err.Error() + ")"), nil
			}
			return steps.NoChange, nil
		},
		Apply: func(ctx context.Context, h steps.Host) error {
			return waitHealthy(ctx, p, names, 3*time.Minute)
		}})
	return out, nil
}

func (s *state) has(host string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hasData[host] || s.started[host]
}

func (s *state) set(host string) { s.mu.Lock(); defer s.mu.Unlock(); s.started[host] = true }

// any says whether some member had data before this run: then new members
// join it; else the run bootstraps a new cluster.
func (s *state) any() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range s.hasData {
		if v {
			return true
		}
	}
	return false
}

func (s *state) withData() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for n, v := range s.hasData {
		if v || s.started[n] {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// applyMember writes the member's configuration, then: bootstraps (no
// member has data), joins (others have data, this one not), or makes sure
// the member runs, restarting it when its configuration changed.
func applyMember(ctx context.Context, h steps.Host, p *PKI, st *state, host string, files []ssh.File, names []string, peers map[string]string, token string) error {
	changed, err := steps.PutFiles(ctx, h, files)
	if err != nil {
		return err
	}
	if _, err := h.Run(ctx, "systemctl daemon-reload && systemctl enable etcd >/dev/null 2>&1"); err != nil {
		return err
	}
	switch {
	case !st.has(host) && !st.any():
		// A new cluster: every member starts at once and waits for the others.
		if _, err := h.Put(ctx, ssh.File{Path: InitialFile, Data: initialEnv("new", peers, token), Mode: 0o644}); err != nil {
			return err
		}
		if _, err := h.Run(ctx, "systemctl start --no-block etcd"); err != nil {
			return err
		}
		if err := waitStarted(ctx, h, 2*time.Minute, 2*time.Second); err != nil {
			return err
		}
		st.set(host)
		return nil
	case !st.has(host):
		st.join.Lock()
		defer st.join.Unlock()
		if err := join(ctx, h, p, st, host, peers, token); err != nil {
			return err
		}
		st.set(host)
		return nil
	}
	active, err := unitState(ctx, h)
	if err != nil {
		return err
	}
	if active && !changed {
		return nil
	}
	// One member at a time, and only while the others keep a quorum.
	st.join.Lock()
	defer st.join.Unlock()
	verb := "start"
	if active {
		verb = "restart"
	}
	if _, err := h.Run(ctx, "systemctl "+verb+" etcd"); err != nil {
		return err
	}
	return waitHealthy(ctx, p, []string{host}, 2*time.Minute)
}

// join adds this host to the running cluster with MemberAdd, then starts
// it as an existing-cluster member; quorum is checked before and after.
func join(ctx context.Context, h steps.Host, p *PKI, st *state, host string, peers map[string]string, token string) error {
	running := st.withData()
	if err := waitHealthy(ctx, p, running, time.Minute); err != nil {
		return fmt.Errorf("before adding %s: %w", host, err)
	}
	c, err := clientTo(ctx, p, running)
	if err != nil {
		return err
	}
	defer c.Close()
	urls, ids, err := Members(ctx, c)
	if err != nil {
		return err
	}
	if _, added := ids[peers[host]]; !added {
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := c.MemberAdd(actx, []string{peers[host]})
		cancel()
		if err != nil {
			return fmt.Errorf("etcd member add %s (%s): %w", host, peers[host], err)
		}
		urls, _, err = Members(ctx, c)
		if err != nil {
			return err
		}
	}
	initial := map[string]string{host: peers[host]}
	for name, us := range urls {
		if name != "" && len(us) > 0 {
			initial[name] = us[0]
		}
	}
	if _, err := h.Put(ctx, ssh.File{Path: InitialFile, Data: initialEnv("existing", initial, token), Mode: 0o644}); err != nil {
		return err
	}
	if _, err := h.Run(ctx, "systemctl start etcd"); err != nil {
		return err
	}
	return waitHealthy(ctx, p, append(running, host), 2*time.Minute)
}

// waitHealthy waits until every named member answers within a quorum.
func waitHealthy(ctx context.Context, p *PKI, names []string, limit time.Duration) error {
	ds, err := dialers(ctx, names)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(limit)
	for {
		var bad []string
		for _, hl := range Healthy(ctx, p, ds) {
			if !hl.Healthy {
				bad = append(bad, fmt.Sprintf("%s: %v", hl.Name, hl.Err))
			}
		}
		if len(bad) == 0 {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("etcd members not healthy after %s: %s", limit, strings.Join(bad, "; "))
		}
		time.Sleep(2 * time.Second)
	}
}

// waitStarted waits, polling every poll up to limit, until systemd has
// begun the etcd start job queued with --no-block: until then `systemctl
// is-active` says "inactive" (a busy host took over a second), and the
// member step's check would see a member that never started. A bootstrap
// member stays "activating" until a quorum of its peers is up; that is
// started enough. "failed" is an error at once.
func waitStarted(ctx context.Context, h steps.Host, limit, poll time.Duration) error {
	return steps.Poll(ctx, limit, poll, func(ctx context.Context) error {
		s, err := activeState(ctx, h)
		switch {
		case err != nil:
			return steps.Stop(err)
		case s == "active" || s == "activating":
			return nil
		case s == "failed":
			return steps.Stop(fmt.Errorf("etcd failed to start (journalctl -u etcd)"))
		}
		return fmt.Errorf("etcd not started after systemctl start: %s", s)
	})
}

// activeState is what `systemctl is-active etcd` says: "active",
// "activating", "inactive", "failed"...
func activeState(ctx context.Context, h steps.Host) (string, error) {
	out, err := h.Run(ctx, "systemctl is-active etcd 2>/dev/null || true")
	return strings.TrimSpace(string(out)), err
}

func unitState(ctx context.Context, h steps.Host) (bool, error) {
	s, err := activeState(ctx, h)
	return s == "active" || s == "activating", err
}

// certFiles are the member's PKI files (0600) and their expiry metrics
// (CertMetricsFile, 0644).
func certFiles(p *PKI, member string) ([]ssh.File, error) {
	want, err := p.Files(member)
	if err != nil {
		return nil, err
	}
	metrics, err := certMetrics(want)
	if err != nil {
		return nil, err
	}
	return append(toFiles(want), ssh.File{Path: CertMetricsFile, Data: metrics, Mode: 0o644}), nil
}

func toFiles(m map[string][]byte) []ssh.File {
	var out []ssh.File
	for _, p := range sortedNames(m) {
		out = append(out, ssh.File{Path: p, Data: m[p], Mode: 0o600})
	}
	return out
}

// clusterToken is the same for the same set of members.
func clusterToken(names []string) string {
	sum := sha256.Sum256([]byte(strings.Join(names, ",")))
	return "metalk8s-" + hex.EncodeToString(sum[:6])
}
