package lvm

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/metalk8s/metalk8s/pkg/inventory"
	"github.com/metalk8s/metalk8s/pkg/ssh"
	"github.com/metalk8s/metalk8s/pkg/steps"
)

// State is what a host's drives and LVM hold, read in one command: LVM's
// own JSON reports, blkid's probes, the kernel's mounts and /etc/fstab.
type State struct {
	Drives map[string]*Drive  // by the inventory's path
	PVs    map[string]string  // PV device -> its VG ("" when none)
	VGs    map[string]VGState // by name
	LVs    map[string]*LVState
	Mounts map[string][]string // "MAJ:MIN" -> its mount points (a volume a pod uses has the kubelet's too)
	Fstab  map[string]string   // "UUID=..." -> mount point
}

// Drive is one drive named in the inventory.
type Drive struct {
	Path     string
	Device   string            // the device it resolves to; "" when absent
	Sigs     map[string]string // blkid -p: TYPE, PTTYPE, UUID...
	Children []string          // partitions and holders lsblk lists under it
}

// VGState is a volume group's size, free space and extent size in bytes.
type VGState struct{ Size, Free, Extent int64 }

// LVState is a logical volume: size, device numbers, and the filesystem
// blkid finds on it.
type LVState struct {
	VG, Name  string
	Size      int64
	Path      string
	MajMin    string
	FSType    string
	FSUUID    string
	OtherSigs string // a signature that is not a filesystem we know
}

func lvKey(vg, lv string) string { return vg + "/" + lv }

// hostState reads, once per run (steps.Read), every drive and volume the
// inventory gives node n: its volume group, volume and manifest steps all
// check against that one report. A step's Apply makes the next read fresh.
func hostState(ctx context.Context, h steps.Host, n *inventory.Node) (*State, error) {
	return steps.Read(ctx, n.Name, "lvm/state", func() (*State, error) {
		var drives []string
		var lvs [][2]string
		for _, vg := range n.Storage {
			drives = append(drives, vg.Drives...)
			for _, lv := range vg.LVs {
				lvs = append(lvs, [2]string{vg.Name, lv.Name})
			}
		}
		return readState(ctx, h, drives, lvs)
	})
}

// readState reads the drives and volumes of a host.
func readState(ctx context.Context, h steps.Host, drives []string, lvs [][2]string) (*State, error) {
	var b strings.Builder
	for _, d := range drives {
		q := ssh.Quote(d)
		fmt.Fprintf(&b, `r=$(readlink -f %s 2>/dev/null); if [ -b "$r" ]; then echo "drive %s $r"; `+
			`blkid -p -o export "$r" 2>/dev/null | sed 's|^|sig %s |'; `+
			`lsblk -nrp -o NAME "$r" 2>/dev/null | tail -n +2 | sed 's|^|child %s |'; else echo "drive %s"; fi; `, q, d, d, d, d)
	}
	for _, l := range lvs {
		p := ssh.Quote("/dev/" + l[0] + "/" + l[1])
		fmt.Fprintf(&b, `[ -b %s ] && blkid -p -o export %s 2>/dev/null | sed 's|^|lvsig %s |'; `, p, p, lvKey(l[0], l[1]))
	}
	b.WriteString(`echo '--pvs'; pvs --reportformat json -o pv_name,vg_name 2>/dev/null; ` +
		`echo '--vgs'; vgs --reportformat json --units b --nosuffix -o vg_name,vg_size,vg_free,vg_extent_size 2>/dev/null; ` +
		`echo '--lvs'; lvs --reportformat json --units b --nosuffix -o lv_name,vg_name,lv_size,lv_path,lv_kernel_major,lv_kernel_minor 2>/dev/null; ` +
		`echo '--mounts'; findmnt -rn -o MAJ:MIN,TARGET; ` +
		`echo '--fstab'; awk '$1 ~ /^UUID=/ {print $1, $2}' /etc/fstab; true`)
	out, err := h.Run(ctx, b.String())
	if err != nil {
		return nil, err
	}
	return parseState(string(out))
}

// parseState reads readState's output.
func parseState(out string) (*State, error) {
	st := &State{Drives: map[string]*Drive{}, PVs: map[string]string{}, VGs: map[string]VGState{},
		LVs: map[string]*LVState{}, Mounts: map[string][]string{}, Fstab: map[string]string{}}
	lvSigs := map[string]map[string]string{}
	sections := map[string]*strings.Builder{}
	var cur *strings.Builder
	for _, line := range strings.Split(out, "\n") {
		if name, ok := strings.CutPrefix(line, "--"); ok && !strings.Contains(name, " ") {
			cur = &strings.Builder{}
			sections[name] = cur
			continue
		}
		if cur != nil {
			cur.WriteString(line + "\n")
			continue
		}
		f := strings.SplitN(line, " ", 3)
		switch {
		case len(f) >= 2 && f[0] == "drive":
			d := &Drive{Path: f[1], Sigs: map[string]string{}}
			if len(f) == 3 {
				d.Device = f[2]
			}
			st.Drives[f[1]] = d
		case len(f) == 3 && f[0] == "sig" && st.Drives[f[1]] != nil:
			if k, v, ok := strings.Cut(f[2], "="); ok {
				st.Drives[f[1]].Sigs[k] = v
			}
		case len(f) == 3 && f[0] == "child" && st.Drives[f[1]] != nil:
			st.Drives[f[1]].Children = append(st.Drives[f[1]].Children, f[2])
		case len(f) == 3 && f[0] == "lvsig":
			if lvSigs[f[1]] == nil {
				lvSigs[f[1]] = map[string]string{}
			}
			if k, v, ok := strings.Cut(f[2], "="); ok {
				lvSigs[f[1]][k] = v
			}
		}
	}
	var rep struct {
		Report []struct {
			PV []map[string]string `json:"pv"`
			VG []map[string]string `json:"vg"`
			LV []map[string]string `json:"lv"`
		} `json:"report"`
	}
	read := func(name string) error {
		rep.Report = nil
		s := sections[name]
		if s == nil || strings.TrimSpace(s.String()) == "" {
			return nil // no LVM yet, or nothing of this kind
		}
		if err := json.Unmarshal([]byte(s.String()), &rep); err != nil {
			return fmt.Errorf("reading the %s report: %w", name, err)
		}
		return nil
	}
	num := func(s string) int64 { n, _ := strconv.ParseInt(strings.TrimSpace(s), 10, 64); return n }
	if err := read("pvs"); err != nil {
		return nil, err
	}
	for _, r := range rep.Report {
		for _, pv := range r.PV {
			st.PVs[pv["pv_name"]] = pv["vg_name"]
		}
	}
	if err := read("vgs"); err != nil {
		return nil, err
	}
	for _, r := range rep.Report {
		for _, vg := range r.VG {
			st.VGs[vg["vg_name"]] = VGState{Size: num(vg["vg_size"]), Free: num(vg["vg_free"]), Extent: num(vg["vg_extent_size"])}
		}
	}
	if err := read("lvs"); err != nil {
		return nil, err
	}
	for _, r := range rep.Report {
		for _, lv := range r.LV {
			l := &LVState{VG: lv["vg_name"], Name: lv["lv_name"], Size: num(lv["lv_size"]), Path: lv["lv_path"]}
			if lv["lv_kernel_major"] != "" && lv["lv_kernel_major"] != "-1" {
				l.MajMin = strings.TrimSpace(lv["lv_kernel_major"]) + ":" + strings.TrimSpace(lv["lv_kernel_minor"])
			}
			if sig := lvSigs[lvKey(l.VG, l.Name)]; sig != nil {
				if sig["USAGE"] == "filesystem" {
					l.FSType, l.FSUUID = sig["TYPE"], sig["UUID"]
				} else if t := sig["TYPE"] + sig["PTTYPE"]; t != "" {
					l.OtherSigs = t
				}
			}
			st.LVs[lvKey(l.VG, l.Name)] = l
		}
	}
	for _, line := range strings.Split(sectionText(sections, "mounts"), "\n") {
		if mm, target, ok := strings.Cut(line, " "); ok {
			st.Mounts[mm] = append(st.Mounts[mm], unescapeMount(target))
		}
	}
	for _, line := range strings.Split(sectionText(sections, "fstab"), "\n") {
		if src, target, ok := strings.Cut(line, " "); ok {
			st.Fstab[src] = target
		}
	}
	return st, nil
}

func sectionText(s map[string]*strings.Builder, name string) string {
	if b := s[name]; b != nil {
		return b.String()
	}
	return ""
}

// unescapeMount undoes findmnt -r's \x20 escapes.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\x`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if i+3 < len(s) && s[i] == '\\' && s[i+1] == 'x' {
			if v, err := strconv.ParseUint(s[i+2:i+4], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// describe says what a drive holds, for refusals.
func (d *Drive) describe() string {
	var parts []string
	if t := d.Sigs["PTTYPE"]; t != "" {
		parts = append(parts, t+" partition table")
	}
	if t := d.Sigs["TYPE"]; t != "" {
		s := t + " signature"
		if d.Sigs["USAGE"] == "filesystem" {
			s = t + " filesystem"
		}
		if u := d.Sigs["UUID"]; u != "" {
			s += " UUID=" + u
		}
		parts = append(parts, s)
	}
	if len(d.Children) > 0 {
		parts = append(parts, "partitions or holders "+strings.Join(d.Children, ", "))
	}
	return strings.Join(parts, "; ")
}
