package inventory

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// One host pattern's hosts, after ansible-core's
// lib/ansible/inventory/manager.py (_match_one_pattern, _split_subscript,
// _apply_subscript, _enumerate_matches, _match_list) and
// inventory/group.py (Group.get_hosts).

// reSubscript is manager.py's PATTERN_WITH_SUBSCRIPT.
var reSubscript = regexp.MustCompile(`^(.+)\[(?:(-?[0-9]+)|([0-9]+)([:-])([0-9]*))\]$`)

// matchOnePattern is _match_one_pattern: the hosts of one pattern, its &
// or ! dropped, with its subscript applied.
func (inv *Inventory) matchOnePattern(pattern string) ([]*Host, error) {
	orig := pattern
	if pattern[0] == '&' || pattern[0] == '!' {
		pattern = pattern[1:]
	}
	if pattern == "" {
		return nil, fmt.Errorf("host pattern %q names nothing", orig)
	}
	expr, sub, err := splitSubscript(pattern)
	if err != nil {
		return nil, err
	}
	hosts, err := inv.enumerateMatches(expr)
	if err != nil {
		return nil, err
	}
	if sub == nil || len(hosts) == 0 {
		return hosts, nil
	}
	start, end := sub[0], sub[1]
	if end != 0 { // Python's "if end:" treats [x:0] as [x]
		if end == -1 {
			end = len(hosts) - 1
		}
		if start >= len(hosts) || start > end {
			return nil, nil
		}
		if end >= len(hosts) {
			end = len(hosts) - 1
		}
		return hosts[start : end+1], nil
	}
	i := start
	if i < 0 {
		i += len(hosts)
	}
	if i < 0 || i >= len(hosts) {
		return nil, fmt.Errorf("no hosts matched the subscripted pattern %q (%d hosts)", pattern, len(hosts))
	}
	return []*Host{hosts[i]}, nil
}

// splitSubscript is _split_subscript: "g[1]", "g[-1]", "g[0:2]", "g[1:]"
// (and the old "g[0-2]") give the pattern and {start, end}; end is 0 for a
// single index and -1 for an open range. A regex (~) has no subscript.
func splitSubscript(pattern string) (string, *[2]int, error) {
	if pattern[0] == '~' {
		return pattern, nil, nil
	}
	m := reSubscript.FindStringSubmatch(pattern)
	if m == nil {
		return pattern, nil, nil
	}
	atoi := func(s string) (int, error) {
		n, err := strconv.Atoi(s)
		if err != nil {
			return 0, fmt.Errorf("host pattern %q: subscript %s is out of range", pattern, s)
		}
		return n, nil
	}
	if m[2] != "" {
		i, err := atoi(m[2])
		return m[1], &[2]int{i, 0}, err
	}
	start, err := atoi(m[3])
	if err != nil {
		return "", nil, err
	}
	end := -1
	if m[5] != "" {
		if end, err = atoi(m[5]); err != nil {
			return "", nil, err
		}
	}
	return m[1], &[2]int{start, end}, nil
}

// enumerateMatches is _enumerate_matches: the hosts of every group whose
// name matches, then, when no group matched or the pattern is a regex or
// has one of . ? * [, every host whose name matches. Duplicates are kept,
// as Ansible keeps them, so that subscripts count them.
func (inv *Inventory) enumerateMatches(pattern string) ([]*Host, error) {
	re, err := matchRegexp(pattern)
	if err != nil {
		return nil, err
	}
	var out []*Host
	groups := 0
	for _, name := range inv.groupOrder {
		if re.MatchString(name) {
			groups++
			out = append(out, inv.groupHosts(inv.Groups[name])...)
		}
	}
	if groups == 0 || pattern[0] == '~' || strings.ContainsAny(pattern, ".?*[") {
		for _, name := range inv.hostOrder {
			if re.MatchString(name) {
				out = append(out, inv.Hosts[name])
			}
		}
	}
	if len(out) == 0 && groups == 0 && pattern != "all" {
		if g := inv.Groups[groupAlias(pattern)]; g != nil {
			return inv.groupHosts(g), nil
		}
		return nil, fmt.Errorf("host pattern %q matches no group or host of %s", pattern, inv.Path)
	}
	return out, nil
}

// groupAlias is the other spelling of a role group's name (kube-master
// and kube_control_plane, kube-node and kube_node, k8s-cluster and
// k8s_cluster), "" for any other name. A pattern naming a group the
// inventory lacks matches its other spelling: an extension, since Ansible
// matches neither.
func groupAlias(name string) string {
	for _, names := range [][]string{ControlPlaneGroups, WorkerGroups, ClusterGroups} {
		switch name {
		case names[0]:
			return names[1]
		case names[1]:
			return names[0]
		}
	}
	return ""
}

// groupHosts is ansible-core's Group.get_hosts: the group's own hosts, then
// its children's, then theirs, level by level (_walk_relationship with
// preserve_ordering). Within a level after the children Ansible walks a
// Python set of groups, whose order is not defined; here it is the order
// the groups were reached in.
func (inv *Inventory) groupHosts(g *Group) []*Host {
	ordered := append([]*Group{g}, g.Children...)
	seen := map[*Group]bool{}
	level := append([]*Group{g}, g.Children...)
	for len(level) > 0 {
		for _, x := range level {
			seen[x] = true
		}
		var next []*Group
		for _, x := range level {
			for _, c := range x.Children {
				if !seen[c] {
					ordered = append(ordered, c)
					next = append(next, c)
					seen[c] = true
				}
			}
		}
		level = next
	}
	have := map[*Host]bool{}
	var out []*Host
	for _, x := range ordered {
		for _, h := range x.Hosts {
			if !have[h] {
				have[h] = true
				out = append(out, h)
			}
		}
	}
	return out
}

// matchRegexp compiles a pattern as _match_list does: "~RE" is a regular
// expression matched at the start of the name (Python's re.match), any
// other pattern a shell glob over the whole name (fnmatch.translate).
func matchRegexp(pattern string) (*regexp.Regexp, error) {
	src := `^(?s:` + fnmatchTranslate(pattern) + `)$`
	if pattern[0] == '~' {
		src = `^(?:` + pattern[1:] + `)`
	}
	re, err := regexp.Compile(src)
	if err != nil {
		return nil, fmt.Errorf("invalid host list pattern %q: %v", pattern, err)
	}
	return re, nil
}

// fnmatchTranslate is Python's fnmatch.translate, for Go's regexp: * any
// text, ? any character, [seq], [!seq], everything else literal.
func fnmatchTranslate(pat string) string {
	var b strings.Builder
	rs := []rune(pat)
	for i := 0; i < len(rs); i++ {
		switch c := rs[i]; c {
		case '*':
			b.WriteString(".*")
			for i+1 < len(rs) && rs[i+1] == '*' {
				i++
			}
		case '?':
			b.WriteString(".")
		case '[':
			j := i + 1
			if j < len(rs) && rs[j] == '!' {
				j++
			}
			if j < len(rs) && rs[j] == ']' {
				j++
			}
			for j < len(rs) && rs[j] != ']' {
				j++
			}
			if j >= len(rs) {
				b.WriteString(`\[`)
				continue
			}
			b.WriteString(charClass(rs[i+1 : j]))
			i = j
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	return b.String()
}

// charClass writes fnmatch's [seq] ("!" negates, "-" between two
// characters is a range) as a Go character class.
func charClass(seq []rune) string {
	if len(seq) == 1 && seq[0] == '!' {
		return "." // a negated empty set: any character
	}
	var b strings.Builder
	b.WriteByte('[')
	if len(seq) > 0 && seq[0] == '!' {
		b.WriteByte('^')
		seq = seq[1:]
	}
	for k, c := range seq {
		if c == '-' && k > 0 && k < len(seq)-1 {
			b.WriteByte('-')
			continue
		}
		if c < 128 && !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	b.WriteByte(']')
	return b.String()
}
