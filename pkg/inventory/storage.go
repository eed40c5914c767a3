package inventory

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// DefaultVG is MetalK8s 1.x's default volume group.
const DefaultVG = "vg_metalk8s"

// VG is a volume group a worker should have: its drives and volumes.
// Existing is set when the inventory lists no drive for it
// (metalk8s_lvm_drives_<vg>: []): MetalK8s 1.x then takes the VG as
// already there and only checks it exists (roles/setup_lvm_vg/defaults/
// main.yml:11-19; setup_lvm_vg/tasks/main.yml:54-60 creates only VGs with
// drives; setup_lvm_lv/tasks/main.yml:79-88 asserts each LV's VG exists).
type VG struct {
	Name     string
	Drives   []string
	LVs      []LV
	Existing bool
}

// LV is one logical volume and how it is formatted and mounted.
type LV struct {
	Name      string
	Size      string // lvcreate -L syntax: 52G, 500M
	FSType    string
	FSOpts    string
	MountOpts string
	Labels    map[string]string
	Force     bool // allow mkfs over an existing signature
}

// DefaultLVs are the volumes metalk8s makes in a VG of MetalK8s 0.1's
// style (metal_k8s_lvm) that lists none.
func DefaultLVs() []LV {
	return []LV{
		{Name: "lv01", Size: "52G"},
		{Name: "lv02", Size: "5G"},
		{Name: "lv03", Size: "11G"},
	}
}

// MetalK8s1DefaultLVs are the volumes MetalK8s 1.x adds to its default VG
// (metalk8s_lvm_default_lvs, roles/setup_lvm_lv/vars/main.yml:3-9 at
// MetalK8s 1.0.0 to 1.1.0), with the role's default filesystem options
// (setup_lvm_lv/defaults/main.yml:5-8).
func MetalK8s1DefaultLVs() []LV {
	return []LV{newLV("metalk8s_lv01", "52G"), newLV("metalk8s_lv02", "5G"), newLV("metalk8s_lv03", "11G")}
}

// newLV is a volume with setup_lvm_lv's defaults: ext4, "-m 0",
// "defaults,noatime", no force (setup_lvm_lv/defaults/main.yml:5-8).
func newLV(name, size string) LV {
	return LV{Name: name, Size: size, FSType: "ext4", FSOpts: "-m 0", MountOpts: "defaults,noatime"}
}

// withDefaultLVs is MetalK8s 1.x's rule for the default VG
// (roles/setup_lvm_lv/tasks/main.yml:9-16, at 1.0.0 to 1.1.0): its three
// default volumes are always added to the ones the user lists,
// pv_dict.update(metalk8s_lvm_default_lvs), so a user volume of the same
// name is replaced by the default one; docs/operations-guide/
// workload_storage.rst:97-101: "three specified, three default".
func withDefaultLVs(user []LV) []LV {
	defs := MetalK8s1DefaultLVs()
	var out []LV
	for _, lv := range user {
		if !slices.ContainsFunc(defs, func(d LV) bool { return d.Name == lv.Name }) {
			out = append(out, lv)
		}
	}
	out = append(out, defs...)
	slices.SortFunc(out, func(a, b LV) int { return strings.Compare(a.Name, b.Name) })
	return out
}

var (
	reSize   = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?[bBsSkKmMgGtTpPeE]?$`)
	reVGName = regexp.MustCompile(`^[a-zA-Z0-9+_.][a-zA-Z0-9+_.-]*$`)
)

// storageSpec reads both MetalK8s styles:
//
//	0.1: metal_k8s_lvm: {vgs: {kubevg: {drives: [/dev/vdb]}}}
//	1.x: metalk8s_lvm_default_vg, metalk8s_lvm_vgs,
//	     metalk8s_lvm_drives_<vg>, metalk8s_lvm_lvs_<vg>
//
// In the 1.x style, MetalK8s's roles (1.0.0-1.1.0) decide: the default VG
// always gets MetalK8s1DefaultLVs (withDefaultLVs); a VG whose drive list
// is empty or null, or that has volumes but no drive list, is Existing
// (roles/setup_lvm_vg/defaults/main.yml:11-19). A VG with neither list
// on this host is left out, where MetalK8s would require it to exist.
func storageSpec(h *Host) ([]VG, error) {
	var vgs []VG
	if old, ok := h.Vars["metal_k8s_lvm"]; ok && old != nil {
		v, err := storage01(h, old)
		if err != nil {
			return nil, err
		}
		vgs = append(vgs, v...)
	}
	names, defaultVG, err := vgNames(h)
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		if containsVG(vgs, name) {
			return nil, varError(h, "metal_k8s_lvm", "volume group %s is also set by metalk8s_lvm_drives_%s; keep one style", name, name)
		}
		vg := VG{Name: name}
		key := "metalk8s_lvm_drives_" + name
		rawDrives, drivesSet := h.Vars[key]
		if vg.Drives, err = stringList(h, key, rawDrives); err != nil {
			return nil, err
		}
		lvKey := "metalk8s_lvm_lvs_" + name
		rawLVs, lvsSet := h.Vars[lvKey]
		if lvsSet && rawLVs != nil {
			if vg.LVs, err = lvList(h, lvKey, rawLVs); err != nil {
				return nil, err
			}
		}
		if name == defaultVG {
			vg.LVs = withDefaultLVs(vg.LVs)
		}
		if !drivesSet && !lvsSet {
			// Neither drives nor volumes named for this host: left alone
			// (MetalK8s would require the VG to exist).
			continue
		}
		vg.Existing = len(vg.Drives) == 0
		vgs = append(vgs, vg)
	}
	return vgs, nil
}

// vgNames lists the VGs of the 1.x style: the default VG (unless turned
// off), metalk8s_lvm_vgs, and every metalk8s_lvm_drives_<vg>; and the
// default VG's name ("" when turned off).
func vgNames(h *Host) (names []string, defaultVG string, err error) {
	seen := map[string]bool{}
	add := func(n string) {
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	switch d := h.Vars["metalk8s_lvm_default_vg"].(type) {
	case nil:
		defaultVG = DefaultVG
	case string:
		if !reVGName.MatchString(d) {
			return nil, "", varError(h, "metalk8s_lvm_default_vg", "%q is not a valid volume group name", d)
		}
		defaultVG = d
	default:
		on, err := optBool(h, "metalk8s_lvm_default_vg")
		if err != nil {
			return nil, "", err
		}
		if on {
			defaultVG = DefaultVG
		}
	}
	if defaultVG != "" {
		add(defaultVG)
	}
	if raw, ok := h.Vars["metalk8s_lvm_vgs"]; ok {
		list, err := stringList(h, "metalk8s_lvm_vgs", raw)
		if err != nil {
			return nil, "", err
		}
		for _, n := range list {
			add(n)
		}
	}
	var extra []string
	for k := range h.Vars {
		if n, ok := strings.CutPrefix(k, "metalk8s_lvm_drives_"); ok && !seen[n] {
			extra = append(extra, n)
		}
	}
	sort.Strings(extra)
	for _, n := range extra {
		add(n)
	}
	for _, n := range names {
		if !reVGName.MatchString(n) {
			return nil, "", varError(h, "metalk8s_lvm_vgs", "%q is not a valid volume group name", n)
		}
	}
	return names, defaultVG, nil
}

func storage01(h *Host, raw any) ([]VG, error) {
	const key = "metal_k8s_lvm"
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, varError(h, key, "must be a mapping with a 'vgs' key, found %s", typeName(raw))
	}
	vgsRaw, ok := m["vgs"].(map[string]any)
	if !ok {
		return nil, varError(h, key, "must hold 'vgs: {NAME: {drives: [...]}}'")
	}
	var vgs []VG
	for _, n := range slices.Sorted(maps.Keys(vgsRaw)) {
		if !reVGName.MatchString(n) {
			return nil, varError(h, key, "%q is not a valid volume group name", n)
		}
		spec, ok := vgsRaw[n].(map[string]any)
		if !ok {
			return nil, varError(h, key, "vgs.%s must be a mapping with 'drives'", n)
		}
		drives, err := stringList(h, key, spec["drives"])
		if err != nil {
			return nil, err
		}
		vg := VG{Name: n, Drives: drives, LVs: DefaultLVs()}
		if lvs, ok := spec["lvs"]; ok && lvs != nil {
			if vg.LVs, err = lvList(h, key, lvs); err != nil {
				return nil, err
			}
		}
		vgs = append(vgs, vg)
	}
	return vgs, nil
}

func containsVG(vgs []VG, name string) bool {
	for _, v := range vgs {
		if v.Name == name {
			return true
		}
	}
	return false
}

func stringList(h *Host, key string, raw any) ([]string, error) {
	if raw == nil {
		return nil, nil
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, varError(h, key, "must be a list, found %s", typeName(raw))
	}
	var out []string
	for _, it := range list {
		s, ok := it.(string)
		if !ok || s == "" {
			return nil, varError(h, key, "must be a list of names, found %v", it)
		}
		out = append(out, s)
	}
	return out, nil
}

func lvList(h *Host, key string, raw any) ([]LV, error) {
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, varError(h, key, "must be a mapping of volume name to {size: ...}, found %s", typeName(raw))
	}
	var lvs []LV
	for _, n := range slices.Sorted(maps.Keys(m)) {
		spec, ok := m[n].(map[string]any)
		if !ok {
			return nil, varError(h, key, "volume %s must be a mapping with a size", n)
		}
		lv := LV{Name: n, FSType: "ext4", FSOpts: "-m 0", MountOpts: "defaults,noatime"}
		size := fmt.Sprint(spec["size"])
		if spec["size"] == nil || !reSize.MatchString(size) {
			return nil, varError(h, key, "volume %s: size %q is not a size like 52G or 500M", n, size)
		}
		lv.Size = size
		for field, dst := range map[string]*string{"fstype": &lv.FSType, "fs_opts": &lv.FSOpts, "mount_opts": &lv.MountOpts} {
			if v, ok := spec[field]; ok && v != nil {
				s, ok := v.(string)
				if !ok {
					return nil, varError(h, key, "volume %s: %s must be a string", n, field)
				}
				*dst = s
			}
		}
		if v, ok := spec["force"]; ok && v != nil {
			b, ok := v.(bool)
			if !ok {
				return nil, varError(h, key, "volume %s: force must be true or false", n)
			}
			lv.Force = b
		}
		if v, ok := spec["labels"]; ok && v != nil {
			lm, ok := v.(map[string]any)
			if !ok {
				return nil, varError(h, key, "volume %s: labels must be a mapping", n)
			}
			lv.Labels = map[string]string{}
			for k, x := range lm {
				lv.Labels[k] = fmt.Sprint(x)
			}
		}
		for field := range spec {
			switch field {
			case "size", "fstype", "fs_opts", "mount_opts", "labels", "force":
			default:
				return nil, varError(h, key, "volume %s: unknown field %q", n, field)
			}
		}
		lvs = append(lvs, lv)
	}
	return lvs, nil
}

// forceDrives reads metalk8s_lvm_force_drives: each must be a drive of one
// of the host's volume groups.
func forceDrives(h *Host, vgs []VG) ([]string, error) {
	const key = "metalk8s_lvm_force_drives"
	list, err := stringList(h, key, h.Vars[key])
	if err != nil {
		return nil, err
	}
	for _, d := range list {
		used := false
		for _, vg := range vgs {
			used = used || slices.Contains(vg.Drives, d)
		}
		if !used {
			return nil, varError(h, key, "%s is not a drive of any volume group of this host", d)
		}
	}
	return list, nil
}
