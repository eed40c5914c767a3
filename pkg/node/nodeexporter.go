package node

import (
	"context"
	"fmt"
	"strings"

	"github.com/metalk8s/metalk8s/pkg/bundle"
	"github.com/metalk8s/metalk8s/pkg/inventory"
	"github.com/metalk8s/metalk8s/pkg/ssh"
	"github.com/metalk8s/metalk8s/pkg/steps"
)

// NodeExporterPort is the TCP port node_exporter listens on, on every
// address of the node: Prometheus's registered default for it.
const NodeExporterPort = 9100

// NodeExporterUnit is the systemd unit's name.
const NodeExporterUnit = "node-exporter"

// TextfileDir is where node-exporter's textfile collector reads *.prom
// files: metrics other steps write (the etcd certificates' expiry).
const TextfileDir = "/var/lib/node-exporter/textfile"

// nodeExporterUnit runs the bundle's node_exporter as a systemd service,
// as MetalK8s 0.1 did so that etcd-only hosts are watched too. It runs
// under a dynamic user with a read-only view of the system; mounts of
// containers' and pods' own filesystems are left out (upstream's default
// list plus containerd's and the kubelet's directories; "$$" is systemd's
// literal "$").
// The binary's SHA-256 is written in it, so a new binary restarts it.
func nodeExporterUnit(sha256 string) string {
	return fmt.Sprintf(`# Written by metalk8s; node_exporter's SHA-256 %[1]s
[Unit]
Description=Prometheus node_exporter
Documentation=https://github.com/prometheus/node_exporter
After=network-online.target
Wants=network-online.target

[Service]
# the textfile directory, made as root ("+") before the sandbox applies
ExecStartPre=+/bin/mkdir -p %[3]s
ExecStart=/usr/local/bin/node_exporter --web.listen-address=:%[2]d \
  --collector.textfile.directory=%[3]s \
  --collector.filesystem.mount-points-exclude=^/(dev|proc|run/credentials/.+|run/containerd/.+|sys|var/lib/containerd/.+|var/lib/kubelet/pods/.+)($$|/)
DynamicUser=yes
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=read-only
PrivateTmp=yes
Restart=always
RestartSec=5

[Install]
WantedBy=multi-user.target
`, sha256, NodeExporterPort, TextfileDir)
}

// NodeExporter returns one step per node (k8s-cluster and etcd hosts
// alike) that runs node_exporter from the bundle's bin/node_exporter
// (installed by Bundle) as the systemd service node-exporter when
// enabled, or stops and removes that service when not. Enabled with a
// bundle lacking node_exporter is an error naming the bundle.
func NodeExporter(cl *inventory.Cluster, m *bundle.Manifest, enabled bool) ([]*steps.Step, error) {
	bin, ok := manifestFile(m, "node_exporter")
	if enabled && !ok {
		return nil, fmt.Errorf("the bundle has no node_exporter, which monitoring runs on every node: rebuild it with this metalk8s (`metalk8s bundle build`), or set metalk8s_node_exporter_enabled: false")
	}
	unit := ssh.File{Path: "/etc/systemd/system/" + NodeExporterUnit + ".service", Data: []byte(nodeExporterUnit(bin.SHA256)), Mode: 0o644}
	var out []*steps.Step
	for _, n := range cl.Nodes {
		host := n.Name
		s := &steps.Step{ID: steps.ID("prepare/node-exporter", host), Host: host, Phase: "prepare",
			Deps: []string{steps.ID("prepare/state-dir", host)}, Inputs: []any{enabled, unit}, Units: []string{NodeExporterUnit}}
		if enabled {
			s.Deps = []string{steps.ID("prepare/binaries", host)}
			s.Check = func(ctx context.Context, h steps.Host) (steps.Change, error) {
				return serviceState(ctx, h, NodeExporterUnit, []ssh.File{unit})
			}
			s.Apply = func(ctx context.Context, h steps.Host) error {
				return startService(ctx, h, NodeExporterUnit, []ssh.File{unit})
			}
		} else {
			s.Check = func(ctx context.Context, h steps.Host) (steps.Change, error) {
				out, err := h.Run(ctx, "test -e "+ssh.Quote(unit.Path)+" && echo present; true")
				if err != nil || strings.TrimSpace(string(out)) != "present" {
					return steps.NoChange, err
				}
				return steps.Changes("- stop and remove "+NodeExporterUnit+" (node-exporter is disabled)", "- remove "+unit.Path), nil
			}
			s.Apply = func(ctx context.Context, h steps.Host) error {
				_, err := h.Run(ctx, "systemctl disable --now "+NodeExporterUnit+" >/dev/null 2>&1; rm -f "+ssh.Quote(unit.Path)+
					" /usr/local/bin/node_exporter && systemctl daemon-reload && systemctl reset-failed "+NodeExporterUnit+" >/dev/null 2>&1; true")
				return err
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// manifestFile finds a bundle file by name ("node_exporter").
func manifestFile(m *bundle.Manifest, name string) (bundle.File, bool) {
	for _, f := range m.Files {
		if f.Name == name {
			return f, true
		}
	}
	return bundle.File{}, false
}

// serviceState is what writing files and having unit enabled and active
// would change: the files' diffs, then enable, start or (when a file
// changes under a running service) restart.
func serviceState(ctx context.Context, h steps.Host, unit string, files []ssh.File) (steps.Change, error) {
	ch, err := steps.FilesChange(ctx, h, files)
	if err != nil {
		return steps.NoChange, err
	}
	diff := ch.Diff
	out, err := h.Run(ctx, "systemctl is-enabled "+unit+" 2>/dev/null; systemctl is-active "+unit+" 2>/dev/null; true")
	if err != nil {
		return steps.NoChange, err
	}
	state := strings.Fields(string(out))
	if len(state) < 2 || state[0] != "enabled" {
		diff = append(diff, "~ enable "+unit)
	}
	if len(state) < 2 || state[1] != "active" {
		diff = append(diff, "~ start "+unit)
	} else if len(diff) > 0 {
		diff = append(diff, "~ restart "+unit)
	}
	return steps.Changes(diff...), nil
}

// startService writes files, then enables unit and starts it, or
// restarts it when a file changed.
func startService(ctx context.Context, h steps.Host, unit string, files []ssh.File) error {
	changed, err := steps.PutFiles(ctx, h, files)
	if err != nil {
		return err
	}
	verb := "start"
	if changed {
		verb = "restart"
	}
	_, err = h.Run(ctx, "systemctl daemon-reload && systemctl enable "+unit+" >/dev/null 2>&1 && systemctl "+verb+" "+unit)
	return err
}
