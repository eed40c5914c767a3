package lvm

import (
	"strings"
	"testing"

	"github.com/metalk8s/metalk8s/pkg/inventory"
)

// stateOut builds readState's output: drive lines, then LVM's JSON reports
// in the shape `pvs/vgs/lvs --reportformat json` print them.
func stateOut(drives, pvs, vgs, lvs, mounts, fstab string) string {
	return drives + "--pvs\n{\n  \"report\": [\n    {\n      \"pv\": [" + pvs + "]\n    }\n  ]\n}\n" +
		"--vgs\n{\"report\": [{\"vg\": [" + vgs + "]}]}\n" +
		"--lvs\n{\"report\": [{\"lv\": [" + lvs + "]}]}\n" +
		"--mounts\n" + mounts + "--fstab\n" + fstab
}

var vg = inventory.VG{Name: "vg_metalk8s", Drives: []string{"/dev/vdb", "/dev/vdc"}}

func mustState(t *testing.T, out string) *State {
	t.Helper()
	st, err := parseState(out)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestPlanVGBlankDrives(t *testing.T) {
	st := mustState(t, stateOut("drive /dev/vdb /dev/vdb\ndrive /dev/vdc /dev/vdc\n", "", "", "", "", ""))
	p, err := planVG("n1", vg, nil, st)
	if err != nil {
		t.Fatal(err)
	}
	ch := p.change()
	if got := strings.Join(ch.Diff, "|"); got != "+ pvcreate /dev/vdb|+ pvcreate /dev/vdc|+ vgcreate vg_metalk8s /dev/vdb /dev/vdc" {
		t.Errorf("diff %s", got)
	}
	if s := p.script(); s != "set -e; pvcreate -y '/dev/vdb'; pvcreate -y '/dev/vdc'; vgcreate 'vg_metalk8s' '/dev/vdb' '/dev/vdc'" &&
		s != "set -e; pvcreate -y /dev/vdb; pvcreate -y /dev/vdc; vgcreate vg_metalk8s /dev/vdb /dev/vdc" {
		t.Errorf("script %s", s)
	}
}

func TestPlanVGExtendAndNothing(t *testing.T) {
	pvs := `{"pv_name":"/dev/vdb", "vg_name":"vg_metalk8s"}`
	vgs := `{"vg_name":"vg_metalk8s", "vg_size":"85895151616", "vg_free":"12880707584", "vg_extent_size":"4194304"}`
	drives := "drive /dev/vdb /dev/vdb\nsig /dev/vdb TYPE=LVM2_member\nsig /dev/vdb USAGE=raid\nchild /dev/vdb /dev/mapper/vg_metalk8s-lv01\ndrive /dev/vdc /dev/vdc\n"
	p, err := planVG("n1", vg, nil, mustState(t, stateOut(drives, pvs, vgs, "", "", "")))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(p.change().Diff, "|"); got != "+ pvcreate /dev/vdc|~ vgextend vg_metalk8s /dev/vdc" || p.change().Destructive != "" {
		t.Errorf("diff %s, destructive %q", got, p.change().Destructive)
	}
	one := inventory.VG{Name: "vg_metalk8s", Drives: []string{"/dev/vdb"}}
	p, err = planVG("n1", one, nil, mustState(t, stateOut("drive /dev/vdb /dev/vdb\n", pvs, vgs, "", "", "")))
	if err != nil || p.change().Needed {
		t.Errorf("done VG: %v %v", p.change(), err)
	}
}

func TestPlanVGRefusesDrivesWithData(t *testing.T) {
	for _, c := range []struct{ drive, pvs, want string }{
		{"sig /dev/vdc TYPE=ext4\nsig /dev/vdc USAGE=filesystem\nsig /dev/vdc UUID=1234\n", "", "holds a ext4 filesystem UUID=1234"},
		{"sig /dev/vdc PTTYPE=gpt\nchild /dev/vdc /dev/vdc1\n", "", "gpt partition table; partitions or holders /dev/vdc1"},
		{"sig /dev/vdc TYPE=LVM2_member\n", `{"pv_name":"/dev/vdc", "vg_name":"other"}`, "physical volume of volume group other"},
	} {
		out := stateOut("drive /dev/vdb /dev/vdb\ndrive /dev/vdc /dev/vdc\n"+c.drive, c.pvs, "", "", "", "")
		_, err := planVG("n1", vg, nil, mustState(t, out))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "host n1: drive /dev/vdc") ||
			!strings.Contains(err.Error(), "metalk8s_lvm_force_drives") {
			t.Errorf("%q: %v", c.drive, err)
		}
		// Forced: wiped first.
		p, err := planVG("n1", vg, []string{"/dev/vdc"}, mustState(t, out))
		if err != nil || !strings.HasPrefix(p.change().Diff[0], "- wipe /dev/vdc") || !strings.Contains(p.script(), "wipefs -a") {
			t.Errorf("forced %q: %v %v", c.drive, p, err)
		} else if d := p.change().Destructive; !strings.HasPrefix(d, "wipe /dev/vdc (") {
			t.Errorf("forced %q: destructive %q", c.drive, d)
		}
	}
	_, err := planVG("n1", vg, nil, mustState(t, stateOut("drive /dev/vdb /dev/vdb\ndrive /dev/vdc\n", "", "", "", "", "")))
	if err == nil || !strings.Contains(err.Error(), "drive /dev/vdc of volume group vg_metalk8s does not exist") {
		t.Errorf("missing drive: %v", err)
	}
}

const (
	vgsFree = `{"vg_name":"vg_metalk8s", "vg_size":"85895151616", "vg_free":"85895151616", "vg_extent_size":"4194304"}`
	lv01    = `{"lv_name":"lv01", "vg_name":"vg_metalk8s", "lv_size":"55834574848", "lv_path":"/dev/vg_metalk8s/lv01", "lv_kernel_major":"254", "lv_kernel_minor":"0"}`
)

func TestPlanLV(t *testing.T) {
	lv := inventory.LV{Name: "lv01", Size: "52G", FSType: "ext4", FSOpts: "-m 0", MountOpts: "defaults,noatime"}
	// New: create, mkfs, mount.
	p, err := planLV("n1", "vg_metalk8s", lv, mustState(t, stateOut("", "", vgsFree, "", "", "")))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(p.diff, "|"); got != "+ lvcreate vg_metalk8s/lv01 52G|+ mkfs.ext4 -m 0 /dev/vg_metalk8s/lv01|+ mount /dev/vg_metalk8s/lv01 on /mnt/vg_metalk8s/<uuid> (persisted in /etc/fstab)" {
		t.Errorf("new: %s", got)
	}
	if p.destructive != "" {
		t.Errorf("new: destructive %q", p.destructive)
	}
	for _, want := range []string{"lvcreate -y -n lv01 -L 52G vg_metalk8s", "mkfs.ext4 -q -m 0 \"$D\"", "defaults,noatime 0 2", `mount "$M"`} {
		if !strings.Contains(p.script, want) {
			t.Errorf("script lacks %q: %s", want, p.script)
		}
	}
	// Done: same size, ext4, in fstab, mounted.
	sig := "lvsig vg_metalk8s/lv01 TYPE=ext4\nlvsig vg_metalk8s/lv01 USAGE=filesystem\nlvsig vg_metalk8s/lv01 UUID=u-1\n"
	done := stateOut(sig, "", vgsFree, lv01, "254:0 /mnt/vg_metalk8s/u-1\n", "UUID=u-1 /mnt/vg_metalk8s/u-1\n")
	p, err = planLV("n1", "vg_metalk8s", lv, mustState(t, done))
	if err != nil || len(p.diff) != 0 || p.script != "" {
		t.Errorf("done: %v %q %v", p.diff, p.script, err)
	}
	// Done and used by a pod: the kubelet's mounts of the same device,
	// listed after metalk8s's own, change nothing (the lab's second up
	// once wanted to mount a PV's volume its pod held).
	used := stateOut(sig, "", vgsFree, lv01, "254:0 /mnt/vg_metalk8s/u-1\n"+
		"254:0 /var/lib/kubelet/pods/p-1/volumes/kubernetes.io~local-volume/n1-vg-metalk8s-lv01\n"+
		"254:0 /var/lib/kubelet/pods/p-1/volume-subpaths/n1-vg-metalk8s-lv01/db/0\n", "UUID=u-1 /mnt/vg_metalk8s/u-1\n")
	p, err = planLV("n1", "vg_metalk8s", lv, mustState(t, used))
	if err != nil || len(p.diff) != 0 || p.script != "" {
		t.Errorf("done, used by a pod: %v %q %v", p.diff, p.script, err)
	}
	// Grown in the inventory: lvextend -r; smaller: a warning, never a shrink.
	big := lv
	big.Size = "60G"
	p, err = planLV("n1", "vg_metalk8s", big, mustState(t, done))
	if err != nil || len(p.diff) != 1 || !strings.Contains(p.script, "lvextend -r -L 60G vg_metalk8s/lv01") {
		t.Errorf("grow: %v %q %v", p.diff, p.script, err)
	}
	small := lv
	small.Size = "40G"
	p, err = planLV("n1", "vg_metalk8s", small, mustState(t, done))
	if err != nil || len(p.diff) != 0 || len(p.warnings) != 1 || !strings.Contains(p.warnings[0], "never shrinks") {
		t.Errorf("shrink: %v %v %v", p.diff, p.warnings, err)
	}
	// Another filesystem: refused unless forced.
	xfs := lv
	xfs.FSType = "xfs"
	_, err = planLV("n1", "vg_metalk8s", xfs, mustState(t, done))
	if err == nil || !strings.Contains(err.Error(), "holds ext4, the inventory says xfs; refusing to reformat") {
		t.Errorf("other fs: %v", err)
	}
	xfs.Force = true
	p, err = planLV("n1", "vg_metalk8s", xfs, mustState(t, done))
	if err != nil || !strings.HasPrefix(p.diff[0], "- reformat") || !strings.Contains(p.script, "mkfs.xfs") ||
		p.destructive != "reformat /dev/vg_metalk8s/"+lv.Name+" (ext4)" {
		t.Errorf("forced reformat: %v %q %v", p.diff, p.destructive, err)
	}
	// Too big for the VG.
	huge := lv
	huge.Size = "1T"
	if _, err := planLV("n1", "vg_metalk8s", huge, mustState(t, stateOut("", "", vgsFree, "", "", ""))); err == nil || !strings.Contains(err.Error(), "free") {
		t.Errorf("too big: %v", err)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"52G": 52 << 30, "500m": 500 << 20, "1.5g": 3 << 29, "100": 100 << 20, "2T": 2 << 40, "1024b": 1024, "8s": 4096} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("%s: %d %v, want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "G", "-1G", "5x", "abc"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
