package node

import (
	"strings"
	"testing"
)

func TestSupported(t *testing.T) {
	for _, c := range []struct {
		id, like, version string
		ok                bool
	}{
		{"debian", "", "12", true}, {"debian", "", "11", true}, {"debian", "", "10", false},
		{"ubuntu", "debian", "22.04", true}, {"ubuntu", "debian", "23.10", false},
		{"centos", "rhel fedora", "7", true}, {"rhel", "fedora", "9.4", true}, {"rocky", "rhel centos fedora", "8.10", true},
		{"almalinux", "rhel centos fedora", "10.0", false}, {"centos", "rhel fedora", "6", false},
		{"arch", "", "", false},
	} {
		f := &Facts{OSID: c.id, OSLike: c.like, OSVersion: c.version, OSName: "Some " + c.id}
		err := f.Supported()
		if (err == nil) != c.ok {
			t.Errorf("%s %s: %v", c.id, c.version, err)
		}
		if err != nil && !strings.Contains(err.Error(), "Some "+c.id) {
			t.Errorf("error does not name the OS found: %v", err)
		}
	}
}

// EL nodes are not in the lab (Debian only): their commands are checked here.
func TestPackageCommandsByOS(t *testing.T) {
	el7 := &Facts{OSID: "centos", OSLike: "rhel fedora", OSVersion: "7"}
	el9 := &Facts{OSID: "rocky", OSLike: "rhel centos fedora", OSVersion: "9.4"}
	deb := &Facts{OSID: "debian", OSVersion: "12"}
	pkgs := packageNames(el9, []string{"conntrack", "ipvsadm"})
	if strings.Join(pkgs, " ") != "conntrack-tools ipvsadm" {
		t.Errorf("EL names: %v", pkgs)
	}
	for _, c := range []struct {
		f    *Facts
		repo string
		want string
	}{
		{el7, "", "yum -y install conntrack-tools ipvsadm"},
		{el9, "", "dnf -y install conntrack-tools ipvsadm"},
		{el9, "/var/lib/metalk8s/n1/bundle/packages/rocky-9", "dnf -y --disablerepo='*' --repofrompath=metalk8s-bundle,/var/lib/metalk8s/n1/bundle/packages/rocky-9 --enablerepo=metalk8s-bundle --nogpgcheck install conntrack-tools ipvsadm"},
		{deb, "", "export DEBIAN_FRONTEND=noninteractive; apt-get -q update && apt-get -q -y --no-install-recommends install conntrack-tools ipvsadm"},
	} {
		if got := installCommand(c.f, c.repo, pkgs); got != c.want {
			t.Errorf("install on %s %s:\n got %s\nwant %s", c.f.OSID, c.f.OSVersion, got, c.want)
		}
	}
	if q := queryCommand(el9, pkgs); !strings.HasPrefix(q, "rpm -q --qf '%{NAME} installed\\n' conntrack-tools ipvsadm") {
		t.Errorf("EL query: %s", q)
	}
	if q := queryCommand(deb, []string{"lvm2"}); !strings.HasPrefix(q, "dpkg-query -W") {
		t.Errorf("Debian query: %s", q)
	}
}

func TestTimeSyncChange(t *testing.T) {
	for _, c := range []struct {
		out  string
		warn string
	}{
		{"timedatectl yes\n", ""},
		{"timedatectl no\nchrony Normal\n", ""},
		{"timedatectl no\n", "timedatectl: no"},
		{"timedatectl no\nchrony Not synchronised\n", "timedatectl: no, chrony: Not synchronised"},
		{"", "no time service answers"},
	} {
		ch := timeSyncChange(c.out)
		if ch.Needed {
			t.Errorf("%q: time sync is never a change", c.out)
		}
		got := strings.Join(ch.Warnings, "")
		if (c.warn == "") != (got == "") || !strings.Contains(got, c.warn) {
			t.Errorf("%q: warnings %q, want %q", c.out, got, c.warn)
		}
	}
}
