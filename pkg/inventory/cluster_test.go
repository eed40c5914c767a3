package inventory

import (
	"reflect"
	"strings"
	"testing"
)

func loadCluster(t *testing.T, ini string, files map[string]string) (*Cluster, error) {
	t.Helper()
	inv, err := Load(writeInventory(t, ini, files))
	if err != nil {
		return nil, err
	}
	return NewCluster(inv)
}

const base = "[kube-master]\nm1 ansible_host=10.0.0.1\n[etcd]\nm1\n[kube-node]\nw1\n[k8s-cluster:children]\nkube-master\nkube-node\n"

func TestSSHSettings(t *testing.T) {
	cl, err := loadCluster(t, base+`[all:vars]
ansible_user=admin
ansible_become=yes
ansible_become_password=s3cret
ansible_ssh_private_key_file=~/.ssh/lab
[kube-node:vars]
ansible_port=2222
ansible_ssh_common_args='-o StrictHostKeyChecking=no -o ProxyJump=jump@bastion:2200,ops@inner'
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	m1, w1 := cl.Nodes[0].SSH, cl.Nodes[1].SSH
	if m1.Host != "10.0.0.1" || m1.Port != 22 || m1.User != "admin" || !m1.Become || m1.BecomePassword != "s3cret" || m1.KeyFile != "~/.ssh/lab" || len(m1.Jumps) != 0 {
		t.Errorf("m1: %+v", m1)
	}
	want := []Hop{{User: "jump", Host: "bastion", Port: 2200}, {User: "ops", Host: "inner"}}
	if w1.Host != "w1" || w1.Port != 2222 || !reflect.DeepEqual(w1.Jumps, want) {
		t.Errorf("w1: %+v", w1)
	}
}

func TestJumpsFromArgs(t *testing.T) {
	for args, want := range map[string][]Hop{
		"-J root@b1":                         {{User: "root", Host: "b1"}},
		"-o ProxyJump=b1:2022":               {{Host: "b1", Port: 2022}},
		"-oProxyJump=ssh://u@[fd00::1]:2200": {{User: "u", Host: "fd00::1", Port: 2200}},
		`-o ProxyCommand="ssh -W %h:%p -p 2201 -i key ops@bastion"`: {{User: "ops", Host: "bastion", Port: 2201, KeyFiles: []string{"key"}}},
		`-o ProxyCommand="ssh -q -l ops bastion nc %h %p"`:          {{User: "ops", Host: "bastion"}},
		`-o "ProxyCommand ssh -J a@j1 -W [%h]:%p b@j2"`:             {{User: "a", Host: "j1"}, {User: "b", Host: "j2"}},
		"-o ProxyJump=none":         nil,
		"-o ServerAliveInterval=30": nil,
	} {
		got, _, err := jumpsFromArgs(args)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %+v %v, want %+v", args, got, err, want)
		}
	}
	for _, args := range []string{`-o ProxyCommand="nc -X 5 -x proxy %h %p"`, `-o ProxyCommand="ssh -W other:22 b"`,
		`-o ProxyCommand="ssh b"`, `-o ProxyCommand="ssh b nc %h 22"`, `-o ProxyCommand="ssh -W %h:%p"`} {
		if _, _, err := jumpsFromArgs(args); err == nil || !strings.Contains(err.Error(), "ProxyCommand") {
			t.Errorf("%s: %v, want a refusal naming ProxyCommand", args, err)
		}
	}
}

// jumpsFromArgs returns the bastions OpenSSH arguments set, and whether
// they set the route at all ("ProxyJump=none" sets it to none).
func jumpsFromArgs(args string) ([]Hop, bool, error) {
	words, err := shlexSplit(args)
	if err != nil {
		return nil, false, err
	}
	a := newSSHArgs()
	_, _, err = a.parse(words, nil)
	return a.route.hops, a.route.set, err
}

func TestBadSSHVariable(t *testing.T) {
	_, err := loadCluster(t, strings.Replace(base, "m1 ansible_host=10.0.0.1", "m1 ansible_host=10.0.0.1 ansible_port=seventy", 1), nil)
	if err == nil || !strings.Contains(err.Error(), "host m1: variable ansible_port") || !strings.Contains(err.Error(), "hosts.ini:2") {
		t.Errorf("bad port: %v", err)
	}
}

func TestStorageBothStyles(t *testing.T) {
	cl, err := loadCluster(t, base+"[kube-node]\nw2\n", map[string]string{
		"host_vars/w1.yml": "metal_k8s_lvm: {vgs: {kubevg: {drives: ['/dev/vdb']}}}\nmetalk8s_lvm_default_vg: false\n",
		"host_vars/w2.yml": "metalk8s_lvm_drives_vg_metalk8s: ['/dev/vdb', '/dev/vdc']\n" +
			"metalk8s_lvm_drives_vg_data: ['/dev/vdd']\nmetalk8s_lvm_force_drives: ['/dev/vdd']\n" +
			"metalk8s_lvm_lvs_vg_data: {data1: {size: 100G, fstype: xfs, labels: {tier: fast}, force: true}}\n",
	})
	if err != nil {
		t.Fatal(err)
	}
	w1, w2 := cl.Workers[0], cl.Workers[1]
	if len(w1.Storage) != 1 || w1.Storage[0].Name != "kubevg" || w1.Storage[0].Drives[0] != "/dev/vdb" || len(w1.Storage[0].LVs) != 3 {
		t.Errorf("0.1 style: %+v", w1.Storage)
	}
	if len(w2.Storage) != 2 || w2.Storage[0].Name != "vg_metalk8s" || len(w2.Storage[0].Drives) != 2 || w2.Storage[0].LVs[0].Size != "52G" {
		t.Fatalf("1.x default VG: %+v", w2.Storage)
	}
	lv := w2.Storage[1].LVs[0]
	if w2.Storage[1].Name != "vg_data" || lv.Name != "data1" || lv.FSType != "xfs" || lv.Labels["tier"] != "fast" || !lv.Force || lv.MountOpts != "defaults,noatime" || lv.FSOpts != "-m 0" {
		t.Errorf("1.x extra VG: %+v", w2.Storage[1])
	}
	if len(w2.ForceDrives) != 1 || w2.ForceDrives[0] != "/dev/vdd" || len(w1.ForceDrives) != 0 {
		t.Errorf("forced drives: %v %v", w1.ForceDrives, w2.ForceDrives)
	}
	if len(cl.ControlPlane[0].Storage) != 0 {
		t.Errorf("storage on a non-worker: %+v", cl.ControlPlane[0].Storage)
	}
}

func TestBadStorage(t *testing.T) {
	for vars, want := range map[string]string{
		"metalk8s_lvm_drives_vg_metalk8s: /dev/vdb\n":                                                                 "must be a list",
		"metalk8s_lvm_drives_vg_metalk8s: ['/dev/vdb']\nmetalk8s_lvm_lvs_vg_metalk8s: {a: {size: big}}\n":             "not a size",
		"metalk8s_lvm_drives_vg_metalk8s: ['/dev/vdb']\nmetalk8s_lvm_lvs_vg_metalk8s: {a: {size: 1G, colour: red}}\n": "unknown field",
		"metal_k8s_lvm: [1]\n": "must be a mapping",
		"metalk8s_lvm_drives_vg_metalk8s: ['/dev/vdb']\nmetalk8s_lvm_force_drives: ['/dev/sda']\n": "/dev/sda is not a drive of any volume group",
	} {
		_, err := loadCluster(t, base, map[string]string{"host_vars/w1.yml": vars})
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "host w1") || !strings.Contains(err.Error(), "host_vars/w1.yml") {
			t.Errorf("%q: %v, want %q naming the host and file", vars, err, want)
		}
	}
}

// An even etcd group loads, with a warning naming the file and line: it is
// what remove-node leaves of three members until one is added back.
func TestEvenEtcdWarns(t *testing.T) {
	cl, err := loadCluster(t, "[kube-master]\nm1\n[etcd]\nm1\nm2\n[kube-node]\nm1\n[k8s-cluster:children]\nkube-master\nkube-node\n", nil)
	if err != nil {
		t.Fatalf("two etcd hosts refused: %v", err)
	}
	if len(cl.Etcd) != 2 || len(cl.Warnings) != 1 {
		t.Fatalf("etcd %d, warnings %q", len(cl.Etcd), cl.Warnings)
	}
	w := cl.Warnings[0]
	if !strings.Contains(w, "hosts.ini:3") || !strings.Contains(w, "2 hosts (m1, m2)") {
		t.Errorf("warning %q: want the group's line and its hosts", w)
	}
	cl, err = loadCluster(t, base, nil)
	if err != nil || len(cl.Warnings) != 0 {
		t.Errorf("one etcd host: %v, warnings %q", err, cl.Warnings)
	}
}
