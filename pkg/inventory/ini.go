package inventory

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

var (
	reSection   = regexp.MustCompile(`^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$`)
	reGroupName = regexp.MustCompile(`^([^:\]\s]+)\s*(?:#.*)?$`)
)

type pending struct {
	line    int
	state   string
	parents []*Group
}

// parseINI reads an INI hosts file the way Ansible's ini plugin does.
func (inv *Inventory) parseINI(file string, data []byte) error {
	lines := splitLines(string(data))
	pend := map[string]*pending{}
	var pendOrder []string
	group, state := inv.Groups["ungrouped"], "hosts"
	lineErr := func(n int, format string, args ...any) error {
		return &Error{File: file, Line: n, Msg: fmt.Sprintf(format, args...)}
	}
	for i, raw := range lines {
		n := i + 1
		line := strings.TrimFunc(raw, unicode.IsSpace)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if !utf8.ValidString(line) {
			return lineErr(n, "the line is not valid UTF-8")
		}
		if m := reSection.FindStringSubmatch(line); m != nil {
			name, st := m[1], m[2]
			if st == "" {
				st = "hosts"
			}
			if st != "hosts" && st != "children" && st != "vars" {
				return lineErr(n, "Section [%s:%s] has unknown type: %s", name, st, st)
			}
			if _, ok := inv.Groups[name]; !ok {
				// [g:vars] alone does not declare a group; it must be
				// declared somewhere else in the file.
				if st == "vars" && pend[name] == nil {
					pend[name] = &pending{line: n, state: st}
					pendOrder = append(pendOrder, name)
				}
				inv.addGroup(name, n)
			}
			group, state = inv.Groups[name], st
			if p := pend[name]; p != nil && st != "vars" {
				if p.state == "children" {
					if err := inv.addPendingChildren(name, pend); err != nil {
						return lineErr(n, "%v", err)
					}
				} else {
					delete(pend, name)
				}
			}
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			return lineErr(n, "Invalid section entry: '%s'. Please make sure that there are no spaces in the section entry, and that there are no other invalid characters", line)
		}
		switch state {
		case "hosts":
			if err := inv.parseHostLine(file, n, line, group); err != nil {
				return err
			}
		case "vars":
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				return lineErr(n, "Expected key=value, got: %s", line)
			}
			k = strings.TrimFunc(k, unicode.IsSpace)
			val, err := parseValue(strings.TrimFunc(v, unicode.IsSpace))
			if err != nil {
				return lineErr(n, "%s: %v", k, err)
			}
			if k == "ansible_group_priority" {
				p, err := pyInt(fmt.Sprint(val))
				if err != nil {
					return lineErr(n, "ansible_group_priority: %v", err)
				}
				group.Priority = p
				continue
			}
			group.Vars[k] = val
		case "children":
			m := reGroupName.FindStringSubmatch(line)
			if m == nil {
				return lineErr(n, "Expected group name, got: %s", line)
			}
			child, ok := inv.Groups[m[1]]
			if !ok {
				p := pend[m[1]]
				if p == nil {
					p = &pending{line: n, state: "children"}
					pend[m[1]] = p
					pendOrder = append(pendOrder, m[1])
				}
				p.parents = append(p.parents, group)
				continue
			}
			if err := inv.addChild(group, child); err != nil {
				return lineErr(n, "%v", err)
			}
		}
	}
	for _, name := range pendOrder {
		p := pend[name]
		if p == nil {
			continue
		}
		if p.state == "vars" {
			return lineErr(p.line, "Section [%s:vars] not valid for undefined group: %s", name, name)
		}
		return lineErr(p.line, "Section [%s:children] includes undefined group: %s", p.parents[len(p.parents)-1].Name, name)
	}
	return nil
}

func (inv *Inventory) addPendingChildren(name string, pend map[string]*pending) error {
	g := inv.Groups[name]
	for _, parent := range pend[name].parents {
		if err := inv.addChild(parent, g); err != nil {
			return err
		}
		if p := pend[parent.Name]; p != nil && p.state == "children" {
			if err := inv.addPendingChildren(parent.Name, pend); err != nil {
				return err
			}
		}
	}
	delete(pend, name)
	return nil
}

func (inv *Inventory) parseHostLine(file string, n int, line string, g *Group) error {
	lineErr := func(format string, args ...any) error {
		return &Error{File: file, Line: n, Msg: fmt.Sprintf(format, args...)}
	}
	tokens, err := shlexSplit(line)
	if err != nil {
		return lineErr("Error parsing host definition '%s': %v", line, err)
	}
	if len(tokens) == 0 {
		return nil
	}
	names, port, hasPort, err := expandHostPattern(tokens[0])
	if err != nil {
		return lineErr("%v", err)
	}
	type kv struct {
		k string
		v any
	}
	var vars []kv
	for _, t := range tokens[1:] {
		k, v, ok := strings.Cut(t, "=")
		if !ok {
			return lineErr("Expected key=value host variable assignment, got: %s", t)
		}
		val, err := parseValue(v)
		if err != nil {
			return lineErr("%s: %v", k, err)
		}
		vars = append(vars, kv{k, val})
	}
	for _, name := range names {
		if name == "" {
			return lineErr("Invalid empty host name provided: %s", name)
		}
		_, existed := inv.Hosts[name]
		h := inv.addHost(name, g, n)
		at := fmt.Sprintf("%s:%d", file, n)
		if hasPort && port != 0 && !existed {
			h.inline["ansible_port"] = int64(port)
			h.inlineAt["ansible_port"] = at
		}
		for _, x := range vars {
			h.inline[x.k] = x.v
			h.inlineAt[x.k] = at
		}
	}
	return nil
}

// splitLines splits like Python's str.splitlines.
func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); {
		r, size := rune(s[i]), 1
		if r >= 0x80 {
			r, size = utf8.DecodeRuneInString(s[i:])
		}
		switch r {
		case '\n', '\v', '\f', 0x1c, 0x1d, 0x1e, 0x85, 0x2028, 0x2029:
			out = append(out, s[start:i])
			i += size
			start = i
		case '\r':
			out = append(out, s[start:i])
			i++
			if i < len(s) && s[i] == '\n' {
				i++
			}
			start = i
		default:
			i += size
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}
