package node

import (
	"context"
	"fmt"
	"path"
	"path/filepath"
	"sort"

	"github.com/metalk8s/metalk8s/pkg/bundle"
	"github.com/metalk8s/metalk8s/pkg/inventory"
	"github.com/metalk8s/metalk8s/pkg/ssh"
	"github.com/metalk8s/metalk8s/pkg/steps"
)

// install says how a bundle file lands on a node: a binary copied to
// Target, or an archive unpacked by Unpack (its stamp records the hash).
type install struct {
	File   bundle.File
	Target string // binaries
	Unpack string // archives: shell command, "$A" is the staged archive
}

// installs lists what a node's roles need from the bundle, and
// node_exporter on every node when nodeExporter is set.
func installs(n *inventory.Node, m *bundle.Manifest, nodeExporter bool) []install {
	kube := n.ControlPlane || n.Worker
	var out []install
	for _, f := range m.Files {
		switch {
		case kube && (f.Name == "kubeadm" || f.Name == "kubelet" || f.Name == "kubectl"):
			out = append(out, install{File: f, Target: "/usr/local/bin/" + f.Name})
		case kube && f.Name == "runc":
			out = append(out, install{File: f, Target: "/usr/local/sbin/runc"})
		case kube && f.Name == "containerd":
			out = append(out, install{File: f, Unpack: `tar -xzf "$A" -C /usr/local`})
		case kube && f.Name == "crictl":
			out = append(out, install{File: f, Unpack: `tar -xzf "$A" -C /usr/local/bin crictl`})
		case kube && f.Name == "cni-plugins":
			out = append(out, install{File: f, Unpack: `mkdir -p /opt/cni/bin && tar -xzf "$A" -C /opt/cni/bin`})
		case nodeExporter && f.Name == "node_exporter":
			out = append(out, install{File: f, Target: "/usr/local/bin/node_exporter"})
		case n.Etcd && f.Name == "etcd":
			out = append(out, install{File: f, Unpack: `tar -xzf "$A" -C /usr/local/bin --strip-components=1 --wildcards '*/etcd' '*/etcdctl' '*/etcdutl'`})
		}
	}
	return out
}

func staged(host string, f bundle.File) string { return steps.StateDir(host) + "/bundle/" + f.Path }

// Bundle returns the steps that copy a bundle's files to each node and
// install them: what each node's roles need, and node_exporter on every
// node when nodeExporter is set (monitoring, NodeExporter). Files already
// there with the right hash are not sent.
func Bundle(cl *inventory.Cluster, dir string, m *bundle.Manifest, nodeExporter bool) []*steps.Step {
	var out []*steps.Step
	for _, n := range cl.Nodes {
		list := installs(n, m, nodeExporter)
		if len(list) == 0 {
			continue
		}
		host := n.Name
		upload := steps.ID("prepare/bundle-upload", host)
		var names []string
		for _, in := range list {
			names = append(names, in.File.Name+"="+in.File.SHA256)
		}
		sort.Strings(names)
		out = append(out,
			&steps.Step{ID: upload, Host: host, Phase: "prepare", Deps: []string{steps.ID("prepare/state-dir", host)}, Inputs: names,
				Check: func(ctx context.Context, h steps.Host) (steps.Change, error) {
					missing, err := missingUploads(ctx, h, list)
					var diff []string
					for _, in := range missing {
						diff = append(diff, fmt.Sprintf("+ upload %s (%s, %s)", in.File.Path, humanSize(in.File.Size), in.File.SHA256[:12]))
					}
					return steps.Changes(diff...), err
				},
				Apply: func(ctx context.Context, h steps.Host) error {
					var files []ssh.File
					for _, in := range list {
						files = append(files, ssh.File{Path: staged(host, in.File), Local: filepath.Join(dir, in.File.Path), SHA256: in.File.SHA256, Mode: 0o600})
					}
					return stage(ctx, h, files)
				}},
			&steps.Step{ID: steps.ID("prepare/binaries", host), Host: host, Phase: "prepare", Deps: []string{upload}, Inputs: names,
				Check: func(ctx context.Context, h steps.Host) (steps.Change, error) {
					todo, err := pendingInstalls(ctx, h, host, list)
					var diff []string
					for _, in := range todo {
						if in.Target != "" {
							diff = append(diff, fmt.Sprintf("~ install %s (%s)", in.Target, in.File.SHA256[:12]))
						} else {
							diff = append(diff, fmt.Sprintf("~ unpack %s", path.Base(in.File.Path)))
						}
					}
					return steps.Changes(diff...), err
				},
				Apply: func(ctx context.Context, h steps.Host) error {
					todo, fresh, err := differingUncached(ctx, h, list, installedAt(host), installSum)
					if err != nil {
						return err
					}
					installed := map[string]string{}
					for _, in := range todo {
						a := staged(host, in.File)
						var script string
						if in.Target != "" {
							tmp := in.Target + ".metalk8s-new"
							script = fmt.Sprintf("mkdir -p %s && install -m 0755 %s %s && mv -f %s %s",
								ssh.Quote(path.Dir(in.Target)), ssh.Quote(a), ssh.Quote(tmp), ssh.Quote(tmp), ssh.Quote(in.Target))
						} else {
							script = fmt.Sprintf("A=%s; %s && printf '%%s\\n' %s > %s.installed", ssh.Quote(a), in.Unpack, in.File.SHA256, ssh.Quote(a))
						}
						if _, err := h.Run(ctx, script); err != nil {
							return err
						}
						if in.Target != "" {
							installed[in.Target] = in.File.SHA256
						}
					}
					// A copy of a staged file that was verified when staged.
					for p, sum := range fresh {
						installed[p] = sum
					}
					return seal(ctx, h, installed, false)
				}},
		)
	}
	return out
}

func installSum(in install) string { return in.File.SHA256 }

func missingUploads(ctx context.Context, h steps.Host, list []install) ([]install, error) {
	return differing(ctx, h, list, func(in install) string { return staged(h.Name(), in.File) }, installSum)
}

func pendingInstalls(ctx context.Context, h steps.Host, host string, list []install) ([]install, error) {
	return differing(ctx, h, list, installedAt(host), installSum)
}

// installedAt is where an install's result is checked: the binary, or
// the archive's stamp.
func installedAt(host string) func(install) string {
	return func(in install) string {
		if in.Target != "" {
			return in.Target
		}
		return staged(host, in.File) + ".installed"
	}
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
