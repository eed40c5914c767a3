package inventory

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The ssh options of ansible_ssh_args, ansible_ssh_common_args and
// ansible_ssh_extra_args, with and without Ansible's own -o Port, User,
// IdentityFile and ConnectTimeout, and -F files: what `ansible -m raw -vvv`
// runs, resolved by `ssh -G`, is what metalk8s must do. No [all:vars]
// here, so that ssh's own defaults and the -F entries show.
const sshArgsINI = `[args]
a1 ansible_host=127.77.31.1 ansible_ssh_common_args='-p 2201 -i DIR/k/c -l deploy'
a2 ansible_host=127.77.32.1 ansible_port=2202 ansible_user=u2 ansible_ssh_private_key_file=DIR/k/a ansible_ssh_common_args='-p 2999 -l other -i DIR/k/c'
a3 ansible_host=127.77.33.1 ansible_ssh_args='-o Port=2303 -o User=sa -o ConnectTimeout=4 -i DIR/k/s' ansible_port=2203 ansible_user=u3 ansible_timeout=9 ansible_ssh_private_key_file=DIR/k/a
a4 ansible_host=127.77.34.1 ansible_ssh_common_args='-o ServerAliveInterval=20 -Cq' ansible_ssh_extra_args='-o ServerAliveInterval=15 -o ConnectTimeout=30 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'
a5 ansible_host=127.77.35.1 ansible_ssh_common_args='-oPort=2505 -oUser=five -oIdentityFile=DIR/k/c -o HostName=127.77.35.5 -o ControlMaster=auto -o ControlPersist=30m -o ConnectionAttempts=2'
a6 ansible_host=127.77.20.1 ansible_ssh_common_args='-F DIR/ssh.cfg'
a7 ansible_host=127.77.21.7 ansible_user=seven ansible_ssh_common_args='-F DIR/ssh.cfg'
a8 ansible_host=alias8 ansible_ssh_common_args='-F DIR/ssh.cfg -p 2000'
a9 ansible_host=127.77.29.1 ansible_ssh_common_args='-o ProxyCommand="ssh -q -l pc -p 2209 127.77.29.9 nc %h %p"'
a10 ansible_host=127.77.23.1 ansible_ssh_common_args='-F DIR/ssh.cfg'
a11 ansible_host=127.77.20.1 ansible_ssh_args='-F DIR/other.cfg' ansible_ssh_common_args='-F DIR/ssh.cfg'
a12 ansible_host=127.77.21.12 ansible_ssh_common_args='-F DIR/ssh.cfg -J direct@127.77.21.99' ansible_ssh_extra_args='-o ServerAliveInterval=0'
a13 ansible_host=127.77.24.1 ansible_ssh_common_args='-o ProxyJump=fjump,127.77.24.9:2424 -F DIR/ssh.cfg'
a16 ansible_host=127.77.26.1 ansible_ssh_common_args='-o ProxyJump=127.77.21.16,127.77.21.17 -F DIR/ssh.cfg'
a14 ansible_host=::1 ansible_port=2214 ansible_ssh_common_args='-J [::1]:2299'
a15 ansible_connection=ssh ansible_host=127.77.25.1 ansible_ssh_common_args='-F none -l fifteen'
`

const sshArgsCfg = `# a kubespray-like ssh configuration
Host 127.77.20.1
  User fuser
  Port 2020
  IdentityFile DIR/k/f

Host fjump
  HostName 127.77.20.9
  User jumper
  Port 2099

Host 127.77.21.*
  ProxyJump fjump
  ServerAliveInterval 7
  ControlMaster auto

Host alias8
  HostName 127.77.22.8
  Port 2208

Host 127.77.23.1
  ProxyCommand ssh -F /dev/null -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -W %h:%p -p 2210 ku@127.77.23.9 -i DIR/k/ku

Host *
  ConnectTimeout 3
  StrictHostKeyChecking no
  User everyone
`

func TestSSHArgsMatchAnsible(t *testing.T) {
	files := map[string]string{"ssh.cfg": sshArgsCfg, "other.cfg": "Host *\n  User other\n"}
	for _, k := range []string{"a", "c", "s", "f", "ku"} {
		files["k/"+k] = ""
	}
	want, inv := ansibleAndMetalk8s(t, sshArgsINI, files)
	compareRoutes(t, want, inv)
	// What these mean, for the reader: the judge found what the issue names.
	for name, route := range map[string]string{
		"a1": "deploy@127.77.31.1:2201", "a2": "u2@127.77.32.1:2202", "a3": "sa@127.77.33.1:2303",
		"a6": "fuser@127.77.20.1:2020", "a7": "seven@127.77.21.7:22 via jumper@127.77.20.9:2099",
		"a8": "everyone@127.77.22.8:2000", "a10": "everyone@127.77.23.1:22 via ku@127.77.23.9:2210",
	} {
		c, err := SSHFor(inv.Hosts[name])
		if err != nil || c.Route() != route {
			t.Errorf("%s: %s %v, want %s", name, c.Route(), err, route)
		}
	}
}

// Options that ssh accepts but metalk8s does not follow are refused, with
// the host, the variable and the option named.
func TestSSHArgsRefused(t *testing.T) {
	ini := `r1 ansible_ssh_common_args='-L 8080:localhost:80'
r2 ansible_ssh_extra_args='-o SetEnv=FOO=1'
r3 ansible_ssh_args='-N'
r4 ansible_ssh_common_args='-F DIR/match.cfg'
r5 ansible_host=127.77.45.1 ansible_ssh_common_args='-F DIR/fwd.cfg'
r6 ansible_ssh_common_args='-F DIR/nonexistent.cfg'
r7 ansible_ssh_common_args='-o ConnectTimeout=5 bogus'
r8 ansible_connection=winrm
r9 ansible_ssh_common_args='-o ProxyCommand="socat - TCP:%h:%p"'
r10 ansible_ssh_common_args='-c aes128-ctr'
r11 ansible_host=127.77.45.1 ansible_ssh_common_args='-F DIR/include.cfg'
r12 ansible_ssh_common_args='-o IdentityFile=~/.ssh/%r'
r13 ansible_ssh_extra_args='-4'
r14 ansible_ssh_extra_args='-F /dev/zero'
r15 ansible_ssh_common_args='-o ProxyCommand="sshpass -p s3cr3t ssh -W %h:%p b"'
`
	want := map[string][]string{
		"r1":  {"ansible_ssh_common_args", "-L"},
		"r2":  {"ansible_ssh_extra_args", "SetEnv"},
		"r3":  {"ansible_ssh_args", "-N"},
		"r4":  {"ansible_ssh_common_args", "match.cfg", "Match"},
		"r5":  {"ansible_ssh_common_args", "fwd.cfg line 2", "LocalForward"},
		"r6":  {"ansible_ssh_common_args", "nonexistent.cfg"},
		"r7":  {"ansible_ssh_common_args", "bogus"},
		"r8":  {"ansible_connection", "winrm"},
		"r9":  {"ansible_ssh_common_args", "ProxyCommand", "socat"},
		"r10": {"ansible_ssh_common_args", "-c aes128-ctr"},
		"r11": {"ansible_ssh_common_args", "fwd.cfg line 2", "LocalForward"},
		"r12": {"ansible_ssh_common_args", "IdentityFile", "%r"},
		"r13": {"ansible_ssh_extra_args", "-4"},
		"r14": {"ansible_ssh_extra_args", "/dev/zero", "not a regular file"},
		"r15": {"ansible_ssh_common_args", "sshpass ..."},
	}
	inv := loadFiles(t, ini, map[string]string{
		"match.cfg":   "Match host *\n  User x\n",
		"fwd.cfg":     "Host 127.77.45.1\n  LocalForward 8080 localhost:80\nHost other\n  DynamicForward 1080\n",
		"include.cfg": "Host *\n  Include DIR/fwd.cfg\n",
	})
	for name, parts := range want {
		c, err := SSHFor(inv.Hosts[name])
		if err == nil {
			t.Errorf("%s: accepted: %+v", name, c)
			continue
		}
		for _, p := range append([]string{"host " + name + ":", "variable " + parts[0]}, parts[1:]...) {
			if !strings.Contains(err.Error(), p) {
				t.Errorf("%s: %q lacks %q", name, err, p)
			}
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("%s: the error shows a password: %q", name, err)
		}
		if strings.Count(err.Error(), "\n") > 0 {
			t.Errorf("%s: more than one line: %q", name, err)
		}
	}
}

// ansible_connection: the plugins that reach the host over SSH, and local.
func TestConnectionPlugins(t *testing.T) {
	inv := loadFiles(t, `p1 ansible_connection=ssh ansible_ssh_common_args='-p 2201'
p2 ansible_connection=smart
p3 ansible_connection=paramiko
p4 ansible_connection=ansible.builtin.ssh
p5 ansible_connection=local ansible_host=10.0.0.5 ansible_port=2205 ansible_user=nobody ansible_ssh_common_args='-L 1:x:1'
p6 ansible_connection=ansible.builtin.local ansible_become=true
`, nil)
	for name, want := range map[string]string{"p1": "ssh", "p2": "ssh", "p3": "ssh", "p4": "ssh", "p5": "local", "p6": "local"} {
		c, err := SSHFor(inv.Hosts[name])
		if err != nil || c.Connection != want {
			t.Errorf("%s: %q %v, want %s", name, c.Connection, err, want)
		}
	}
	// A local host keeps its address (the node's, without ip) and become,
	// and uses no ssh setting.
	c, _ := SSHFor(inv.Hosts["p5"])
	if c.Host != "10.0.0.5" || c.User != "" || c.Port != 0 || c.Route() != "local (ansible_connection=local: no SSH)" {
		t.Errorf("p5: %+v", c)
	}
	if c, _ := SSHFor(inv.Hosts["p6"]); !c.Become || c.Host != "p6" {
		t.Errorf("p6: %+v", c)
	}
}

// Any text in the ssh variables gives a route or an error, never a panic.
func FuzzSSHArgs(f *testing.F) {
	for _, s := range []string{"-p 22 -l u -i k", "-J a,b:2 -F /dev/null", `-o ProxyCommand="ssh -W %h:%p -J x b"`,
		"-oPort=1 -Cqv -o", "-o ProxyCommand='ssh b nc %h %p'", "x -- y", "-W", "-o ProxyJump=[::1]:22"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, args string) {
		inv := &Inventory{Hosts: map[string]*Host{}}
		h := &Host{Name: "f", Vars: map[string]any{"ansible_ssh_common_args": args}, inv: inv}
		inv.Hosts["f"] = h
		SSHFor(h)
	})
}

// ~/.ssh/config, which ssh reads when no -F is given, and its Include.
func TestUserSSHConfigMatchesAnsible(t *testing.T) {
	home := t.TempDir()
	ssh := filepath.Join(home, ".ssh")
	os.MkdirAll(filepath.Join(ssh, "conf.d"), 0o700)
	os.WriteFile(filepath.Join(home, "k"), nil, 0o600)
	os.WriteFile(filepath.Join(ssh, "config"), []byte(strings.ReplaceAll(`Include HOME/.ssh/conf.d/*.conf
Host 127.77.70.*
  User uc
  Port 2270
Host ujump
  HostName 127.77.70.99
  User ujumper
`, "HOME", home)), 0o600)
	os.WriteFile(filepath.Join(ssh, "conf.d", "a.conf"), []byte("Host 127.77.71.1\n  ProxyJump ujump\n  IdentityFile "+home+"/k\n"), 0o600)
	defer func(h func() string) { sshHome, judgeUserConfig = h, "" }(sshHome)
	sshHome = func() string { return home }
	judgeUserConfig = filepath.Join(ssh, "config")
	want, inv := ansibleAndMetalk8s(t, `u1 ansible_host=127.77.70.1
u2 ansible_host=127.77.70.2 ansible_user=me2
u3 ansible_host=127.77.71.1
u4 ansible_host=127.77.70.4 ansible_ssh_common_args='-F none'
u5 ansible_host=127.77.72.5 ansible_ssh_common_args='-o ProxyCommand="ssh -W %h:%p ujump"'
`, nil)
	compareRoutes(t, want, inv)
	for name, route := range map[string]string{"u1": "uc@127.77.70.1:2270", "u2": "me2@127.77.70.2:2270"} {
		if c, err := SSHFor(inv.Hosts[name]); err != nil || c.Route() != route {
			t.Errorf("%s: %s %v, want %s", name, c.Route(), err, route)
		}
	}
	// An option metalk8s cannot follow, there, is refused, naming the file.
	os.WriteFile(filepath.Join(ssh, "conf.d", "b.conf"), []byte("Host 127.77.70.1\n  LocalForward 1 x:1\n"), 0o600)
	sshFiles.Clear()
	defer sshFiles.Clear()
	if _, err := SSHFor(inv.Hosts["u1"]); err == nil || !strings.Contains(err.Error(), "b.conf line 2") || !strings.Contains(err.Error(), "host u1") {
		t.Errorf("u1: %v", err)
	}
}
