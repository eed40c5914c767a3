package inventory

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metalk8s/metalk8s/internal/testpeer"
)

// The connection variables, each alias pair set both ways, as the real
// ansible resolves them: `ansible -m raw -vvv` prints the ssh command it
// runs (address, -o Port=, -o User=, -o IdentityFile=, -o ConnectTimeout=,
// the ssh args, sudo -u) before it connects. The addresses are on
// 127.77.0.0/16 where nothing listens, so every connection is refused at
// once. Each host's third octet is its own; the raw command names the host.
const connVarsINI = `[cases]
c1 ansible_ssh_host=127.77.1.1 ansible_ssh_port=22 ansible_ssh_user=root
c2 ansible_host=127.77.2.1 ansible_ssh_host=127.77.2.2
c3 ansible_ssh_host=127.77.3.2 ansible_host=127.77.3.1
c4 ansible_host=127.77.4.1 ansible_port=2200 ansible_user=bob
c5 ansible_host=127.77.5.1 ansible_private_key_file=DIR/k/a ansible_ssh_private_key_file=DIR/k/b ansible_timeout=7
c6 ansible_host=127.77.6.1 ansible_ssh_timeout=3 ansible_timeout=9 ansible_private_key_file=DIR/k/a
c7 ansible_host=127.77.7.1 ansible_become=true ansible_become_user=alice ansible_sudo_user=carol
c8 ansible_host=127.77.8.1 ansible_become=yes ansible_become_user=alice
c9 ansible_host=127.77.9.1 ansible_ssh_common_args='-o ServerAliveInterval=9' ansible_ssh_extra_args='-J x@127.77.9.9'
c10 ansible_host=127.77.10.1 ansible_ssh_common_args='-o ProxyJump=a@127.77.10.8' ansible_ssh_extra_args='-J b@127.77.10.9:2022'
c11 ansible_host=127.77.11.1 ansible_remote_user=bob
c14 ansible_host=127.77.14.1 ansible_ssh_host=127.77.14.2 ansible_ssh_port="2014" ansible_ssh_common_args='-J z@127.77.14.9' ansible_ssh_extra_args='-o ProxyJump=none'
c15 ansible_host=127.77.15.1 ansible_ssh_common_args='-o ProxyCommand="ssh -W %h:%p -p 2201 ops@127.77.15.9"' ansible_ssh_extra_args='-o ProxyJump=q@127.77.15.8'
c16 ansible_host=127.77.16.1 ansible_ssh_common_args='-o ProxyJump=none' ansible_ssh_extra_args='-o ProxyJump=q@127.77.16.8'

[yaml]
c12 ansible_host=127.77.12.1 ansible_user=dave ansible_port=2012
c13 ansible_host=127.77.13.1 ansible_port=2013 ansible_ssh_user=erin

[all:vars]
ansible_user=admin
ansible_port=2222
`

// group_vars/yaml.yml: a group-level legacy name still beats a host-level
// new one (the rule is by name, not by precedence level), and a null is
// not a value (_loop_entries skips None).
const connVarsYAML = `ansible_ssh_user: carl
ansible_ssh_port: null
`

func needAnsible(t *testing.T, bin string) string {
	t.Helper()
	return testpeer.Binary(t, bin, "ansible-core")
}

// ansibleEnv keeps ansible away from this machine's configuration.
func ansibleEnv(t *testing.T) []string {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "ansible.cfg")
	os.WriteFile(cfg, nil, 0o644)
	return append(os.Environ(),
		"ANSIBLE_CONFIG="+cfg,
		"ANSIBLE_HOST_KEY_CHECKING=False",
		"ANSIBLE_SSH_ARGS=-o ControlMaster=no -o BatchMode=yes",
		"ANSIBLE_NOCOLOR=1",
		"ANSIBLE_FORCE_COLOR=0",
		"ANSIBLE_LOCAL_TEMP="+filepath.Join(dir, "tmp"),
		"HOME="+dir,
		"SSH_AUTH_SOCK=",
	)
}

// ansibleRoutes runs `ansible all -m raw -vvv` on the inventory at path
// and reads, per host, the ssh command the plugin ran.
func ansibleRoutes(t *testing.T, path string) map[string]ansibleRoute {
	t.Helper()
	bin := needAnsible(t, "ansible")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-i", path, "all", "-f", "20", "-m", "raw", "-a", "mk8scase={{ inventory_hostname }}", "-vvv")
	cmd.Dir = filepath.Dir(path)
	cmd.Env = ansibleEnv(t)
	out, _ := cmd.CombinedOutput() // every host is unreachable: exit 4
	routes := map[string]ansibleRoute{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		_, line, ok := strings.Cut(sc.Text(), "> SSH: EXEC ")
		if !ok {
			continue
		}
		words, err := shlexSplit(line)
		if err != nil || len(words) < 3 {
			t.Fatalf("cannot split ansible's ssh command %q: %v", line, err)
		}
		remote := words[len(words)-1]
		_, name, ok := strings.Cut(remote, "mk8scase=")
		if !ok {
			t.Fatalf("no host name in ansible's ssh command %q", line)
		}
		name, _, _ = strings.Cut(name, "'")
		var r ansibleRoute
		if err := sshResolve(&r, words[1:len(words)-2], words[len(words)-2]); err != nil {
			r.Err = err.Error()
		}
		if f := strings.Fields(remote); len(f) > 0 && f[0] == "sudo" {
			for i := range f[:len(f)-1] {
				if f[i] == "-u" {
					r.BecomeUser = f[i+1]
				}
			}
		}
		routes[name] = r
	}
	if len(routes) == 0 {
		t.Fatalf("ansible printed no ssh command:\n%s", out)
	}
	return routes
}

func TestConnectionVarsMatchAnsible(t *testing.T) {
	want, inv := ansibleAndMetalk8s(t, connVarsINI, map[string]string{"group_vars/yaml.yml": connVarsYAML, "k/a": "", "k/b": ""})
	compareRoutes(t, want, inv)
	// The example, spelled out.
	if r := want["c1"]; r.User != "root" || r.Port != 22 {
		t.Errorf("c1: ansible goes to %s@%s:%d, the issue says root on port 22", r.User, r.Host, r.Port)
	}
}
