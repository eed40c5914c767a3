package pki

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/metalk8s/metalk8s/pkg/steps"
)

// RecoverStepName is the step that recovers the local PKI from the nodes;
// it runs on the first control plane, and the steps that make CAs (the
// etcd and Kubernetes PKI steps) depend on it.
const RecoverStepName = "pki/recover"

// RecoverStepID is the recover step's ID given the first control plane.
func RecoverStepID(firstControlPlane string) string {
	return steps.ID(RecoverStepName, firstControlPlane)
}

// RecoverStep compares the local PKI in dir (<inventory dir>/artifacts/pki)
// with the files pairs name on the nodes (read with cat over SSH, never
// logged), in phase preflight. Check: nothing to do when they match or the
// nodes hold nothing; "~ restore pki/<file> from <host>" for each file
// missing here; an error (MismatchError) when a CA here differs from the
// nodes', the nodes disagree, or a CA file is lost. Apply writes the
// restored files (0600, atomically). A node that cannot be read is a
// warning when the local copy is complete, else an error: the CA it may
// hold must not be made anew.
func RecoverStep(firstControlPlane, dir string, pairs []Pair) *steps.Step {
	decide := func(ctx context.Context) ([]Restore, []string, error) {
		held, failed := ReadHeld(ctx, pairs)
		rs, err := Decide(dir, pairs, held)
		if err != nil {
			return nil, nil, err
		}
		if len(failed) == 0 {
			return rs, nil, nil
		}
		var hosts, why []string
		for h, err := range failed {
			hosts = append(hosts, h)
			why = append(why, err.Error())
		}
		sort.Strings(hosts)
		sort.Strings(why)
		if len(rs) > 0 || !complete(dir, pairs) {
			return nil, nil, fmt.Errorf("the local PKI in %s is incomplete and %s could not be read, which may hold the cluster's CAs: %s",
				dir, strings.Join(hosts, ", "), strings.Join(why, "; "))
		}
		return nil, []string{fmt.Sprintf("the PKI on %s could not be read (%s): the local copy was compared with the other nodes only",
			strings.Join(hosts, ", "), strings.Join(why, "; "))}, nil
	}
	return &steps.Step{ID: RecoverStepID(firstControlPlane), Host: firstControlPlane, Phase: "preflight",
		Deps: []string{steps.ID("preflight/connect", firstControlPlane)}, Inputs: pairs,
		Check: func(ctx context.Context, h steps.Host) (steps.Change, error) {
			stage(dir, nil) // an earlier run's restores, in this process
			rs, warnings, err := decide(ctx)
			if err != nil {
				return steps.NoChange, err
			}
			var lines []string
			for _, r := range rs {
				lines = append(lines, r.Line())
			}
			// The checks after this one see the PKI as restored.
			stage(dir, rs)
			ch := steps.Changes(lines...)
			ch.Warnings = warnings
			return ch, nil
		},
		Apply: func(ctx context.Context, h steps.Host) error {
			rs, _, err := decide(ctx)
			if err != nil {
				return err
			}
			return WriteRestores(dir, rs)
		}}
}

// complete says whether every trusted file of pairs is present in dir.
func complete(dir string, pairs []Pair) bool {
	for _, p := range pairs {
		if !p.Trusted {
			continue
		}
		for _, src := range p.Files {
			if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(src.Local))); err != nil {
				return false
			}
		}
	}
	return true
}

// Changes is the step change of Plan's lines. A renewal replaces a
// certificate in use, so it is destructive: "replace node1/server.crt".
func Changes(lines []string) steps.Change {
	ch := steps.Changes(lines...)
	var replaced []string
	for _, l := range lines {
		if name, ok := strings.CutPrefix(l, "~ renew "); ok {
			name, _, _ = strings.Cut(name, " (")
			replaced = append(replaced, name)
		}
	}
	if len(replaced) > 0 {
		ch.Destructive = "replace " + strings.Join(replaced, ", ")
	}
	return ch
}
