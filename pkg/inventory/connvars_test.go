package inventory

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
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
c5 ansible_host=127.77.5.1 ansible_private_key_file=/k/a ansible_ssh_private_key_file=/k/b ansible_timeout=7
c6 ansible_host=127.77.6.1 ansible_ssh_timeout=3 ansible_timeout=9 ansible_private_key_file=/k/a
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

// ansibleRoute is what the ssh connection plugin does for one host.
type ansibleRoute struct {
	Host, User, KeyFile, BecomeUser string
	Port, Timeout                   int
	Jumps                           []Hop
	Err                             string // ssh refuses the arguments
}

// sshResolve completes r with what OpenSSH makes of Ansible's arguments
// (ssh -G): the address, user, port, timeout and jump hosts it would use.
func sshResolve(r *ansibleRoute, args []string, addr string) error {
	cmd := exec.Command("ssh", append(append([]string{}, args...), "-G", addr)...)
	cmd.Env = append(os.Environ(), "HOME="+os.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("ssh: %s", strings.TrimSpace(stderr.String()))
	}
	for _, line := range strings.Split(string(out), "\n") {
		k, v, _ := strings.Cut(line, " ")
		switch k {
		case "hostname":
			r.Host = v
		case "user":
			r.User = v
		case "port":
			r.Port, _ = strconv.Atoi(v)
		case "connecttimeout":
			r.Timeout, _ = strconv.Atoi(v)
		case "proxyjump":
			if r.Jumps, err = ParseJumps(v); err != nil {
				return err
			}
		case "proxycommand":
			if r.Jumps, err = proxyCommandJump(v); err != nil {
				return err
			}
		}
	}
	return nil
}

func needAnsible(t *testing.T, bin string) string {
	t.Helper()
	p, err := exec.LookPath(bin)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed (make deps: apt-get install ansible-core)", bin)
		}
		t.Skipf("%s is not installed (apt-get install ansible-core)", bin)
	}
	return p
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
		args := words[1 : len(words)-2]
		for i := 0; i+1 < len(args); i++ {
			if k, v := splitOption(args[i+1]); args[i] == "-o" && k == "IdentityFile" {
				r.KeyFile = strings.Trim(v, `"`)
			}
		}
		if err := sshResolve(&r, args, words[len(words)-2]); err != nil {
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
	dir := t.TempDir()
	path := filepath.Join(dir, "hosts.ini")
	os.WriteFile(path, []byte(connVarsINI), 0o644)
	os.MkdirAll(filepath.Join(dir, "group_vars"), 0o755)
	os.WriteFile(filepath.Join(dir, "group_vars", "yaml.yml"), []byte(connVarsYAML), 0o644)
	want := ansibleRoutes(t, path)
	inv, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != len(inv.Hosts) {
		t.Errorf("ansible ran ssh for %d hosts, the inventory has %d", len(want), len(inv.Hosts))
	}
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	for name, w := range want {
		c, err := SSHFor(inv.Hosts[name])
		if w.Err != "" {
			// ssh refuses Ansible's command: metalk8s refuses the host.
			if err == nil {
				t.Errorf("%s: %s, but metalk8s accepts %+v", name, w.Err, c)
			} else {
				t.Logf("%s: %s; metalk8s: %v", name, w.Err, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		got := ansibleRoute{Host: c.Host, User: c.User, KeyFile: c.KeyFile, Port: c.Port, Jumps: c.Jumps, Timeout: c.Timeout}
		if got.User == "" {
			got.User = me.Username // ssh's default, and metalk8s's
		}
		if c.Timeout == 0 {
			got.Timeout = 10 // Ansible's default timeout
		}
		if c.Become {
			got.BecomeUser = c.BecomeUser
		}
		if !reflect.DeepEqual(got, w) {
			t.Errorf("%s:\n ansible  %+v\n metalk8s %+v", name, w, got)
		}
	}
	// The example, spelled out.
	if r := want["c1"]; r.User != "root" || r.Port != 22 {
		t.Errorf("c1: ansible goes to %s@%s:%d, the issue says root on port 22", r.User, r.Host, r.Port)
	}
}
