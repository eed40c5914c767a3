package node

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/metalk8s/metalk8s/pkg/bundle"
	"github.com/metalk8s/metalk8s/pkg/inventory"
	"github.com/metalk8s/metalk8s/pkg/ssh"
	"github.com/metalk8s/metalk8s/pkg/steps"
)

// containerdConfig is containerd 2's configuration for kubeadm: the
// systemd cgroup driver, the bundle's pause image, CNI from /opt/cni/bin.
func containerdConfig(pause string) string {
	return fmt.Sprintf(`# Written by metalk8s.
version = 4

[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = %q

[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
  SystemdCgroup = true

[plugins.'io.containerd.cri.v1.runtime'.cni]
  bin_dirs = ['/opt/cni/bin']
  conf_dir = '/etc/cni/net.d'
`, pause)
}

const containerdUnit = `# Written by metalk8s.
[Unit]
Description=containerd container runtime
After=network.target local-fs.target

[Service]
ExecStartPre=-/sbin/modprobe overlay
ExecStart=/usr/local/bin/containerd
Type=notify
Delegate=yes
KillMode=process
Restart=always
RestartSec=5
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
OOMScoreAdjust=-999

[Install]
WantedBy=multi-user.target
`

const crictlConfig = "runtime-endpoint: unix:///run/containerd/containerd.sock\nimage-endpoint: unix:///run/containerd/containerd.sock\ntimeout: 30\n"

// Containerd configures and starts containerd from the bundle's binaries
// on every Kubernetes node, then imports the bundle's images into it.
func Containerd(cl *inventory.Cluster, dir string, m *bundle.Manifest) []*steps.Step {
	files := []ssh.File{
		{Path: "/etc/containerd/config.toml", Data: []byte(containerdConfig(bundle.PauseImage(m.Versions))), Mode: 0o644},
		{Path: "/etc/systemd/system/containerd.service", Data: []byte(containerdUnit), Mode: 0o644},
		{Path: "/etc/crictl.yaml", Data: []byte(crictlConfig), Mode: 0o644},
	}
	var out []*steps.Step
	for _, n := range cl.Nodes {
		if !n.ControlPlane && !n.Worker {
			continue
		}
		host := n.Name
		id := steps.ID("prepare/containerd", host)
		out = append(out, &steps.Step{ID: id, Host: host, Phase: "prepare", Deps: []string{steps.ID("prepare/binaries", host)},
			Inputs: files, Units: []string{"containerd"},
			Check: func(ctx context.Context, h steps.Host) (steps.Change, error) {
				return serviceState(ctx, h, "containerd", files)
			},
			Apply: func(ctx context.Context, h steps.Host) error {
				changed, err := steps.PutFiles(ctx, h, files)
				if err != nil {
					return err
				}
				script := "systemctl daemon-reload && systemctl enable containerd >/dev/null 2>&1 && "
				if changed {
					script += "systemctl restart containerd"
				} else {
					script += "systemctl start containerd"
				}
				// Wait for the socket: later steps talk to it.
				script += " && for i in $(seq 60); do ctr version >/dev/null 2>&1 && exit 0; sleep 1; done; echo 'containerd did not answer in 60 s' >&2; exit 1"
				_, err = h.Run(ctx, script)
				return err
			}})
		if len(m.Images) > 0 {
			out = append(out, imagesStep(host, dir, m, id))
		}
	}
	return out
}

// imagesStep imports the bundle's image archive into containerd's k8s.io
// namespace when an image is missing.
func imagesStep(host, dir string, m *bundle.Manifest, containerd string) *steps.Step {
	return &steps.Step{ID: steps.ID("prepare/images", host), Host: host, Phase: "prepare", Deps: []string{containerd},
		Inputs: m.Images, Units: []string{"containerd"},
		Check: func(ctx context.Context, h steps.Host) (steps.Change, error) {
			missing, err := missingImages(ctx, h, m.Images)
			var diff []string
			for _, img := range missing {
				diff = append(diff, "+ import "+img)
			}
			return steps.Changes(diff...), err
		},
		Apply: func(ctx context.Context, h steps.Host) error {
			staged := steps.StateDir(host) + "/bundle/" + m.ImageArchive
			f := ssh.File{Path: staged, Local: filepath.Join(dir, m.ImageArchive), SHA256: m.ImageArchiveSHA256, Mode: 0o600}
			if err := stage(ctx, h, []ssh.File{f}); err != nil {
				return err
			}
			if _, err := h.Run(ctx, "ctr -n k8s.io images import "+ssh.Quote(staged)+" >/dev/null"); err != nil {
				return err
			}
			// CRI records each image's ID reference a moment after the
			// import, from containerd's events: wait for it.
			for i := 0; ; i++ {
				missing, err := missingImages(ctx, h, m.Images)
				if err != nil || len(missing) == 0 || i == 30 {
					return err
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(2 * time.Second):
				}
			}
		}}
}

// missingImages lists the images containerd lacks or holds under another
// ID. It asks CRI (crictl: each image's ID and tags, which the kubelet
// sees too); only when crictl gives no answer does it read containerd's
// own list (ctr), which sizes every image from its content: 40 s against
// 11 s on a busy lab node.
func missingImages(ctx context.Context, h steps.Host, images []bundle.Image) ([]string, error) {
	out, err := h.Run(ctx, "crictl images -o json 2>/dev/null || true")
	if err != nil {
		return nil, err
	}
	if missing, ok := imagesNotInCRI(out, images); ok {
		return missing, nil
	}
	out, err = h.Run(ctx, "ctr -n k8s.io images ls 2>/dev/null || true")
	if err != nil {
		return nil, err
	}
	return imagesNotIn(string(out), images), nil
}

// imagesNotInCRI reads `crictl images -o json`: an image is there when
// CRI has an image of its ID with its tag. ok is false when the output is
// not crictl's answer.
func imagesNotInCRI(js []byte, images []bundle.Image) (missing []string, ok bool) {
	var list struct {
		Images *[]struct {
			ID       string   `json:"id"`
			RepoTags []string `json:"repoTags"`
		} `json:"images"`
	}
	if err := json.Unmarshal(js, &list); err != nil || list.Images == nil {
		return nil, false
	}
	tags := map[string]bool{} // "id tag"
	for _, img := range *list.Images {
		for _, t := range img.RepoTags {
			tags[img.ID+" "+t] = true
		}
	}
	for _, img := range images {
		if !tags[img.Digest+" "+img.Name] {
			missing = append(missing, img.Name)
		}
	}
	return missing, true
}

func imagesNotIn(ls string, images []bundle.Image) []string {
	manifest := map[string]string{} // ref -> manifest digest
	for _, l := range strings.Split(ls, "\n") {
		if f := strings.Fields(l); len(f) >= 3 && f[0] != "REF" {
			manifest[f[0]] = f[2]
		}
	}
	var missing []string
	for _, img := range images {
		if d, ok := manifest[img.Name]; !ok || d != manifest[img.Digest] {
			missing = append(missing, img.Name)
		}
	}
	return missing
}
