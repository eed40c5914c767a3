package main

import (
	"regexp"
	"strings"
	"testing"
)

// bundle list takes the OS families from the inventory's metalk8s_os
// (debian-12 where unset), --os overriding them; the families its errors
// suggest are accepted by --os.
func TestBundleListFamilies(t *testing.T) {
	isolate(t)
	inv := writeInventory(t, "[kube-master]", "node1", "[etcd:children]", "kube-master",
		"[kube-node]", "node2 metalk8s_os=debian-11", "node3")
	suites := func(args ...string) string {
		t.Helper()
		code, out, errOut := metalk8s(t, append([]string{"bundle", "list"}, args...)...)
		if code != 0 {
			t.Fatalf("bundle list %v: exit %d: %s", args, code, errOut)
		}
		var got []string
		for _, m := range regexp.MustCompile(`(?m)^packages\t\S+/dists/(\w+)/InRelease$`).FindAllStringSubmatch(out, -1) {
			got = append(got, m[1])
		}
		if !strings.Contains(out, "\nimage\tregistry.k8s.io/kube-apiserver:") || !strings.HasPrefix(out, "file\thttps://dl.k8s.io/") {
			t.Errorf("bundle list %v: no files or images:\n%s", args, out)
		}
		return strings.Join(got, " ")
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-i", inv}, "bookworm bullseye"},
		{[]string{"-i", inv, "--os", "debian-11"}, "bullseye"},
		{nil, "bookworm"},
		{[]string{"-i", inv, "--no-packages"}, ""},
	} {
		if got := suites(c.args...); got != c.want {
			t.Errorf("bundle list %v: packages for %q, want %q", c.args, got, c.want)
		}
	}
	bad := writeInventory(t, "[kube-master]", "node1 metalk8s_os=ubuntu-24", "[etcd:children]", "kube-master", "[kube-node:children]", "kube-master")
	for _, args := range [][]string{{"-i", bad}, {"--os", "rocky-9"}} {
		code, out, errOut := metalk8s(t, append([]string{"bundle", "list"}, args...)...)
		m := regexp.MustCompile(`accept (\S+), (\S+);`).FindStringSubmatch(errOut)
		if code != 2 || out != "" || m == nil || (args[0] == "-i" && !strings.Contains(errOut, "host node1: variable metalk8s_os")) {
			t.Fatalf("bundle list %v: exit %d, stderr %q", args, code, errOut)
		}
		if code, _, errOut := metalk8s(t, "bundle", "list", "--os", m[1]+","+m[2]); code != 0 {
			t.Errorf("the error suggests --os %s,%s, which is refused: %s", m[1], m[2], errOut)
		}
	}
}

// An inventory that turns node-exporter off neither fetches its binary
// nor has bundle verify -i require it.
func TestBundleNodeExporterOff(t *testing.T) {
	isolate(t)
	hosts := []string{"[kube-master]", "node1", "[etcd:children]", "kube-master", "[kube-node:children]", "kube-master"}
	on := writeInventory(t, hosts...)
	off := writeInventory(t, append(hosts, "[all:vars]", "metalk8s_monitoring_enabled=false")...)
	for inv, want := range map[string]bool{on: true, off: false} {
		code, out, errOut := metalk8s(t, "bundle", "list", "--no-packages", "-i", inv)
		if got := strings.Contains(out, "/node_exporter-"); code != 0 || got != want {
			t.Errorf("bundle list -i %s: exit %d, node_exporter listed %v, want %v: %s", inv, code, got, want, errOut)
		}
	}
}

// The README's worked example is a valid inventory.
func TestOwnMachinesExample(t *testing.T) {
	isolate(t)
	code, out, errOut := metalk8s(t, "inventory", "--check", "../../examples/own-machines/hosts.ini")
	if code != 0 || !strings.Contains(out, "workers:       w1, w2") {
		t.Errorf("inventory --check examples/own-machines/hosts.ini: exit %d\n%s%s", code, out, errOut)
	}
}
