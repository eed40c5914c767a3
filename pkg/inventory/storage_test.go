package inventory

import (
	"fmt"
	"strings"
	"testing"
)

// MetalK8s 1.x's storage rules, judged against the roles at 1.0.0-1.1.0
// (github.com/scality/metalk8s):
//   - roles/setup_lvm_lv/vars/main.yml:3-9: metalk8s_lvm_default_lvs is
//     metalk8s_lv01 52G, metalk8s_lv02 5G, metalk8s_lv03 11G;
//   - roles/setup_lvm_lv/tasks/main.yml:9-16: when metalk8s_lvm_default_vg
//     is set, pv_dict.update(metalk8s_lvm_default_lvs) on that VG: the
//     defaults are added to the volumes the user lists, and replace a user
//     volume of the same name;
//   - docs/operations-guide/workload_storage.rst:97-101: lv01-lv03 listed
//     give "six logical volumes (three specified, three default)";
//   - roles/setup_lvm_vg/defaults/main.yml:11-12: "empty drives list means
//     that the VG already exists"; setup_lvm_vg/tasks/main.yml:54-60
//     creates only VGs with drives; setup_lvm_lv/tasks/main.yml:79-88
//     still makes their volumes, asserting the VG exists (pkg/lvm checks
//     that on the host).

func volumes(vgs []VG) string {
	var out []string
	for _, vg := range vgs {
		var lvs []string
		for _, lv := range vg.LVs {
			lvs = append(lvs, lv.Name+"="+lv.Size)
		}
		out = append(out, fmt.Sprintf("%s%v existing=%v: %s", vg.Name, vg.Drives, vg.Existing, strings.Join(lvs, " ")))
	}
	return strings.Join(out, "; ")
}

func TestMetalK8s1StorageRules(t *testing.T) {
	defaults := "metalk8s_lv01=52G metalk8s_lv02=5G metalk8s_lv03=11G"
	for _, c := range []struct{ name, vars, want string }{
		{"no volumes listed: the three defaults",
			"metalk8s_lvm_drives_vg_metalk8s: ['/dev/vdb']\n",
			"vg_metalk8s[/dev/vdb] existing=false: " + defaults},
		{"workload_storage.rst:74-82: three listed, three default (six)",
			"metalk8s_lvm_drives_vg_metalk8s: ['/dev/vdb']\nmetalk8s_lvm_lvs_vg_metalk8s: {lv01: {size: 52G}, lv02: {size: 52G}, lv03: {size: 52G}}\n",
			"vg_metalk8s[/dev/vdb] existing=false: lv01=52G lv02=52G lv03=52G " + defaults},
		{"a user volume named as a default is replaced by it (dict.update)",
			"metalk8s_lvm_drives_vg_metalk8s: ['/dev/vdb']\nmetalk8s_lvm_lvs_vg_metalk8s: {metalk8s_lv02: {size: 1T}, lv09: {size: 1G}}\n",
			"vg_metalk8s[/dev/vdb] existing=false: lv09=1G " + defaults},
		{"an empty drive list: the VG exists, its volumes are still made",
			"metalk8s_lvm_drives_vg_metalk8s: []\n",
			"vg_metalk8s[] existing=true: " + defaults},
		{"a null drive list is no drive (Jinja's default([]) keeps None, falsy)",
			"metalk8s_lvm_drives_vg_metalk8s:\nmetalk8s_lvm_lvs_vg_metalk8s: {lv01: {size: 2G}}\n",
			"vg_metalk8s[] existing=true: lv01=2G " + defaults},
		{"volumes listed, drives not: the VG exists",
			"metalk8s_lvm_lvs_vg_metalk8s: {lv01: {size: 2G}}\n",
			"vg_metalk8s[] existing=true: lv01=2G " + defaults},
		{"the defaults go to metalk8s_lvm_default_vg, not vg_metalk8s",
			"metalk8s_lvm_default_vg: vg_other\nmetalk8s_lvm_vgs: [vg_other, vg_metalk8s]\nmetalk8s_lvm_drives_vg_other: []\nmetalk8s_lvm_drives_vg_metalk8s: ['/dev/vdb']\nmetalk8s_lvm_lvs_vg_metalk8s: {lv01: {size: 1G}}\n",
			"vg_other[] existing=true: " + defaults + "; vg_metalk8s[/dev/vdb] existing=false: lv01=1G"},
		{"no default VG: no default volumes",
			"metalk8s_lvm_default_vg: false\nmetalk8s_lvm_drives_vg_data: ['/dev/vdc']\nmetalk8s_lvm_lvs_vg_data: {a: {size: 1G}}\n",
			"vg_data[/dev/vdc] existing=false: a=1G"},
		{"neither drives nor volumes named: left alone",
			"metalk8s_lvm_force_drives: []\n",
			""},
	} {
		cl, err := loadCluster(t, base, map[string]string{"host_vars/w1.yml": c.vars})
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got := volumes(cl.Workers[0].Storage); got != c.want {
			t.Errorf("%s:\n got  %s\n want %s", c.name, got, c.want)
		}
	}
}
