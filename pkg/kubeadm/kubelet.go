package kubeadm

import (
	"context"
	"path"
	"slices"
	"strings"

	"github.com/metalk8s/metalk8s/pkg/inventory"
	"github.com/metalk8s/metalk8s/pkg/ssh"
	"github.com/metalk8s/metalk8s/pkg/steps"
)

// Paths of the kubelet's systemd unit and kubeadm's drop-in. kubeadm
// writes /var/lib/kubelet/config.yaml and kubeadm-flags.env, and the
// kubeconfigs; the unit only has to read them (kubeadm's documented
// contract: "Configuring each kubelet in your cluster using kubeadm").
const (
	KubeletUnitFile   = "/etc/systemd/system/kubelet.service"
	KubeletDropInFile = "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf"
)

// kubeletUnit runs the bundle's kubelet, restarting it forever: until
// kubeadm has written its configuration, the kubelet exits at once.
const kubeletUnit = `# Written by metalk8s.
[Unit]
Description=kubelet, the Kubernetes node agent
Documentation=https://kubernetes.io/docs/reference/command-line-tools-reference/kubelet/
Wants=network-online.target containerd.service
After=network-online.target containerd.service

[Service]
ExecStart=/usr/local/bin/kubelet
Restart=always
RestartSec=10
StartLimitInterval=0

[Install]
WantedBy=multi-user.target
`

// kubeletDropIn passes the kubelet what kubeadm writes: its kubeconfigs,
// its configuration file and the flags kubeadm computes for this node.
const kubeletDropIn = `# Written by metalk8s: the files kubeadm init and join write.
[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=/usr/local/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
`

// kubeletSteps install and enable the kubelet unit on every Kubernetes
// node (phase prepare), with the kubeadm_patches files that kubeadm init
// and join read; kubeadm starts the kubelet. The patches directory is
// metalk8s's (as it is kubespray's): files in it that are not of
// kubeadm_patches are removed.
func kubeletSteps(cl *inventory.Cluster, p *Params) []*steps.Step {
	files := []ssh.File{
		{Path: KubeletUnitFile, Data: []byte(kubeletUnit), Mode: 0o644},
		{Path: KubeletDropInFile, Data: []byte(kubeletDropIn), Mode: 0o644},
	}
	patches, perr := p.PatchFiles()
	files = append(files, patches...)
	inputs := []string{kubeletUnit, kubeletDropIn, p.PatchesDir}
	for _, f := range patches {
		inputs = append(inputs, f.Path, string(f.Data))
	}
	var out []*steps.Step
	for _, n := range kubeNodes(cl) {
		out = append(out, &steps.Step{
			ID: steps.ID("prepare/kubelet-unit", n.Name), Host: n.Name, Phase: "prepare",
			Deps:   []string{steps.ID("prepare/binaries", n.Name)},
			Inputs: inputs,
			Check: func(ctx context.Context, h steps.Host) (steps.Change, error) {
				if perr != nil {
					return steps.NoChange, perr
				}
				ch, err := steps.FilesChange(ctx, h, files)
				if err != nil {
					return ch, err
				}
				enabled, old, err := kubeletState(ctx, h, p.PatchesDir, patches)
				if err != nil {
					return ch, err
				}
				diff := ch.Diff
				if !enabled {
					diff = append(diff, "~ enable kubelet.service")
				}
				for _, f := range old {
					diff = append(diff, "- remove "+f+" (not in kubeadm_patches)")
				}
				return steps.Changes(diff...), nil
			},
			Apply: func(ctx context.Context, h steps.Host) error {
				if perr != nil {
					return perr
				}
				if _, err := steps.PutFiles(ctx, h, files); err != nil {
					return err
				}
				_, old, err := kubeletState(ctx, h, p.PatchesDir, patches)
				if err != nil {
					return err
				}
				cmd := "systemctl daemon-reload && systemctl enable kubelet"
				for _, f := range old {
					cmd = "rm -f " + ssh.Quote(f) + " && " + cmd
				}
				_, err = h.Run(ctx, cmd)
				return err
			},
		})
	}
	return out
}

// kubeletState reads, in one remote command, whether kubelet.service is
// enabled on h and which files of the patches directory dir are not among
// keep (stale: kubeadm_patches no longer names them), as full paths.
func kubeletState(ctx context.Context, h steps.Host, dir string, keep []ssh.File) (enabled bool, stale []string, err error) {
	out, err := h.Run(ctx, "systemctl is-enabled kubelet 2>/dev/null; echo --; ls -1 "+ssh.Quote(dir)+" 2>/dev/null; true")
	if err != nil {
		return false, nil, err
	}
	unit, names, _ := strings.Cut(string(out), "--\n")
	for _, name := range strings.Fields(names) {
		if !slices.ContainsFunc(keep, func(f ssh.File) bool { return path.Base(f.Path) == name }) {
			stale = append(stale, path.Join(dir, name))
		}
	}
	return strings.TrimSpace(unit) == "enabled", stale, nil
}

// kubeNodes are the control-plane and worker nodes, in inventory order.
func kubeNodes(cl *inventory.Cluster) []*inventory.Node {
	var out []*inventory.Node
	for _, n := range cl.Nodes {
		if n.ControlPlane || n.Worker {
			out = append(out, n)
		}
	}
	return out
}
