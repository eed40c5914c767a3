package node

import (
	"strings"
	"testing"

	"github.com/metalk8s/metalk8s/pkg/inventory"
)

func TestParseFacts(t *testing.T) {
	out := "hostname=node1\nkernel=6.1.0-18-amd64\ncpus=2\nmemkb=2031616\nnow=1764100000000000000\n" +
		"os_PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nos_ID=debian\nos_VERSION_ID=\"12\"\n"
	f, err := parseFacts(out)
	if err != nil {
		t.Fatal(err)
	}
	if f.Hostname != "node1" || f.CPUs != 2 || f.MemoryMB != 1984 || f.OSVersion != "12" || f.Family() != "debian" || f.OSName != "Debian GNU/Linux 12 (bookworm)" {
		t.Errorf("facts: %+v", f)
	}
	if _, err := parseFacts("garbage"); err == nil {
		t.Error("garbage accepted")
	}
}

func TestFamily(t *testing.T) {
	for _, c := range []struct{ id, like, want string }{
		{"debian", "", "debian"}, {"ubuntu", "debian", "debian"}, {"rocky", "rhel centos fedora", "el"},
		{"centos", "rhel fedora", "el"}, {"almalinux", "", "el"}, {"rhel", "fedora", "el"},
		{"arch", "", ""}, {"opensuse-leap", "suse opensuse", ""},
	} {
		f := &Facts{OSID: c.id, OSLike: c.like}
		if got := f.Family(); got != c.want {
			t.Errorf("%s (%s): %q, want %q", c.id, c.like, got, c.want)
		}
	}
}

func TestRequiredPorts(t *testing.T) {
	cp := requiredPorts(&inventory.Node{ControlPlane: true, Etcd: true})
	if cp[6443] != "kube-apiserver" || cp[2380] != "etcd" || cp[10250] != "kubelet" {
		t.Errorf("control plane + etcd: %v", cp)
	}
	w := requiredPorts(&inventory.Node{Worker: true})
	if len(w) != 1 || w[10250] != "kubelet" {
		t.Errorf("worker: %v", w)
	}
}

func TestIntVar(t *testing.T) {
	vars := map[string]any{"a": int64(3), "b": " 4 ", "c": "x"}
	if intVar(vars, "a", 1) != 3 || intVar(vars, "b", 1) != 4 || intVar(vars, "c", 1) != 1 || intVar(vars, "d", 9) != 9 {
		t.Error("intVar")
	}
}

func TestNodePackagesByRole(t *testing.T) {
	ext4 := []inventory.VG{{Name: "vg", LVs: []inventory.LV{{Name: "a", FSType: "ext4"}}}}
	xfs := []inventory.VG{{Name: "vg", LVs: []inventory.LV{{Name: "a", FSType: "ext4"}, {Name: "b", FSType: "xfs"}}}}
	for _, c := range []struct {
		node inventory.Node
		want string
	}{
		{inventory.Node{Etcd: true}, ""},
		{inventory.Node{ControlPlane: true}, "iptables ipvsadm ipset conntrack socat ebtables ethtool"},
		{inventory.Node{Worker: true, Storage: ext4}, "iptables ipvsadm ipset conntrack socat ebtables ethtool lvm2 e2fsprogs"},
		{inventory.Node{Worker: true, Storage: xfs}, "iptables ipvsadm ipset conntrack socat ebtables ethtool lvm2 e2fsprogs xfsprogs"},
	} {
		if got := strings.Join(nodePackages(&c.node), " "); got != c.want {
			t.Errorf("%+v: %q, want %q", c.node, got, c.want)
		}
	}
}

// A step that needs facts the run did not read (preflight left out by
// --only or --skip) gets an error naming the phase, never a nil Facts.
func TestFactsNeeded(t *testing.T) {
	s := NewFactStore()
	if f, err := s.Need("node1"); f != nil || err == nil || !strings.Contains(err.Error(), "host node1") || !strings.Contains(err.Error(), "preflight phase") {
		t.Errorf("no facts: %v, %v", f, err)
	}
	s.set("node1", &Facts{OSID: "debian", OSVersion: "12"})
	if f, err := s.Need("node1"); err != nil || f.OSFamily() != "debian-12" {
		t.Errorf("facts read: %v, %v", f, err)
	}
}
