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
type VG struct {
	Name   string
	Drives []string
	LVs    []LV
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

// DefaultLVs are the volumes MetalK8s 1.x makes in its default VG.
func DefaultLVs() []LV {
	return []LV{
		{Name: "lv01", Size: "52G"},
		{Name: "lv02", Size: "5G"},
		{Name: "lv03", Size: "11G"},
	}
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
func storageSpec(h *Host) ([]VG, error) {
	var vgs []VG
	if old, ok := h.Vars["metal_k8s_lvm"]; ok && old != nil {
		v, err := storage01(h, old)
		if err != nil {
			return nil, err
		}
		vgs = append(vgs, v...)
	}
	names, err := vgNames(h)
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		if containsVG(vgs, name) {
			return nil, varError(h, "metal_k8s_lvm", "volume group %s is also set by metalk8s_lvm_drives_%s; keep one style", name, name)
		}
		vg := VG{Name: name}
		key := "metalk8s_lvm_drives_" + name
		if vg.Drives, err = stringList(h, key, h.Vars[key]); err != nil {
			return nil, err
		}
		lvKey := "metalk8s_lvm_lvs_" + name
		if raw, ok := h.Vars[lvKey]; ok && raw != nil {
			if vg.LVs, err = lvList(h, lvKey, raw); err != nil {
				return nil, err
			}
		} else if name == DefaultVG || isDefaultVG(h, name) {
			vg.LVs = DefaultLVs()
		}
		if len(vg.Drives) == 0 {
			continue // a VG with no drives on this host is not managed here
		}
		vgs = append(vgs, vg)
	}
	return vgs, nil
}

func isDefaultVG(h *Host, name string) bool {
	s, ok := h.Vars["metalk8s_lvm_default_vg"].(string)
	return ok && s == name
}

// vgNames lists the VGs of the 1.x style: the default VG (unless turned
// off), metalk8s_lvm_vgs, and every metalk8s_lvm_drives_<vg>.
func vgNames(h *Host) ([]string, error) {
	seen := map[string]bool{}
	var names []string
	add := func(n string) {
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	switch d := h.Vars["metalk8s_lvm_default_vg"].(type) {
	case nil:
		add(DefaultVG)
	case string:
		if !reVGName.MatchString(d) {
			return nil, varError(h, "metalk8s_lvm_default_vg", "%q is not a valid volume group name", d)
		}
		add(d)
	default:
		on, err := optBool(h, "metalk8s_lvm_default_vg")
		if err != nil {
			return nil, err
		}
		if on {
			add(DefaultVG)
		}
	}
	if raw, ok := h.Vars["metalk8s_lvm_vgs"]; ok {
		list, err := stringList(h, "metalk8s_lvm_vgs", raw)
		if err != nil {
			return nil, err
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
			return nil, varError(h, "metalk8s_lvm_vgs", "%q is not a valid volume group name", n)
		}
	}
	return names, nil
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
