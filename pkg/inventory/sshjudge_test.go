package inventory

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// ansibleRoute is what the ssh connection plugin does for one host, as
// OpenSSH itself resolves Ansible's command line (ssh -G).
type ansibleRoute struct {
	Host, User, BecomeUser string
	Port, Timeout, Alive   int
	Keys                   []string // identity files given, in ssh's order
	Jumps                  []Hop
	Err                    string // ssh refuses the arguments
}

// sshG is what `ssh ARGS -G DEST` prints of the settings metalk8s uses.
type sshG struct {
	host, user, proxyJump, proxyCommand string
	port, timeout, alive                int
	keys                                []string
}

// judgeUserConfig, when set, is the ~/.ssh/config the judge's ssh reads
// when its command line has no -F (ssh reads the account's own, which a
// test must not write).
var judgeUserConfig string

func runSSHG(args []string, dest string) (sshG, error) {
	var g sshG
	var all []string
	if judgeUserConfig != "" {
		all = append(all, "-F", judgeUserConfig) // a later -F wins
	}
	all = append(all, args...)
	if dest != "" {
		all = append(all, dest)
	}
	// -G goes first: ssh parses options after the destination too.
	cmd := exec.Command("ssh", append([]string{"-G"}, all...)...)
	home, err := os.MkdirTemp("", "sshg")
	if err != nil {
		return g, err
	}
	defer os.RemoveAll(home)
	cmd.Env = append(os.Environ(), "HOME="+home) // no ~/.ssh/config
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return g, fmt.Errorf("ssh: %s", strings.TrimSpace(stderr.String()))
	}
	for _, line := range strings.Split(string(out), "\n") {
		k, v, _ := strings.Cut(line, " ")
		switch k {
		case "hostname":
			g.host = v
		case "user":
			g.user = v
		case "port":
			g.port, _ = strconv.Atoi(v)
		case "connecttimeout":
			g.timeout, _ = strconv.Atoi(v)
		case "serveraliveinterval":
			g.alive, _ = strconv.Atoi(v)
		case "identityfile":
			if !strings.HasPrefix(v, "~/.ssh/id_") { // ssh's defaults, when none is given
				g.keys = append(g.keys, v)
			}
		case "proxyjump":
			g.proxyJump = v
		case "proxycommand":
			g.proxyCommand = v
		}
	}
	return g, nil
}

// configOf is the -F an ssh command line reads (the last one).
func configOf(args []string) []string {
	var cfg []string
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "-F" {
			cfg = []string{"-F", args[i+1]}
		}
	}
	return cfg
}

// sshResolve completes r with what OpenSSH makes of Ansible's arguments:
// the address, user, port, keys, timeouts, and each jump host as the ssh
// that reaches it resolves it (with the -F ssh passes on to ProxyJump's
// hops, or the ProxyCommand's own arguments).
func sshResolve(r *ansibleRoute, args []string, addr string) error {
	g, err := runSSHG(args, addr)
	if err != nil {
		return err
	}
	r.Host, r.User, r.Port, r.Timeout, r.Alive, r.Keys = g.host, g.user, g.port, g.timeout, g.alive, g.keys
	r.Jumps, err = sshJumps(g, configOf(args))
	return err
}

func sshJumps(g sshG, cfg []string) ([]Hop, error) {
	switch {
	case g.proxyJump != "":
		var hops []Hop
		for i, spec := range strings.Split(g.proxyJump, ",") {
			args := append([]string{}, cfg...)
			if u, h, ok := strings.Cut(spec, "@"); ok {
				args, spec = append(args, "-l", u), h
			}
			if i := strings.LastIndex(spec, ":"); i > 0 && !strings.HasSuffix(spec, "]") {
				args, spec = append(args, "-p", spec[i+1:]), spec[:i]
			}
			hg, err := runSSHG(args, strings.Trim(spec, "[]"))
			if err != nil {
				return nil, err
			}
			if i == 0 {
				// ssh reaches the first hop as any host, the others with
				// -J (their own ProxyJump yields to it).
				before, err := sshJumps(hg, cfg)
				if err != nil {
					return nil, err
				}
				hops = append(hops, before...)
			}
			hops = append(hops, Hop{User: hg.user, Host: hg.host, Port: hg.port, KeyFiles: hg.keys})
		}
		return hops, nil
	case g.proxyCommand != "":
		words, err := shlexSplit(g.proxyCommand)
		if err != nil {
			return nil, err
		}
		var inner []string
		for i := 1; i < len(words); i++ {
			switch {
			case words[i] == "-W":
				i++
			case words[i] == "nc" && i+3 == len(words):
				i = len(words)
			default:
				inner = append(inner, words[i])
			}
		}
		hg, err := runSSHG(inner, "")
		if err != nil {
			return nil, err
		}
		before, err := sshJumps(hg, configOf(inner))
		return append(before, Hop{User: hg.user, Host: hg.host, Port: hg.port, KeyFiles: hg.keys}), err
	}
	return nil, nil
}

// writeInventory writes hosts.ini and files (by relative path) in a new
// directory, "DIR" in any of them replaced by its path, and returns the
// inventory's path.
func writeInventory(t *testing.T, ini string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	all := map[string]string{"hosts.ini": ini}
	for name, content := range files {
		all[name] = content
	}
	for name, content := range all {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(content, "DIR", dir)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "hosts.ini")
}

// loadFiles loads the inventory writeInventory writes.
func loadFiles(t *testing.T, ini string, files map[string]string) *Inventory {
	t.Helper()
	inv, err := Load(writeInventory(t, ini, files))
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

// ansibleAndMetalk8s returns what ansible and ssh do for each host of the
// inventory writeInventory writes, and the inventory as metalk8s loads it.
func ansibleAndMetalk8s(t *testing.T, ini string, files map[string]string) (map[string]ansibleRoute, *Inventory) {
	t.Helper()
	path := writeInventory(t, ini, files)
	want := ansibleRoutes(t, path)
	inv, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return want, inv
}

// compareRoutes checks that metalk8s reaches every host as ansible does.
// Hosts in skip are not compared.
func compareRoutes(t *testing.T, want map[string]ansibleRoute, inv *Inventory, skip ...string) {
	t.Helper()
	if len(want)+len(skip) != len(inv.Hosts) {
		t.Errorf("ansible ran ssh for %d hosts, the inventory has %d", len(want), len(inv.Hosts)-len(skip))
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
		got := ansibleRoute{Host: c.Host, User: c.User, Port: c.Port, Timeout: c.Timeout, Alive: max(c.KeepAlive, 0)}
		if c.KeyFile != "" {
			got.Keys = append([]string{c.KeyFile}, c.MoreKeys...)
		}
		if got.User == "" {
			got.User = me.Username // ssh's default, and metalk8s's
		}
		if c.Timeout == 0 {
			got.Timeout = 10 // Ansible's default timeout
		}
		if c.KeepAlive == 0 {
			got.Alive = w.Alive // metalk8s's own default (Debian's ssh: 300 s under BatchMode)
		}
		for _, j := range c.Jumps {
			if j.User == "" {
				j.User = me.Username
			}
			if j.Port == 0 {
				j.Port = 22
			}
			got.Jumps = append(got.Jumps, j)
		}
		if c.Become {
			got.BecomeUser = c.BecomeUser
		}
		if !reflect.DeepEqual(got, w) {
			t.Errorf("%s:\n ansible  %+v\n metalk8s %+v", name, w, got)
		} else {
			t.Logf("%s: %s", name, c.Route())
		}
	}
}
