package inventory

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/metalk8s/metalk8s/internal/testpeer"
)

// Host patterns are judged by the real ansible: for each pattern, the
// hosts and their order from `ansible -i INV --list-hosts PATTERN`
// (Select) and from `ansible -i INV all --list-hosts --limit PATTERN`
// (Limit). Where ansible warns "Could not match supplied host pattern,
// ignoring: X", metalk8s refuses naming X (the rule it keeps, Ansible's
// host_pattern_mismatch=error); where ansible lists no host or fails,
// metalk8s refuses too.

// selectINI has nested children, a child listed before its own section,
// hosts in several groups, an ungrouped host, dotted names and ranges.
const selectINI = `bastion.example.com ansible_host=192.0.2.1

[kube_control_plane]
node1
node2

[etcd]
node1
etcd[1:2]

[kube_node]
node3
node1
node4
web1.example.com

[k8s_cluster:children]
kube_control_plane
kube_node
calico_rr

[calico_rr]

[web]
web1.example.com
web2.example.com
`

var selectPatterns = []string{
	"all", "*", "ungrouped", "k8s_cluster", "kube_node", "etcd", "calico_rr",
	"node1:node3", "node3,node1", "node3 , etcd", "etcd:!kube_control_plane",
	"k8s_cluster:&etcd", "!etcd", "&etcd:kube_node", "!etcd:kube_node:web",
	"kube_node:!node1:&k8s_cluster", "node*", "*.example.com", "web?.example.com",
	"kube*", "kube*[2]", "k8s_cluster[0]", "kube_node[-1]", "kube_node[1:]",
	"kube_node[0:1]", "kube_node[1:0]", "kube_node[0-1]", "kube_node[2:9]",
	"~node[12]", "~(etcd|web)", "~.*example", "node[!12]", "etcd[1:2]", "etcd1:etcd2",
	"al*", "web", "web1.example.com:node4",
	// Errors (ansible: "Could not match supplied host pattern"; an index
	// out of range; no host left).
	"nothere", "kube_node:nothere", "kube_node:!nothere", "kube_node[9]",
	"node[1:2]", "calico_rr[0:1]", "kube_node:!kube_node", "~(",
}

func writeSelectInventory(t *testing.T) string {
	dir := t.TempDir()
	path := filepath.Join(dir, "hosts.ini")
	if err := os.WriteFile(path, []byte(selectINI), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// ansibleListHosts runs ansible --list-hosts; ok is false when it fails.
func ansibleListHosts(t *testing.T, bin string, args ...string) (hosts []string, ok bool, stderr string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"--list-hosts"}, args...)...)
	cmd.Env = append(ansibleEnv(t), "ANSIBLE_HOST_PATTERN_MISMATCH=warning", "ANSIBLE_INVENTORY_ENABLED=ini")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.Output()
	stderr = strings.Join(strings.Fields(errb.String()), " ") // warnings are wrapped
	if err != nil {
		return nil, false, stderr
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) == 0 || !strings.HasPrefix(strings.TrimSpace(lines[0]), "hosts (") {
		t.Fatalf("ansible --list-hosts %q: unexpected output\n%s", args, out)
	}
	for _, l := range lines[1:] {
		hosts = append(hosts, strings.TrimSpace(l))
	}
	return hosts, len(hosts) > 0, stderr
}

func hostNames(hs []*Host) []string {
	var out []string
	for _, h := range hs {
		out = append(out, h.Name)
	}
	return out
}

func compareSelection(t *testing.T, label string, mine []*Host, err error, want []string, ok bool, stderr string) {
	t.Helper()
	const warn = "Could not match supplied host pattern, ignoring: "
	if i := strings.Index(stderr, warn); i >= 0 {
		bad := strings.Fields(stderr[i+len(warn):])[0]
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q matches no group or host", bad)) {
			t.Errorf("%s: ansible warns it ignores %s; metalk8s must refuse it, but: %v", label, bad, err)
		}
		return
	}
	switch {
	case !ok && err == nil:
		t.Errorf("%s: ansible fails (%s) but metalk8s selects %v", label, strings.TrimSpace(stderr), hostNames(mine))
	case ok && err != nil:
		t.Errorf("%s: ansible lists %v but metalk8s: %v", label, want, err)
	case ok && !reflect.DeepEqual(hostNames(mine), want):
		t.Errorf("%s: metalk8s %v, ansible %v", label, hostNames(mine), want)
	case err != nil && strings.Contains(err.Error(), "\n"):
		t.Errorf("%s: error is not one line: %q", label, err)
	}
}

// selectFixture finds ansible and loads selectINI, for ansible and us.
func selectFixture(t *testing.T) (bin, path string, inv *Inventory) {
	testpeer.OptOut(t, "ansible comparisons", false)
	bin = needAnsible(t, "ansible")
	path = writeSelectInventory(t)
	inv, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return bin, path, inv
}

func TestSelectMatchesAnsibleListHosts(t *testing.T) {
	bin, path, inv := selectFixture(t)
	for _, p := range selectPatterns {
		want, ok, stderr := ansibleListHosts(t, bin, "-i", path, p)
		mine, err := inv.Select(p)
		compareSelection(t, "pattern "+p, mine, err, want, ok, stderr)
	}
}

func TestLimitMatchesAnsibleLimit(t *testing.T) {
	bin, path, inv := selectFixture(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "retry")
	os.WriteFile(file, []byte("node3\n\nweb\n!web2.example.com\nkube_node[0]\n"), 0o644)
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte("node3\nnode9\n"), 0o644)
	limits := []string{
		"kube_node", "node3,node1", "~node[12]", "k8s_cluster:&etcd", "!etcd",
		"kube_node[-1]:web", "@" + file, "@" + file + ",etcd", "@" + file + ":&k8s_cluster",
		"@" + bad, "@" + filepath.Join(dir, "none"), "@" + dir, "nothere", "kube_node:!k8s_cluster",
	}
	for _, l := range limits {
		want, ok, stderr := ansibleListHosts(t, bin, "-i", path, "all", "--limit", l)
		mine, err := inv.Limit(l)
		compareSelection(t, "--limit "+l, mine, err, want, ok, stderr)
	}
	if _, err := inv.Limit("@" + bad); err == nil || !strings.Contains(err.Error(), bad+":2:") {
		t.Errorf("a limit file's unmatched line is not named by file and line: %v", err)
	}
}

func TestSplitHostPattern(t *testing.T) {
	// The examples of split_host_pattern's docstring and its colon rules.
	for in, want := range map[string][]string{
		"a,b[1], c[2:3] , d": {"a", "b[1]", "c[2:3]", "d"},
		"a:b":                {"a", "b"},
		"g:!h:&i":            {"g", "!h", "&i"},
		"node[1:3]":          {"node[1:3]"},
		"g[1:]:h":            {"g[1:]", "h"},
		"fe80::1":            {"fe80::1"},
		"host:2222":          {"host:2222"},
		" ":                  nil,
	} {
		if got := SplitHostPattern(in); !reflect.DeepEqual(got, want) {
			t.Errorf("SplitHostPattern(%q) = %q, want %q", in, got, want)
		}
	}
}

// Any pattern gives hosts or a one-line error, never a panic.
func FuzzSelect(f *testing.F) {
	for _, p := range append(selectPatterns, "!", "&", "~", "[", "]", "a[", "g[-9]", "g[0:]", "@", ":", ",", "!&x", "x[99999999999999999999]") {
		f.Add(p)
	}
	dir := f.TempDir()
	path := filepath.Join(dir, "hosts.ini")
	os.WriteFile(path, []byte(selectINI), 0o644)
	inv, err := Load(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if _, err := inv.Select(p); err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: error is not one line: %q", p, err)
		}
		// No "@": no file is read.
		if _, err := inv.Limit(strings.ReplaceAll(p, "@", "")); err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: error is not one line: %q", p, err)
		}
	})
}

// A pattern naming the other spelling of a role group the inventory has
// (kube-master, kube-node, k8s-cluster and their new names) matches that
// group, in Select and Limit, as if written the inventory's way; Ansible
// would match nothing (an extension, not compared with it).
func TestGroupAliases(t *testing.T) {
	inv, err := Load(writeSelectInventory(t)) // new names
	if err != nil {
		t.Fatal(err)
	}
	oldINI := strings.NewReplacer("kube_control_plane", "kube-master", "kube_node", "kube-node", "k8s_cluster", "k8s-cluster").Replace(selectINI)
	oldPath := filepath.Join(t.TempDir(), "hosts.ini")
	os.WriteFile(oldPath, []byte(oldINI), 0o644)
	old, err := Load(oldPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ alias, same string }{
		{"kube-master", "kube_control_plane"}, {"kube-node", "kube_node"}, {"k8s-cluster", "k8s_cluster"},
		{"kube-master[0]", "kube_control_plane[0]"}, {"k8s-cluster:&etcd", "k8s_cluster:&etcd"},
		{"kube-node:!kube-master", "kube_node:!kube_control_plane"}, {"etcd:!kube-node", "etcd:!kube_node"},
	} {
		for _, x := range []struct {
			inv         *Inventory
			alias, same string
			label       string
		}{
			{inv, c.alias, c.same, "new names"},
			{old, c.same, c.alias, "old names"},
		} {
			want, err := x.inv.Select(x.same)
			if err != nil {
				t.Fatal(err)
			}
			got, err := x.inv.Select(x.alias)
			if err != nil || !reflect.DeepEqual(hostNames(got), hostNames(want)) {
				t.Errorf("%s: pattern %s: %v, %v; want %v as %s", x.label, x.alias, hostNames(got), err, hostNames(want), x.same)
			}
			want, _ = x.inv.Limit(x.same)
			got, err = x.inv.Limit(x.alias)
			if err != nil || !reflect.DeepEqual(hostNames(got), hostNames(want)) {
				t.Errorf("%s: --limit %s: %v, %v; want %v as %s", x.label, x.alias, hostNames(got), err, hostNames(want), x.same)
			}
		}
	}
	// Other names, and wildcards, are matched as Ansible does.
	for _, p := range []string{"kube-nodes", "kube_master", "kube-*"} {
		if _, err := inv.Select(p); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q matches no group or host", p)) {
			t.Errorf("pattern %s: %v; want it refused", p, err)
		}
	}
	// An inventory with both spellings keeps each group its own hosts.
	both := filepath.Join(t.TempDir(), "hosts.ini")
	os.WriteFile(both, []byte("[kube-node]\nn1\n[kube_node]\nn2\n"), 0o644)
	b, err := Load(both)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := b.Select("kube-node"); err != nil || !reflect.DeepEqual(hostNames(got), []string{"n1"}) {
		t.Errorf("kube-node beside kube_node: %v, %v; want [n1]", hostNames(got), err)
	}
}
