package lvm

import (
	"strings"
	"testing"

	"github.com/metalk8s/metalk8s/pkg/inventory"
)

// MetalK8s 1.x: an empty drive list means the volume group already exists
// (roles/setup_lvm_vg/defaults/main.yml:11-12); it is not created
// (setup_lvm_vg/tasks/main.yml:54-60) and must be there for its volumes
// (setup_lvm_lv/tasks/main.yml:79-88, "vg_name in ansible_lvm.vgs").
func TestPlanVGExistingGroup(t *testing.T) {
	existing := inventory.VG{Name: "vg_metalk8s", Existing: true, LVs: inventory.MetalK8s1DefaultLVs()}
	pvs := `{"pv_name":"/dev/sdb", "vg_name":"vg_metalk8s"}`
	vgs := `{"vg_name":"vg_metalk8s", "vg_size":"85895151616", "vg_free":"85895151616", "vg_extent_size":"4194304"}`
	p, err := planVG("n1", existing, nil, mustState(t, stateOut("", pvs, vgs, "", "", "")))
	if err != nil {
		t.Fatal(err)
	}
	if ch := p.change(); ch.Needed || len(ch.Warnings) != 0 || len(ch.Diff) != 0 {
		t.Errorf("an existing VG with no drive listed: %+v", ch)
	}
	_, err = planVG("n1", existing, nil, mustState(t, stateOut("", "", "", "", "", "")))
	if err == nil || !strings.Contains(err.Error(), "host n1: volume group vg_metalk8s does not exist") ||
		!strings.Contains(err.Error(), "metalk8s_lvm_drives_vg_metalk8s") || strings.Contains(err.Error(), "\n") {
		t.Errorf("a missing VG with no drive listed: %v", err)
	}
}
