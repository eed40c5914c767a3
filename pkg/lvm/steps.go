// Package lvm turns the drives the inventory names into LVM volume groups
// and mounted volumes, safely, and describes them as local
// PersistentVolumes.
package lvm

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/metalk8s/metalk8s/pkg/inventory"
	"github.com/metalk8s/metalk8s/pkg/ssh"
	"github.com/metalk8s/metalk8s/pkg/steps"
)

// MountPath is where a volume is mounted: /mnt/<vg>/<filesystem uuid>.
func MountPath(vg, uuid string) string { return "/mnt/" + vg + "/" + uuid }

// Steps returns, for every worker with storage, one step per volume group
// (drives and the VG), one per logical volume (create or grow, filesystem,
// mount) and one writing its PersistentVolumes to artifactsDir/storage.
// A volume group waits for its node's prepare/packages step when existing
// (the graph so far) has one.
func Steps(cl *inventory.Cluster, artifactsDir string, existing []*steps.Step) []*steps.Step {
	have := map[string]bool{}
	for _, s := range existing {
		have[s.ID] = true
	}
	var out []*steps.Step
	for _, n := range cl.Nodes {
		if !n.Worker || len(n.Storage) == 0 {
			continue
		}
		host := n.Name
		var lvSteps []string
		for _, vg := range n.Storage {
			vgID := steps.ID("storage/vg-"+vg.Name, host)
			// After the node's packages (lvm2) when the graph installs
			// them; else (a bundle without packages) they must be there.
			// After its connection check in any case, so an unreachable
			// host blocks it instead of being dialled (and failed) again.
			var deps []string
			for _, id := range []string{steps.ID("preflight/connect", host), steps.ID("prepare/packages", host)} {
				if have[id] {
					deps = append(deps, id)
				}
			}
			out = append(out, vgStep(n, vg, vgID, deps))
			for _, lv := range vg.LVs {
				id := steps.ID("storage/lv-"+vg.Name+"/"+lv.Name, host)
				lvSteps = append(lvSteps, id)
				out = append(out, lvStep(n, vg.Name, lv, id, vgID))
			}
		}
		out = append(out, manifestsStep(n, artifactsDir, lvSteps))
	}
	return out
}

func vgStep(n *inventory.Node, vg inventory.VG, id string, deps []string) *steps.Step {
	return &steps.Step{ID: id, Host: n.Name, Phase: "storage", Deps: deps,
		Inputs: []any{vg.Drives, n.ForceDrives},
		Check: func(ctx context.Context, h steps.Host) (steps.Change, error) {
			st, err := hostState(ctx, h, n)
			if err != nil {
				return steps.NoChange, err
			}
			p, err := planVG(h.Name(), vg, n.ForceDrives, st)
			if err != nil {
				return steps.NoChange, err
			}
			return p.change(), nil
		},
		Apply: func(ctx context.Context, h steps.Host) error {
			st, err := hostState(ctx, h, n)
			if err != nil {
				return err
			}
			p, err := planVG(h.Name(), vg, n.ForceDrives, st)
			if err != nil {
				return err
			}
			_, err = h.Run(ctx, p.script())
			return err
		}}
}

// vgPlan is what a volume group needs.
type vgPlan struct {
	vg      string
	wipe    []string // forced drives to wipe first (device paths)
	why     map[string]string
	pvs     []string // drives to pvcreate
	create  []string // vgcreate with these
	extend  []string // vgextend with these
	warning []string
}

func (p *vgPlan) change() steps.Change {
	var diff, wiped []string
	for _, d := range p.wipe {
		diff = append(diff, fmt.Sprintf("- wipe %s (%s), forced by metalk8s_lvm_force_drives", d, p.why[d]))
		wiped = append(wiped, fmt.Sprintf("wipe %s (%s)", d, p.why[d]))
	}
	for _, d := range p.pvs {
		diff = append(diff, "+ pvcreate "+d)
	}
	if len(p.create) > 0 {
		diff = append(diff, fmt.Sprintf("+ vgcreate %s %s", p.vg, strings.Join(p.create, " ")))
	}
	if len(p.extend) > 0 {
		diff = append(diff, fmt.Sprintf("~ vgextend %s %s", p.vg, strings.Join(p.extend, " ")))
	}
	ch := steps.Changes(diff...)
	ch.Warnings = p.warning
	ch.Destructive = strings.Join(wiped, ", ")
	return ch
}

func (p *vgPlan) script() string {
	cmds := []string{"set -e"}
	for _, d := range p.wipe {
		cmds = append(cmds, "wipefs -a "+ssh.Quote(d))
	}
	for _, d := range p.pvs {
		cmds = append(cmds, "pvcreate -y "+ssh.Quote(d))
	}
	if len(p.create) > 0 {
		cmds = append(cmds, "vgcreate "+ssh.Quote(p.vg)+" "+ssh.QuoteAll(p.create...))
	}
	if len(p.extend) > 0 {
		cmds = append(cmds, "vgextend "+ssh.Quote(p.vg)+" "+ssh.QuoteAll(p.extend...))
	}
	return strings.Join(cmds, "; ")
}

// planVG decides, drive by drive: in the VG already, free to use, or
// holding something (refused unless forced).
func planVG(host string, vg inventory.VG, forced []string, st *State) (*vgPlan, error) {
	p := &vgPlan{vg: vg.Name, why: map[string]string{}}
	_, exists := st.VGs[vg.Name]
	if len(vg.Drives) == 0 {
		// MetalK8s 1.x: no drive listed means the VG already exists; its
		// volumes are still made in it (roles/setup_lvm_vg/defaults/
		// main.yml:11-19, setup_lvm_lv/tasks/main.yml:79-88).
		if !exists {
			return nil, fmt.Errorf("host %s: volume group %s does not exist, and metalk8s_lvm_drives_%s lists no drive (an empty list means the group already exists, as in MetalK8s): create it or list its drives",
				host, vg.Name, vg.Name)
		}
		return p, nil
	}
	var add []string
	for _, path := range vg.Drives {
		d := st.Drives[path]
		if d == nil || d.Device == "" {
			return nil, fmt.Errorf("host %s: drive %s of volume group %s does not exist", host, path, vg.Name)
		}
		owner, isPV := st.PVs[d.Device]
		switch {
		case isPV && owner == vg.Name:
			continue // already ours
		case isPV && owner == "" && len(d.Children) == 0:
			add = append(add, d.Device) // an orphan PV: LVM's, unused
			continue
		}
		holds := d.describe()
		if isPV {
			holds = "physical volume of volume group " + owner
		}
		if holds == "" {
			p.pvs = append(p.pvs, d.Device)
			add = append(add, d.Device)
			continue
		}
		if !slices.Contains(forced, path) {
			return nil, fmt.Errorf("host %s: drive %s holds a %s; refusing to use it for volume group %s (list it in metalk8s_lvm_force_drives to wipe it)",
				host, path, holds, vg.Name)
		}
		p.wipe = append(p.wipe, d.Device)
		p.why[d.Device] = holds
		p.pvs = append(p.pvs, d.Device)
		add = append(add, d.Device)
	}
	if exists {
		p.extend = add
	} else {
		p.create = add
	}
	// Drives in the VG that the inventory no longer names stay: never reduce.
	for dev, owner := range st.PVs {
		if owner != vg.Name {
			continue
		}
		named := false
		for _, path := range vg.Drives {
			if d := st.Drives[path]; d != nil {
				named = named || d.Device == dev
			}
		}
		if !named {
			p.warning = append(p.warning, fmt.Sprintf("%s is in volume group %s but not in the inventory; metalk8s never removes drives", dev, vg.Name))
		}
	}
	slices.Sort(p.warning)
	return p, nil
}
