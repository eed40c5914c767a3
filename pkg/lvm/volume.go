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

// lvStep creates a logical volume (or grows it), makes its filesystem
// and mounts it, persistently. A volume is never shrunk, and a filesystem
// is never replaced unless the volume is forced in the inventory.
func lvStep(n *inventory.Node, vg string, lv inventory.LV, id, vgID string) *steps.Step {
	host := n.Name
	read := func(ctx context.Context, h steps.Host) (*lvPlan, error) {
		st, err := hostState(ctx, h, n)
		if err != nil {
			return nil, err
		}
		return planLV(host, vg, lv, st)
	}
	return &steps.Step{ID: id, Host: host, Phase: "storage", Deps: []string{vgID}, Inputs: lv,
		Check: func(ctx context.Context, h steps.Host) (steps.Change, error) {
			p, err := read(ctx, h)
			if err != nil {
				return steps.NoChange, err
			}
			ch := steps.Changes(p.diff...)
			ch.Warnings = p.warnings
			ch.Destructive = p.destructive
			return ch, nil
		},
		Apply: func(ctx context.Context, h steps.Host) error {
			p, err := read(ctx, h)
			if err != nil {
				return err
			}
			_, err = h.Run(ctx, p.script)
			return err
		}}
}

type lvPlan struct {
	diff, warnings []string
	destructive    string // a forced reformat
	script         string
}

// planLV compares a volume with the inventory and writes the script that
// converges it. The filesystem UUID (so the mount point) is only known
// after mkfs: the script reads it then.
func planLV(host, vg string, lv inventory.LV, st *State) (*lvPlan, error) {
	want, err := ParseSize(lv.Size)
	if err != nil {
		return nil, fmt.Errorf("host %s: volume %s/%s: %w", host, vg, lv.Name, err)
	}
	p := &lvPlan{}
	dev := "/dev/" + vg + "/" + lv.Name
	cmds := []string{"set -e", "D=" + ssh.Quote(dev)}
	cur := st.LVs[lvKey(vg, lv.Name)]
	vgs, vgExists := st.VGs[vg]
	extent := vgs.Extent
	switch {
	case cur == nil:
		if vgExists && roundUp(want, extent) > vgs.Free {
			return nil, fmt.Errorf("host %s: volume %s/%s needs %s, volume group %s has %s free", host, vg, lv.Name, human(want), vg, human(vgs.Free))
		}
		p.diff = append(p.diff, fmt.Sprintf("+ lvcreate %s/%s %s", vg, lv.Name, lv.Size))
		cmds = append(cmds, fmt.Sprintf("lvcreate -y -n %s -L %s %s >/dev/null", ssh.Quote(lv.Name), ssh.Quote(lv.Size), ssh.Quote(vg)))
	case cur.Size < roundUp(want, extent):
		if roundUp(want, extent)-cur.Size > vgs.Free {
			return nil, fmt.Errorf("host %s: growing %s/%s to %s needs %s more, volume group %s has %s free", host, vg, lv.Name, lv.Size, human(roundUp(want, extent)-cur.Size), vg, human(vgs.Free))
		}
		p.diff = append(p.diff, fmt.Sprintf("~ lvextend %s/%s %s -> %s and grow its filesystem", vg, lv.Name, human(cur.Size), lv.Size))
		resize := "-r "
		if cur.FSType == "" {
			resize = ""
		}
		cmds = append(cmds, fmt.Sprintf("lvextend %s-L %s %s >/dev/null", resize, ssh.Quote(lv.Size), ssh.Quote(vg+"/"+lv.Name)))
	case cur.Size > roundUp(want, extent):
		p.warnings = append(p.warnings, fmt.Sprintf("%s/%s is %s, the inventory says %s: metalk8s never shrinks a volume", vg, lv.Name, human(cur.Size), lv.Size))
	}

	fsType := lv.FSType
	if fsType == "" {
		fsType = "ext4"
	}
	mkfs := fmt.Sprintf("mkfs.%s -q %s \"$D\"", fsType, fsOpts(lv.FSOpts))
	switch {
	case cur == nil || (cur.FSType == "" && cur.OtherSigs == ""):
		p.diff = append(p.diff, fmt.Sprintf("+ mkfs.%s %s %s", fsType, lv.FSOpts, dev))
		cmds = append(cmds, mkfs)
	case cur.FSType == fsType:
	case !lv.Force:
		found := cur.FSType
		if found == "" {
			found = cur.OtherSigs + " signature"
		}
		return nil, fmt.Errorf("host %s: volume %s holds %s, the inventory says %s; refusing to reformat it (set force: true on the volume to replace it)", host, dev, found, fsType)
	default:
		p.diff = append(p.diff, fmt.Sprintf("- reformat %s (%s) as %s, forced by the inventory", dev, cur.FSType+cur.OtherSigs, fsType))
		p.destructive = fmt.Sprintf("reformat %s (%s)", dev, cur.FSType+cur.OtherSigs)
		cmds = append(cmds, "wipefs -a \"$D\" >/dev/null", mkfs)
	}

	// Mount point and fstab, by filesystem UUID.
	uuid := ""
	if cur != nil && cur.FSType == fsType {
		uuid = cur.FSUUID
	}
	opts := lv.MountOpts
	if opts == "" {
		opts = "defaults"
	}
	if uuid == "" {
		p.diff = append(p.diff, fmt.Sprintf("+ mount %s on %s (persisted in /etc/fstab)", dev, MountPath(vg, "<uuid>")))
	} else {
		mp := MountPath(vg, uuid)
		if st.Fstab["UUID="+uuid] != mp {
			p.diff = append(p.diff, fmt.Sprintf("+ /etc/fstab: UUID=%s %s %s %s", uuid, mp, fsType, opts))
		}
		if cur.MajMin == "" || !slices.Contains(st.Mounts[cur.MajMin], mp) {
			p.diff = append(p.diff, fmt.Sprintf("+ mount %s on %s", dev, mp))
		}
	}
	cmds = append(cmds,
		`U=$(blkid -p -s UUID -o value "$D")`,
		`[ -n "$U" ] || { echo "no filesystem UUID on $D" >&2; exit 1; }`,
		"M="+ssh.Quote("/mnt/"+vg+"/")+`"$U"`,
		`mkdir -p "$M"`,
		fmt.Sprintf(`grep -q "^UUID=$U " /etc/fstab || printf 'UUID=%%s %%s %s %s 0 2\n' "$U" "$M" >> /etc/fstab`, fsType, opts),
		`findmnt -rn "$M" >/dev/null || mount "$M"`,
	)
	if len(p.diff) > 0 {
		p.script = strings.Join(cmds, "; ")
	}
	return p, nil
}

// fsOpts quotes each word of the inventory's mkfs options.
func fsOpts(s string) string {
	var q []string
	for _, w := range strings.Fields(s) {
		q = append(q, ssh.Quote(w))
	}
	return strings.Join(q, " ")
}
