package inventory

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"sync"

	sshconfig "github.com/kevinburke/ssh_config"
)

// sshFiles caches the -F files read, by path, for one process.
var sshFiles sync.Map // path -> *sshconfig.Config or error

func readSSHFile(path string) (*sshconfig.Config, error) {
	if v, ok := sshFiles.Load(path); ok {
		if err, isErr := v.(error); isErr {
			return nil, err
		}
		return v.(*sshconfig.Config), nil
	}
	var cfg *sshconfig.Config
	f, err := os.Open(path)
	if err == nil {
		// A device or a pipe would block: only files, and /dev/null.
		if st, serr := f.Stat(); serr == nil && !st.Mode().IsRegular() && path != os.DevNull {
			err = fmt.Errorf("not a regular file")
		} else {
			cfg, err = sshconfig.Decode(f)
		}
		f.Close()
	}
	if err != nil {
		err = fmt.Errorf("%s: %v", path, err)
		sshFiles.Store(path, err)
		return nil, err
	}
	sshFiles.Store(path, cfg)
	return cfg, nil
}

// applySSHFile applies the entries of an ssh_config file (the -F of a
// command line, else ~/.ssh/config) that hold for alias, the host name ssh
// was given: every Host block whose patterns match it, in file order, each
// keyword only where the command line left it unset (ssh.c reads the
// configuration after the command line; readconf.c keeps the first
// value), and the files its Include lines name, in place (relative to
// ~/.ssh, ssh_config(5)). Match blocks are refused: metalk8s does not
// evaluate them.
func applySSHFile(path, alias string, a *sshArgs) error {
	return applySSHFileDepth(path, alias, a, 0)
}

func applySSHFileDepth(path, alias string, a *sshArgs, depth int) error {
	if path == "" || strings.EqualFold(path, "none") {
		return nil
	}
	if depth > 16 {
		return fmt.Errorf("%s: Include nested too deep", path)
	}
	cfg, err := readSSHFile(path)
	if err != nil {
		return err
	}
	for _, h := range cfg.Hosts {
		if strings.HasPrefix(strings.TrimSpace(h.String()), "Match") {
			return fmt.Errorf("%s: Match blocks are not supported by metalk8s: use Host blocks", path)
		}
		if !h.Matches(alias) {
			continue
		}
		for _, n := range h.Nodes {
			switch kv := n.(type) {
			case *sshconfig.KV:
				val := kv.Value
				if strings.EqualFold(kv.Key, "hostname") {
					if val, err = expandHostname(val, alias); err != nil {
						return fmt.Errorf("%s line %d: %v", path, kv.Pos().Line, err)
					}
				}
				if err := a.option(kv.Key, val); err != nil {
					return fmt.Errorf("%s line %d (%s %s): %v", path, kv.Pos().Line, kv.Key, kv.Value, err)
				}
			case *sshconfig.Include:
				files, err := included(kv.String())
				if err != nil {
					return fmt.Errorf("%s line %d: %v", path, kv.Pos().Line, err)
				}
				for _, f := range files {
					if err := applySSHFileDepth(f, alias, a, depth+1); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// included lists the files of an Include line: each pattern globbed, a
// relative one under ~/.ssh (a user configuration's rule).
func included(line string) ([]string, error) {
	_, rest, _ := strings.Cut(strings.TrimSpace(line), "Include")
	home := sshHome()
	var files []string
	for _, p := range strings.Fields(strings.TrimPrefix(strings.TrimSpace(rest), "=")) {
		if p == "~" || strings.HasPrefix(p, "~/") {
			p = filepath.Join(home, p[1:])
		} else if !filepath.IsAbs(p) {
			p = filepath.Join(home, ".ssh", p)
		}
		m, err := filepath.Glob(p)
		if err != nil {
			return nil, fmt.Errorf("Include %s: %v", p, err)
		}
		files = append(files, m...)
	}
	return files, nil
}

// sshHome is the home directory ssh uses for ~/.ssh: the account's, from
// the password database (ssh.c, pw_dir), not $HOME. Tests replace it.
var sshHome = func() string {
	if u, err := user.Current(); err == nil && u.HomeDir != "" {
		return u.HomeDir
	}
	home, _ := os.UserHomeDir()
	return home
}

// userSSHConfig is ~/.ssh/config when it exists: ssh reads it when no -F
// is given (ssh.c). /etc/ssh/ssh_config is not read.
func userSSHConfig() string {
	home := sshHome()
	if home == "" {
		return ""
	}
	p := filepath.Join(home, ".ssh", "config")
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

// expandHostname expands HostName's tokens as ssh_config(5) allows: %h
// (the name given) and %%.
func expandHostname(v, alias string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] != '%' {
			b.WriteByte(v[i])
			continue
		}
		if i+1 >= len(v) {
			return "", fmt.Errorf("HostName %q ends with %%", v)
		}
		i++
		switch v[i] {
		case 'h':
			b.WriteString(alias)
		case '%':
			b.WriteByte('%')
		default:
			return "", fmt.Errorf("HostName %q: token %%%c is not supported by metalk8s", v, v[i])
		}
	}
	return b.String(), nil
}

// viaConfig is the way to the jump hosts of a ProxyJump list as the ssh
// that reaches them sees them with -F path (ssh.c passes -F on to it):
// each hop's own user, port, address and keys where the jump's spec left
// them unset. ssh reaches the last hop with "-J <the others>", which
// overrides that hop's own ProxyJump; only the first hop's own route
// (through this same file) comes before it.
func viaConfig(path string, hops []Hop, depth int) ([]Hop, error) {
	if depth > 8 {
		return nil, fmt.Errorf("%s: too many jump hosts in a row (a loop?)", path)
	}
	var out []Hop
	for i, hop := range hops {
		h, own, err := resolveHop(path, hop)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			before, err := own.resolve(path, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, before...)
		}
		out = append(out, h)
	}
	return out, nil
}

// resolveHop is a host as ssh -F path sees it, where the command line
// left user, port and address unset, and the route its entries give it.
func resolveHop(path string, hop Hop) (Hop, route, error) {
	a := newSSHArgs()
	a.user, a.port, a.identities = hop.User, hop.Port, hop.KeyFiles
	if err := applySSHFile(path, hop.Host, a); err != nil {
		return hop, route{}, err
	}
	h := Hop{User: a.user, Host: hop.Host, Port: a.port, KeyFiles: a.identities}
	if a.hostname != "" {
		h.Host = a.hostname
	}
	return h, a.route, nil
}

// resolve is the route's hops, a ProxyJump's resolved through the -F
// file the ssh that reaches them reads.
func (r route) resolve(path string, depth int) ([]Hop, error) {
	if !r.viaJump || len(r.hops) == 0 || path == "" {
		return r.hops, nil
	}
	return viaConfig(path, r.hops, depth)
}
