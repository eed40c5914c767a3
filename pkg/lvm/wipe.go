package lvm

import (
	"context"
	"fmt"
	"strings"

	"github.com/metalk8s/metalk8s/pkg/inventory"
	"github.com/metalk8s/metalk8s/pkg/steps"
)

// WipeStepName is remove-node's deletion of a node's volumes, asked for
// that node with --wipe-volumes; without it nothing of LVM is touched.
const WipeStepName = "remove/wipe-volumes"

// wipeScript deletes each logical volume given as VG/LV, if it exists:
// unmounted, its /etc/fstab line (by its filesystem UUID) removed, its
// mount point removed when empty, its signatures wiped, then lvremove.
// The volume groups, their drives and every other volume stay. With -n
// first it prints the volumes it would delete and changes nothing.
const wipeScript = `dry=; [ "${1:-}" = -n ] && { dry=1; shift; }
for v in "$@"; do
  dev=/dev/$v
  lvs "$v" >/dev/null 2>&1 || continue
  if [ -n "$dry" ]; then echo "$v"; continue; fi
  uuid=$(blkid -s UUID -o value "$dev" 2>/dev/null || true)
  for m in $(findmnt -n -o TARGET --source "$dev" 2>/dev/null); do umount "$m" || exit 1; rmdir "$m" 2>/dev/null; done
  if [ -n "$uuid" ]; then sed -i "\|^UUID=$uuid[[:space:]]|d" /etc/fstab || exit 1; fi
  wipefs -a -q "$dev" || exit 1
  lvremove -y -q "$v" >/dev/null || exit 1
done
exit 0
`

// WipeStep deletes node n's logical volumes that the inventory declares
// (n.Storage), after deps (the node reset, so nothing uses them). The
// diff names each volume that exists; a re-run finds none.
func WipeStep(n *inventory.Node, deps []string) *steps.Step {
	var lvs []string
	for _, vg := range n.Storage {
		for _, lv := range vg.LVs {
			lvs = append(lvs, vg.Name+"/"+lv.Name)
		}
	}
	return &steps.Step{ID: steps.ID(WipeStepName, n.Name), Host: n.Name, Phase: "remove", Deps: deps, Inputs: lvs,
		Check: func(ctx context.Context, h steps.Host) (steps.Change, error) {
			out, err := steps.RunScript(ctx, h, wipeScript, true, lvs...)
			if err != nil {
				return steps.NoChange, err
			}
			var diff []string
			for _, v := range out {
				diff = append(diff, fmt.Sprintf("- delete logical volume %s and its data (--wipe-volumes)", v))
			}
			ch := steps.Changes(diff...)
			if ch.Needed {
				ch.Destructive = "delete logical volumes " + strings.Join(out, ", ") + " and their data"
			}
			return ch, nil
		},
		Apply: func(ctx context.Context, h steps.Host) error {
			_, err := steps.RunScript(ctx, h, wipeScript, false, lvs...)
			return err
		}}
}
