package inventory

import (
	"bytes"
	"fmt"
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"
)

// internalVars are dropped from --list output, as ansible-inventory does.
var internalVars = map[string]bool{
	"ansible_diff_mode": true, "ansible_config_file": true, "ansible_facts": true,
	"ansible_forks": true, "ansible_inventory_sources": true, "ansible_limit": true,
	"ansible_playbook_python": true, "ansible_run_tags": true, "ansible_skip_tags": true,
	"ansible_verbosity": true, "ansible_version": true, "inventory_dir": true,
	"inventory_file": true, "inventory_hostname": true, "inventory_hostname_short": true,
	"groups": true, "group_names": true, "omit": true, "playbook_dir": true,
}

// List builds the document `ansible-inventory --list` prints.
func (inv *Inventory) List() map[string]any {
	out := map[string]any{}
	seen := map[string]bool{}
	var format func(g *Group)
	format = func(g *Group) {
		entry := map[string]any{}
		if g.Name != "all" && len(g.Hosts) > 0 {
			var hs []any
			for _, h := range g.Hosts {
				hs = append(hs, h.Name)
			}
			entry["hosts"] = hs
		}
		if len(g.Children) > 0 {
			var cs []any
			for _, c := range g.Children {
				cs = append(cs, c.Name)
			}
			entry["children"] = cs
		}
		if len(entry) > 0 {
			out[g.Name] = entry
		}
		for _, c := range g.Children {
			if !seen[c.Name] {
				seen[c.Name] = true
				format(c)
			}
		}
	}
	format(inv.Groups["all"])
	hostvars := map[string]any{}
	for _, name := range inv.hostOrder {
		vars := map[string]any{}
		for k, v := range inv.Hosts[name].Vars {
			if !internalVars[k] {
				vars[k] = v
			}
		}
		if len(vars) > 0 {
			hostvars[name] = vars
		}
	}
	out["_meta"] = map[string]any{"hostvars": hostvars}
	return out
}

// MarshalPython writes v as Python's json.dumps(v, sort_keys=True,
// indent=4, ensure_ascii=False) does, so our output reads like Ansible's.
func MarshalPython(v any) []byte {
	var b bytes.Buffer
	writePy(&b, v, 0)
	b.WriteByte('\n')
	return b.Bytes()
}

func writePy(b *bytes.Buffer, v any, depth int) {
	indent := func(d int) { b.WriteString("\n" + strings.Repeat("    ", d)) }
	switch v := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(v))
	case int64:
		b.WriteString(strconv.FormatInt(v, 10))
	case int:
		b.WriteString(strconv.Itoa(v))
	case *big.Int:
		b.WriteString(v.String())
	case float64:
		b.WriteString(pyFloatJSON(v))
	case string:
		writePyString(b, v)
	case Unsafe:
		writePy(b, map[string]any{"__ansible_unsafe": string(v)}, depth)
	case []any:
		if len(v) == 0 {
			b.WriteString("[]")
			return
		}
		b.WriteByte('[')
		for i, x := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			indent(depth + 1)
			writePy(b, x, depth+1)
		}
		indent(depth)
		b.WriteByte(']')
	case map[string]any:
		if len(v) == 0 {
			b.WriteString("{}")
			return
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			indent(depth + 1)
			writePyString(b, k)
			b.WriteString(": ")
			writePy(b, v[k], depth+1)
		}
		indent(depth)
		b.WriteByte('}')
	default:
		writePyString(b, fmt.Sprint(v))
	}
}

func writePyString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			if r < 0x20 {
				fmt.Fprintf(b, `\u%04x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
}

func pyFloatJSON(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return pyFloat(f)
}

// pyFloat is Python's repr() of a float: the shortest digits that round
// trip, in fixed notation when the exponent is in [-4, 16), with ".0" on
// whole numbers.
func pyFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64) // like -1.2345e+06
	sign := ""
	if e[0] == '-' {
		sign, e = "-", e[1:]
	}
	mant, expText, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(expText)
	digits := strings.Replace(mant, ".", "", 1)
	decpt := exp + 1
	if decpt > -4 && decpt <= 16 {
		switch {
		case decpt <= 0:
			return sign + "0." + strings.Repeat("0", -decpt) + digits
		case decpt >= len(digits):
			return sign + digits + strings.Repeat("0", decpt-len(digits)) + ".0"
		default:
			return sign + digits[:decpt] + "." + digits[decpt:]
		}
	}
	m := digits[:1]
	if len(digits) > 1 {
		m += "." + digits[1:]
	}
	es := "+"
	if exp < 0 {
		es, exp = "-", -exp
	}
	return fmt.Sprintf("%s%se%s%02d", sign, m, es, exp)
}
