package node

import (
	"context"
	"strings"

	"github.com/metalk8s/metalk8s/pkg/inventory"
	"github.com/metalk8s/metalk8s/pkg/ssh"
	"github.com/metalk8s/metalk8s/pkg/steps"
)

// StateDir makes sure each node has metalk8s's own directory (its
// journal and lock live there), private to root.
func StateDir(cl *inventory.Cluster) []*steps.Step {
	var out []*steps.Step
	for _, n := range cl.Nodes {
		dir := steps.StateDir(n.Name)
		out = append(out, &steps.Step{ID: steps.ID("prepare/state-dir", n.Name), Host: n.Name, Phase: "prepare",
			Deps: []string{steps.ID("preflight/facts", n.Name)}, Inputs: dir,
			Check: func(ctx context.Context, h steps.Host) (steps.Change, error) {
				out, err := h.Run(ctx, "stat -c %a "+ssh.Quote(dir)+" 2>/dev/null || true")
				if err != nil {
					return steps.NoChange, err
				}
				switch mode := strings.TrimSpace(string(out)); mode {
				case "700":
					return steps.NoChange, nil
				case "":
					return steps.Changes("+ create " + dir + " (mode 0700)"), nil
				default:
					return steps.Changes("~ " + dir + " mode 0" + mode + " -> 0700"), nil
				}
			},
			Apply: func(ctx context.Context, h steps.Host) error {
				_, err := h.Run(ctx, "mkdir -p "+ssh.Quote(dir)+" && chmod 700 "+ssh.Quote(dir))
				return err
			}})
	}
	return out
}
