package main

import (
	"bytes"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
)

// inventory --check prints where metalk8s connects for each host: the
// user, the address ([IPv6]:port) and the jump hosts, kubespray's bastion
// included, or that the host is local.
func TestInventoryCheckRoutes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hosts.ini")
	ini := `[bastion]
bastion ansible_host=203.0.113.9 ansible_user=jump ansible_port=2222
[kube-master]
m1 ansible_host=fd00::1 ansible_user=admin ansible_become=true
[etcd]
m1
[kube-node]
w1 ansible_host=10.0.0.2 ansible_ssh_common_args='-o ProxyJump=none'
w2 ansible_connection=local
w3 ansible_host=10.0.0.3 ansible_ssh_common_args='-J [fd00::9]:2200'
[k8s-cluster:children]
kube-master
kube-node
`
	if err := os.WriteFile(path, []byte(ini), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := metalk8s(t, "inventory", "--check", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	me, _ := user.Current()
	for _, want := range []string{
		"m1: ssh admin@[fd00::1]:22 via jump@203.0.113.9:2222 (sudo)",
		"w1: ssh " + me.Username + "@10.0.0.2:22,",
		"w2: ssh local (ansible_connection=local: no SSH),",
		"w3: ssh " + me.Username + "@10.0.0.3:22 via " + me.Username + "@[fd00::9]:2200,",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	// A bastion without ansible_user is refused, naming it.
	os.WriteFile(path, []byte(strings.Replace(ini, " ansible_user=jump", "", 1)), 0o600)
	code, _, errOut = metalk8s(t, "inventory", "--check", path)
	if code != 2 || !strings.Contains(errOut, "bastion") || !strings.Contains(errOut, "ansible_user") {
		t.Errorf("bastion without a user: exit %d, %s", code, errOut)
	}
}

// inventory --check prints each worker's volumes as MetalK8s 1.x would
// make them (pkg/inventory's storage_test.go cites the roles): the three
// default volumes next to the listed ones, and a VG with an empty drive
// list as existing.
func TestInventoryCheckVolumes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hosts.ini")
	os.WriteFile(path, []byte("[kube-master]\nm1 ansible_connection=local\n[etcd]\nm1\n[kube-node]\nw1 ansible_connection=local\nw2 ansible_connection=local\n"), 0o600)
	os.MkdirAll(filepath.Join(dir, "host_vars"), 0o755)
	os.WriteFile(filepath.Join(dir, "host_vars", "w1.yml"), []byte("metalk8s_lvm_drives_vg_metalk8s: [/dev/vdb]\nmetalk8s_lvm_lvs_vg_metalk8s: {lv01: {size: 10G}}\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "host_vars", "w2.yml"), []byte("metalk8s_lvm_drives_vg_metalk8s: []\n"), 0o600)
	code, out, errOut := metalk8s(t, "inventory", "--check", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"    vg vg_metalk8s on /dev/vdb: lv01 10G, metalk8s_lv01 52G, metalk8s_lv02 5G, metalk8s_lv03 11G\n",
		"    vg vg_metalk8s (existing: no drive listed): metalk8s_lv01 52G, metalk8s_lv02 5G, metalk8s_lv03 11G\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
}

// --check warns about what Ansible accepts but a run would fail on.
func TestInventoryCheckWarnings(t *testing.T) {
	dir := t.TempDir()
	inv := filepath.Join(dir, "hosts.ini")
	os.WriteFile(inv, []byte("[kube-master]\nnode1 ansible_host=192.0.2.1 ansible_ssh_private_key_file="+filepath.Join(dir, "nokey")+
		"\nnode2 ansible_host=192.0.2.1\nnode3 ansible_host=192.0.2.3\n[etcd:children]\nkube-master\n"), 0o600)
	var out, errOut bytes.Buffer
	if code := run([]string{"metalk8s", "inventory", "--check", inv}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{
		"warning: host node1: private key " + filepath.Join(dir, "nokey") + ": no such file or directory\n",
		"warning: hosts node1 and node2 share the address 192.0.2.1\n",
	} {
		if strings.Count(out.String(), want) != 1 {
			t.Errorf("want once %q in:\n%s", want, out.String())
		}
	}
	if strings.Count(out.String(), "share the address") != 1 {
		t.Errorf("one warning per pair of hosts:\n%s", out.String())
	}
}

// Two etcd hosts (what remove-node leaves of three) load with a warning:
// on stdout for inventory --check, on stderr, once, for other commands.
func TestEvenEtcdWarning(t *testing.T) {
	dir := t.TempDir()
	inv := filepath.Join(dir, "hosts.ini")
	os.WriteFile(inv, []byte("[kube-master]\nnode1 ansible_connection=local\n[etcd]\nnode1\nnode2 ansible_connection=local\n[kube-node]\nnode1\n"), 0o600)
	const want = "the etcd group has 2 hosts (node1, node2)"
	code, out, errOut := metalk8s(t, "inventory", "--check", inv)
	if code != 0 || !strings.Contains(out, "  warning: "+inv+":3: "+want) {
		t.Errorf("inventory --check: exit %d\n%s%s", code, out, errOut)
	}
	code, _, errOut = metalk8s(t, "bundle", "list", "-i", inv)
	if code != 0 || strings.Count(errOut, "metalk8s: warning: "+inv+":3: "+want) != 1 {
		t.Errorf("bundle list -i: exit %d\n%s", code, errOut)
	}
}
