package inventory

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// kubesprayCommonArgs is kubespray's rule for ansible_ssh_common_args
// (roles/kubespray_defaults/defaults/main/main.yml) written as Jinja for
// the inventory's [all:vars]: with a host named bastion, a ProxyCommand
// through it, with the host's own ansible_ssh_private_key_file for the
// bastion. [all:vars] yields to every group's and host's value, as a role
// default does (group_vars/all would not: it beats the INI's groups).
const kubesprayCommonArgs = "[all:vars]\nansible_ssh_common_args=\"{% if 'bastion' in groups['all'] %}" +
	"-o ProxyCommand='ssh -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no -W %h:%p " +
	"-p {{ hostvars['bastion']['ansible_port'] | default(22) }} " +
	"{{ hostvars['bastion']['ansible_user'] }}@{{ hostvars['bastion']['ansible_host'] }} " +
	"{{ ('-i ' ~ ansible_ssh_private_key_file) if ansible_ssh_private_key_file is defined else '' }}'{% endif %}\"\n"

const bastionINI = `[bastion]
bastion ansible_host=127.77.60.9 ansible_user=jumper ansible_port=2260
[nodes]
b1 ansible_host=127.77.61.1 ansible_user=admin
b2 ansible_host=127.77.62.1 ansible_ssh_private_key_file=KEYS/k
b3 ansible_host=127.77.63.1 ansible_ssh_common_args='-J own@127.77.63.9'
b4 ansible_host=127.77.64.1 ansible_ssh_extra_args='-o ProxyJump=extra@127.77.64.9'
b7 ansible_host=127.77.67.1 ansible_ssh_extra_args='-J extra@127.77.67.9'
b5 ansible_host=127.77.65.1 ansible_ssh_common_args=''
[g2]
b6 ansible_host=127.77.66.1
[g2:vars]
ansible_ssh_common_args='-o ServerAliveInterval=5'
`

// Kubespray's bastion: ansible (with kubespray's rule as group_vars/all)
// and metalk8s (which applies the rule itself) reach every host alike.
func TestKubesprayBastionMatchesAnsible(t *testing.T) {
	keys := t.TempDir()
	os.WriteFile(filepath.Join(keys, "k"), nil, 0o600)
	ini := strings.ReplaceAll(bastionINI, "KEYS", keys)
	want := ansibleRoutes(t, writeInventory(t, ini+kubesprayCommonArgs, nil))
	inv := loadFiles(t, ini, nil)
	// Kubespray runs no play on the bastion: metalk8s does not reach it
	// through itself.
	delete(want, "bastion")
	compareRoutes(t, want, inv, "bastion")
	for name, route := range map[string]string{
		"b2": "127.77.62.1:22 via jumper@127.77.60.9:2260", "b3": "127.77.63.1:22 via own@127.77.63.9:22",
		"b4": "127.77.64.1:22 via jumper@127.77.60.9:2260", "b5": "127.77.65.1:22", "b6": "127.77.66.1:22",
		"b1": "admin@127.77.61.1:22 via jumper@127.77.60.9:2260",
	} {
		c, err := SSHFor(inv.Hosts[name])
		if err != nil || c.Route() != route {
			t.Errorf("%s: %s %v, want %s", name, c.Route(), err, route)
		}
	}
	// b7: ssh refuses a -J after the bastion's ProxyCommand; so does metalk8s.
	if _, err := SSHFor(inv.Hosts["b7"]); err == nil || want["b7"].Err == "" {
		t.Errorf("b7: metalk8s %v, ssh %q: both must refuse", err, want["b7"].Err)
	}
	if c, _ := SSHFor(inv.Hosts["b2"]); len(c.Jumps) != 1 || len(c.Jumps[0].KeyFiles) != 1 {
		t.Errorf("b2: the bastion hop takes the host's key: %+v", c.Jumps)
	}
}
