package node

import (
	"context"
	"strings"

	"github.com/metalk8s/metalk8s/pkg/ssh"
	"github.com/metalk8s/metalk8s/pkg/steps"
)

// ResetStepName is remove-node's last step on the removed node.
const ResetStepName = "remove/node-reset"

// ResetStep stops and deletes, on a node removed from the cluster,
// node-exporter's unit and state and metalk8s's state directory
// (steps.StateDir: the staged bundle and the node's journal), after deps.
// The packages, kernel settings, container runtime and binaries that
// prepare installed stay: they serve the node if it comes back.
func ResetStep(host string, deps []string) *steps.Step {
	paths := []string{"/etc/systemd/system/" + NodeExporterUnit + ".service", "/var/lib/node-exporter", steps.StateDir(host)}
	return &steps.Step{ID: steps.ID(ResetStepName, host), Host: host, Phase: "remove", Deps: deps,
		Check: func(ctx context.Context, h steps.Host) (steps.Change, error) {
			have, err := steps.Existing(ctx, h, paths)
			if err != nil {
				return steps.NoChange, err
			}
			if len(have) > 0 {
				return steps.Changes("- stop " + NodeExporterUnit + " and delete " + strings.Join(have, ", ")), nil
			}
			return steps.NoChange, nil
		},
		Apply: func(ctx context.Context, h steps.Host) error {
			_, err := h.Run(ctx, "systemctl disable --now "+NodeExporterUnit+" 2>/dev/null; rm -rf "+ssh.QuoteAll(paths...)+" && systemctl daemon-reload")
			return err
		}}
}
