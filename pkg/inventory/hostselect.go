package inventory

import (
	"fmt"
	"os"
	"regexp"
	"strings"
)

// Host selection follows ansible-core's lib/ansible/inventory/manager.py
// (split_host_pattern, order_patterns, InventoryManager._evaluate_patterns,
// _match_one_pattern, _split_subscript, _apply_subscript,
// _enumerate_matches, subset). Where Ansible only warns that a pattern
// matched nothing ("Could not match supplied host pattern, ignoring"),
// metalk8s refuses, as Ansible does with host_pattern_mismatch = error:
// a mistyped --limit must not silently shrink or empty a run.

// reSplitColon is split_host_pattern's ':'-separated list.
var reSplitColon = regexp.MustCompile(`(?:[^\s:\[\]]|\[[^\]]*\])+`)

// SplitHostPattern splits a host pattern into single patterns as
// ansible-core's split_host_pattern does: on commas when there is one,
// else the whole text when it parses as an address (an IPv6 address, a
// host range), else on colons outside brackets. Blanks around are dropped.
func SplitHostPattern(pattern string) []string {
	var parts []string
	if strings.Contains(pattern, ",") {
		parts = strings.Split(pattern, ",")
	} else if _, _, _, ok := parseAddress(pattern); ok {
		parts = []string{pattern}
	} else {
		parts = reSplitColon.FindAllString(pattern, -1)
	}
	var out []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// orderPatterns is ansible-core's order_patterns: unions first, then
// intersections (&), then exclusions (!), whatever the order written;
// "all" when there is no union.
func orderPatterns(ps []string) []string {
	var reg, and, not []string
	for _, p := range ps {
		switch {
		case p == "":
		case p[0] == '!':
			not = append(not, p)
		case p[0] == '&':
			and = append(and, p)
		default:
			reg = append(reg, p)
		}
	}
	if len(reg) == 0 {
		reg = []string{"all"}
	}
	return append(append(reg, and...), not...)
}

// Select returns the hosts a host pattern names, in the order Ansible's
// InventoryManager.get_hosts(pattern) lists them (ansible --list-hosts
// PATTERN). A single pattern that matches no group or host is an error.
func (inv *Inventory) Select(pattern string) ([]*Host, error) {
	hosts, err := inv.evaluatePatterns(SplitHostPattern(pattern), nil)
	if err != nil {
		return nil, err
	}
	if len(hosts) == 0 {
		return nil, fmt.Errorf("host pattern %q leaves no host of %s", pattern, inv.Path)
	}
	return hosts, nil
}

// Limit returns every host of the inventory that the --limit patterns
// keep, in inventory order ("all"), as ansible-core's
// InventoryManager.subset and get_hosts do for ansible --limit: a pattern
// "@FILE" stands for the lines of FILE, one pattern each, unsplit. An
// empty limit keeps every host.
func (inv *Inventory) Limit(limit string) ([]*Host, error) {
	all := inv.groupHosts(inv.Groups["all"])
	if strings.TrimSpace(limit) == "" {
		return all, nil
	}
	var pats []string
	var where []string // where each pattern was written, for errors
	for _, p := range SplitHostPattern(limit) {
		if p[0] != '@' {
			pats, where = append(pats, p), append(where, "")
			continue
		}
		file := p[1:]
		fi, err := os.Stat(file)
		if err != nil {
			return nil, fmt.Errorf("limit file %s: %v", file, err)
		}
		if !fi.Mode().IsRegular() { // os.path.isfile
			return nil, fmt.Errorf("limit file %s: a limit starting with @ must name a regular file", file)
		}
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("limit file %s: %v", file, err)
		}
		for i, line := range strings.Split(string(data), "\n") {
			pats = append(pats, strings.TrimSpace(line))
			where = append(where, fmt.Sprintf("%s:%d: ", file, i+1))
		}
	}
	keep, err := inv.evaluatePatterns(pats, where)
	if err != nil {
		return nil, err
	}
	in := map[*Host]bool{}
	for _, h := range keep {
		in[h] = true
	}
	var out []*Host
	for _, h := range all {
		if in[h] {
			out = append(out, h)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--limit %q leaves no host of %s", limit, inv.Path)
	}
	return out, nil
}

// evaluatePatterns is _evaluate_patterns followed by get_hosts'
// deduplication. where[i], when set, prefixes errors about pats[i].
func (inv *Inventory) evaluatePatterns(pats, where []string) ([]*Host, error) {
	at := map[string]string{}
	for i, p := range pats {
		if i < len(where) && at[p] == "" {
			at[p] = where[i]
		}
	}
	var hosts []*Host
	for _, p := range orderPatterns(pats) {
		if h, ok := inv.Hosts[p]; ok {
			hosts = append(hosts, h)
			continue
		}
		that, err := inv.matchOnePattern(p)
		if err != nil {
			return nil, fmt.Errorf("%s%v", at[p], err)
		}
		set := map[*Host]bool{}
		for _, h := range that {
			set[h] = true
		}
		switch p[0] {
		case '!', '&':
			keep := hosts[:0:0]
			for _, h := range hosts {
				if set[h] == (p[0] == '&') {
					keep = append(keep, h)
				}
			}
			hosts = keep
		default:
			existing := map[*Host]bool{}
			for _, h := range hosts {
				existing[h] = true
			}
			for _, h := range that {
				if !existing[h] {
					hosts = append(hosts, h)
				}
			}
		}
	}
	seen := map[*Host]bool{}
	var out []*Host
	for _, h := range hosts {
		if !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	return out, nil
}
