// Package inventory reads Ansible INI inventories, with their group_vars
// and host_vars, exactly as ansible-inventory does, and gives a typed view
// of the cluster they describe.
package inventory

import (
	"fmt"
	"sort"
)

// Error is bad input, located in a file (and line when known).
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	if e.File != "" {
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	return e.Msg
}

// Inventory is what an inventory file and the vars beside it say.
type Inventory struct {
	Path   string
	Groups map[string]*Group
	Hosts  map[string]*Host

	groupOrder []string
	hostOrder  []string
}

// Group is an Ansible group. Hosts holds the hosts listed in it directly.
type Group struct {
	Name     string
	Hosts    []*Host
	Children []*Group
	Parents  []*Group
	Vars     map[string]any // from the INI file
	Priority int
	Depth    int // longest distance from "all"
	Line     int // where it was first named
}

// Host is one inventory host. Vars holds its merged variables once Load
// has finished; Source says where each of them came from.
type Host struct {
	Name   string
	Vars   map[string]any
	Source map[string]string
	Line   int

	inline   map[string]any // host vars written in the INI file
	inlineAt map[string]string
	groups   []*Group // groups that list it directly
	inv      *Inventory
}

func newInventory(path string) *Inventory {
	inv := &Inventory{Path: path, Groups: map[string]*Group{}, Hosts: map[string]*Host{}}
	all := inv.addGroup("all", 0)
	inv.addChild(all, inv.addGroup("ungrouped", 0))
	return inv
}

func (inv *Inventory) addGroup(name string, line int) *Group {
	if g, ok := inv.Groups[name]; ok {
		return g
	}
	g := &Group{Name: name, Vars: map[string]any{}, Line: line}
	inv.Groups[name] = g
	inv.groupOrder = append(inv.groupOrder, name)
	return g
}

func (inv *Inventory) addHost(name string, g *Group, line int) *Host {
	h, ok := inv.Hosts[name]
	if !ok {
		h = &Host{Name: name, Line: line, inline: map[string]any{}, inlineAt: map[string]string{}, inv: inv}
		inv.Hosts[name] = h
		inv.hostOrder = append(inv.hostOrder, name)
	}
	if g != nil && !containsHost(g.Hosts, h) {
		g.Hosts = append(g.Hosts, h)
		h.groups = append(h.groups, g)
	}
	return h
}

func containsHost(hs []*Host, h *Host) bool {
	for _, x := range hs {
		if x == h {
			return true
		}
	}
	return false
}

func containsGroup(gs []*Group, g *Group) bool {
	for _, x := range gs {
		if x == g {
			return true
		}
	}
	return false
}

// addChild makes child a child of parent, refusing loops as Ansible does.
func (inv *Inventory) addChild(parent, child *Group) error {
	if parent == child {
		return fmt.Errorf("can't add group %s to itself", child.Name)
	}
	if containsGroup(parent.Children, child) {
		return nil
	}
	if parent.ancestors()[child] {
		return fmt.Errorf("Adding group '%s' as child to '%s' creates a recursive dependency loop.", child.Name, parent.Name)
	}
	parent.Children = append(parent.Children, child)
	child.Parents = append(child.Parents, parent)
	return nil
}

func (g *Group) ancestors() map[*Group]bool {
	seen := map[*Group]bool{}
	var walk func(*Group)
	walk = func(x *Group) {
		for _, p := range x.Parents {
			if !seen[p] {
				seen[p] = true
				walk(p)
			}
		}
	}
	walk(g)
	return seen
}

// Descendants returns g's child groups, recursively, without g.
func (g *Group) Descendants() []*Group {
	var out []*Group
	seen := map[*Group]bool{g: true}
	var walk func(*Group)
	walk = func(x *Group) {
		for _, c := range x.Children {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
				walk(c)
			}
		}
	}
	walk(g)
	return out
}

// AllHosts returns the hosts of g and of its descendants, in inventory order.
func (inv *Inventory) AllHosts(g *Group) []*Host {
	in := map[*Host]bool{}
	for _, h := range g.Hosts {
		in[h] = true
	}
	for _, d := range g.Descendants() {
		for _, h := range d.Hosts {
			in[h] = true
		}
	}
	var out []*Host
	for _, name := range inv.hostOrder {
		if h := inv.Hosts[name]; in[h] || g.Name == "all" {
			out = append(out, h)
		}
	}
	return out
}

// HostGroups returns every group h belongs to, directly or through a
// child group, without "all".
func (inv *Inventory) HostGroups(h *Host) []*Group {
	seen := map[*Group]bool{}
	var out []*Group
	for _, g := range h.groups {
		for x := range g.ancestors() {
			if !seen[x] {
				seen[x] = true
				out = append(out, x)
			}
		}
		if !seen[g] {
			seen[g] = true
			out = append(out, g)
		}
	}
	var res []*Group
	for _, g := range out {
		if g.Name != "all" {
			res = append(res, g)
		}
	}
	sortGroups(res)
	return res
}

// sortGroups orders groups as Ansible merges their vars: by depth, then
// priority, then name.
func sortGroups(gs []*Group) {
	sort.SliceStable(gs, func(i, j int) bool {
		a, b := gs[i], gs[j]
		if a.Depth != b.Depth {
			return a.Depth < b.Depth
		}
		if a.Priority != b.Priority {
			return a.Priority < b.Priority
		}
		return a.Name < b.Name
	})
}

// reconcile mirrors Ansible's last pass: orphan groups go under "all",
// hosts in no group go to "ungrouped", and depths are computed.
func (inv *Inventory) reconcile() error {
	all, ungrouped := inv.Groups["all"], inv.Groups["ungrouped"]
	for _, name := range inv.groupOrder {
		g := inv.Groups[name]
		if g != all && len(g.Parents) == 0 {
			_ = inv.addChild(all, g)
		}
	}
	for _, name := range inv.hostOrder {
		h := inv.Hosts[name]
		if containsGroup(h.groups, ungrouped) {
			if len(inv.HostGroups(h)) > 1 {
				removeHost(ungrouped, h)
			}
			continue
		}
		if len(h.groups) == 0 || len(h.groups) == 1 && h.groups[0] == all {
			// Ansible adds the name to "ungrouped", and a group of the
			// same name wins over the host.
			if g, ok := inv.Groups[h.Name]; ok {
				if err := inv.addChild(ungrouped, g); err != nil {
					return &Error{File: inv.Path, Line: h.Line, Msg: fmt.Sprintf("host %s: %v", h.Name, err)}
				}
				continue
			}
			ungrouped.Hosts = append(ungrouped.Hosts, h)
			h.groups = append(h.groups, ungrouped)
		}
	}
	depth := map[*Group]int{}
	var visit func(g *Group) int
	visit = func(g *Group) int {
		if d, ok := depth[g]; ok {
			return d
		}
		d := 0
		for _, p := range g.Parents {
			if pd := visit(p) + 1; pd > d {
				d = pd
			}
		}
		depth[g] = d
		return d
	}
	for _, g := range inv.Groups {
		g.Depth = visit(g)
	}
	return nil
}

func removeHost(g *Group, h *Host) {
	for i, x := range g.Hosts {
		if x == h {
			g.Hosts = append(g.Hosts[:i:i], g.Hosts[i+1:]...)
			break
		}
	}
	for i, x := range h.groups {
		if x == g {
			h.groups = append(h.groups[:i:i], h.groups[i+1:]...)
			break
		}
	}
}

// HostNames returns the host names in the order they were first seen.
func (inv *Inventory) HostNames() []string { return append([]string(nil), inv.hostOrder...) }
