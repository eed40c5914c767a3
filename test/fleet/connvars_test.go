package fleet_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metalk8s/metalk8s/pkg/inventory"
	mk8sssh "github.com/metalk8s/metalk8s/pkg/ssh"
	"github.com/metalk8s/metalk8s/test/fleet"

	"github.com/metalk8s/metalk8s/internal/testpeer"
)

// Connection variables set under both their new and legacy names, run by
// the real ansible (-m raw) and by metalk8s on the same sshd hosts: both
// must reach the same user on the same host, or both fail.
func TestConnectionVarsLikeAnsible(t *testing.T) {
	bin := needAnsible(t)
	f := fleet.Start(t, 2)
	addr := func(name string) string { return f.Host(name).Addr }
	// The first line is the example: Ansible logs in as root on
	// port 22 (ansible_ssh_* win), where port 2222 has no sshd.
	inv := fmt.Sprintf(`n1 ansible_ssh_host=%s ansible_ssh_port=22 ansible_ssh_user=root
n2 ansible_host=%s ansible_ssh_host=%s ansible_port=22 ansible_user=root
hid ansible_host=%s ansible_port=22 ansible_user=root ansible_ssh_common_args='-o ServerAliveInterval=5' ansible_ssh_extra_args='-J root@%s'
sudo1 ansible_host=%s ansible_port=22 ansible_user=%s ansible_become=true ansible_become_password=wrong-pw ansible_sudo_pass=%s
sudo2 ansible_host=%s ansible_port=22 ansible_user=%s ansible_become=true ansible_become_pass=%s ansible_sudo_pass=wrong-pw

[all:vars]
ansible_user=%s
ansible_port=2222
ansible_ssh_private_key_file=%s
`, addr("node-001"), addr("node-001"), addr("node-002"), addr("hidden"), addr("bastion"),
		addr("sudopw"), fleet.SudoUser, f.SudoPassword, addr("sudopw"), fleet.SudoUser, f.SudoPassword,
		fleet.NoPasswdUser, f.Key)
	dir := t.TempDir()
	path := filepath.Join(dir, "hosts.ini")
	if err := os.WriteFile(path, []byte(inv), 0o600); err != nil {
		t.Fatal(err)
	}
	compareOnFleet(t, bin, f, path, path, map[string]string{"n1": "root@node-001", "n2": "root@node-002",
		"hid": "root@hidden", "sudo1": "root@sudopw", "sudo2": "failed"})
}

// needAnsible finds ansible, or skips (fails under CI) without it; fleet
// tests are not short.
func needAnsible(t *testing.T) string {
	testpeer.OptOut(t, "fleet tests", false)
	return testpeer.Binary(t, "ansible", "ansible-core")
}

// compareOnFleet runs a command on each host of expect with the real
// ansible (inventory theirs) and with metalk8s (inventory mine): both must
// give the same output, and ansible the one expected (what the case means
// on the fleet, for the reader).
func compareOnFleet(t *testing.T, bin string, f *fleet.Fleet, theirs, mine string, expect map[string]string) {
	t.Helper()
	const cmd = `echo "$(id -un)@$(hostname)"`
	want := ansibleRaw(t, bin, f, theirs, cmd)
	loaded, err := inventory.Load(mine)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSH_AUTH_SOCK", "")
	pool, err := mk8sssh.NewPool(mk8sssh.Options{KnownHosts: f.KnownHosts, ConnectTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range expect {
		cfg, err := inventory.SSHFor(loaded.Hosts[name])
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		got := metalk8sRun(t, pool, name, cfg, cmd)
		t.Logf("%s: ansible %q, metalk8s %s %q", name, want[name], cfg.Route(), got)
		if got != want[name] {
			t.Errorf("%s: ansible %q, metalk8s %q (%s)", name, want[name], got, cfg.Route())
		}
		if want[name] != out {
			t.Errorf("%s: ansible gives %q, expected %q", name, want[name], out)
		}
	}
}

// ansibleRaw runs cmd with `ansible -m raw` on every host of the inventory
// and returns each host's output, or "failed".
func ansibleRaw(t *testing.T, bin string, f *fleet.Fleet, path, cmd string) map[string]string {
	t.Helper()
	home := t.TempDir()
	cfg := filepath.Join(home, "ansible.cfg")
	os.WriteFile(cfg, nil, 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tree := filepath.Join(home, "tree") // one JSON result per host
	c := exec.CommandContext(ctx, bin, "-i", path, "all", "-f", "10", "-m", "raw", "-a", cmd, "-t", tree)
	c.Env = append(os.Environ(),
		"ANSIBLE_CONFIG="+cfg,
		// the fleet's known_hosts and key, also for the -J hop
		"ANSIBLE_SSH_ARGS=-F "+f.SSHConfig+" -o ControlMaster=no",
		"ANSIBLE_LOCAL_TEMP="+filepath.Join(home, "tmp"),
		"HOME="+home,
		"SSH_AUTH_SOCK=",
	)
	out, _ := c.CombinedOutput() // exit 2 when a host fails
	t.Logf("ansible:\n%s", out)
	files, _ := filepath.Glob(filepath.Join(tree, "*"))
	if len(files) == 0 {
		t.Fatalf("ansible wrote no result")
	}
	res := map[string]string{}
	for _, file := range files {
		var r struct {
			Stdout      string `json:"stdout"`
			Failed      bool   `json:"failed"`
			Unreachable bool   `json:"unreachable"`
			RC          *int   `json:"rc"` // absent when sudo failed
		}
		data, err := os.ReadFile(file)
		if err == nil {
			err = json.Unmarshal(data, &r)
		}
		if err != nil {
			t.Fatalf("ansible's result %s: %v", file, err)
		}
		name := filepath.Base(file)
		if r.Failed || r.Unreachable || r.RC == nil || *r.RC != 0 {
			res[name] = "failed"
			continue
		}
		res[name] = strings.TrimSpace(r.Stdout)
	}
	return res
}

// metalk8sRun runs cmd on the host as metalk8s does (as root under
// become), and returns its output, or "failed".
func metalk8sRun(t *testing.T, pool *mk8sssh.Pool, name string, cfg inventory.SSHConfig, cmd string) string {
	t.Helper()
	c, err := pool.Client(name, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := c.Run(ctx, cmd)
	if err != nil {
		t.Logf("metalk8s %s: %v", name, err)
		return "failed"
	}
	return strings.TrimSpace(string(r.Stdout))
}

// SSH options, -F files, kubespray's bastion and a local host, run by the
// real ansible (-m raw) and by metalk8s on the fleet's sshd hosts: both
// must reach the same user on the same host. Ansible's copy of the
// inventory carries kubespray's rule for the bastion as Jinja in
// [all:vars] (below every group and host, as a role default);
// metalk8s's applies the rule itself. (Each host through the bastion
// names its key: kubespray passes it to the bastion's ssh with -i, and
// without it that ssh has only ~/.ssh's keys, where metalk8s would also
// offer the host's.)
func TestSSHArgsLikeAnsible(t *testing.T) {
	bin := needAnsible(t)
	f := fleet.Start(t, 3)
	addr := func(name string) string { return f.Host(name).Addr }
	dir := t.TempDir()
	cfg := filepath.Join(dir, "ssh.cfg")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`Host n3alias
  HostName %s
  User %s
Host *
  UserKnownHostsFile %s
  StrictHostKeyChecking yes
  IdentityFile %s
  BatchMode yes
`, addr("node-003"), fleet.NoPasswdUser, f.KnownHosts, f.Key)), 0o600)
	me, _ := os.Hostname()
	inv := fmt.Sprintf(`[bastion]
bastion ansible_host=%[1]s ansible_user=root ansible_ssh_private_key_file=%[2]s
[nodes]
hid ansible_host=%[3]s ansible_user=root ansible_ssh_private_key_file=%[2]s
args1 ansible_host=%[4]s ansible_ssh_common_args='-p 2222 -l %[5]s -i %[2]s'
args2 ansible_host=%[6]s ansible_user=root ansible_ssh_private_key_file=%[2]s ansible_ssh_args='-o User=%[5]s -F %[7]s'
args3 ansible_host=n3alias ansible_ssh_common_args='-F %[8]s -o ControlMaster=auto -o ControlPersist=60s -C'
local1 ansible_connection=local
`, addr("bastion"), f.Key, addr("hidden"), addr("port"), fleet.NoPasswdUser, addr("node-002"), f.SSHConfig, cfg)
	mine := filepath.Join(dir, "metalk8s", "hosts.ini")
	theirs := filepath.Join(dir, "ansible", "hosts.ini")
	for path, content := range map[string]string{mine: inv, theirs: inv + kubesprayAllVars} {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	compareOnFleet(t, bin, f, theirs, mine, map[string]string{"hid": "root@hidden", "args1": "mk8s@port",
		"args2": "mk8s@node-002", "args3": "mk8s@node-003", "local1": "root@" + me})
}

// kubesprayAllVars is kubespray's default ansible_ssh_common_args
// (roles/kubespray_defaults/defaults/main/main.yml), as [all:vars] Jinja.
const kubesprayAllVars = "[all:vars]\nansible_ssh_common_args=\"{% if 'bastion' in groups['all'] %}" +
	"-o ProxyCommand='ssh -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no -W %h:%p " +
	"-p {{ hostvars['bastion']['ansible_port'] | default(22) }} " +
	"{{ hostvars['bastion']['ansible_user'] }}@{{ hostvars['bastion']['ansible_host'] }} " +
	"{{ ('-i ' ~ ansible_ssh_private_key_file) if ansible_ssh_private_key_file is defined else '' }}'{% endif %}\"\n"
