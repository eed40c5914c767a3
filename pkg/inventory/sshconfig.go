package inventory

import (
	"fmt"
	"strconv"
	"strings"
)

// SSHConfig is how to reach a host, from Ansible's connection variables.
type SSHConfig struct {
	Host           string // ansible_host, else the inventory name
	Port           int    // ansible_port, else 22
	User           string // ansible_user; empty means the local user
	KeyFile        string // ansible_ssh_private_key_file
	Become         bool   // ansible_become
	BecomeUser     string // ansible_become_user, else root
	BecomePassword string `json:"-"` // ansible_become_password: a secret, never printed
	Jumps          []Hop  // bastions, first hop first (from ProxyJump)
	Timeout        int    // connect timeout in seconds (ansible_ssh_timeout); 0: the default
}

// Hop is one bastion on the way to a host.
type Hop struct {
	User string
	Host string
	Port int
}

func (h Hop) String() string {
	s := h.Host
	if strings.Contains(s, ":") {
		s = "[" + s + "]"
	}
	if h.User != "" {
		s = h.User + "@" + s
	}
	if h.Port != 0 && h.Port != 22 {
		s += ":" + strconv.Itoa(h.Port)
	}
	return s
}

// connVars is, for each connection setting metalk8s reads, the variables
// Ansible reads it from, in the order of the option's documented vars:
// list in ansible/plugins/connection/ssh.py (host, port, remote_user,
// private_key_file, timeout, ssh_common_args, ssh_extra_args) and
// ansible/plugins/become/sudo.py (become_user, become_pass). Ansible's
// config manager (ansible/config/manager.py, _loop_entries) keeps the LAST
// variable of the list that is set and not null: a later name wins.
var connVars = map[string][]string{
	"host":             {"ansible_host", "ansible_ssh_host"},
	"port":             {"ansible_port", "ansible_ssh_port"},
	"remote_user":      {"ansible_user", "ansible_ssh_user"},
	"private_key_file": {"ansible_private_key_file", "ansible_ssh_private_key_file"},
	// ssh.py lists only ansible_ssh_timeout; ansible_timeout reaches the
	// plugin through the play context (constants.py MAGIC_VARIABLE_MAPPING,
	// task_executor.py) when ansible_ssh_timeout is not set.
	"timeout":         {"ansible_timeout", "ansible_ssh_timeout"},
	"ssh_common_args": {"ansible_ssh_common_args"},
	"ssh_extra_args":  {"ansible_ssh_extra_args"},
	"become":          {"ansible_become"}, // constants.py MAGIC_VARIABLE_MAPPING
	"become_user":     {"ansible_become_user", "ansible_sudo_user"},
	"become_pass":     {"ansible_become_password", "ansible_become_pass", "ansible_sudo_pass"},
}

// ConnVar returns the variable Ansible takes a connection option from
// (an option name of ssh.py or sudo.py, as in connVars) and its value: the
// last of the option's documented variables that the host sets to a
// non-null value (ansible/config/manager.py, _loop_entries).
func ConnVar(h *Host, option string) (key string, value any, ok bool) {
	names, known := connVars[option]
	if !known {
		panic("inventory: unknown connection option " + option)
	}
	for _, k := range names {
		if v, set := h.Vars[k]; set && v != nil {
			key, value, ok = k, v, true
		}
	}
	return key, value, ok
}

// connText reads a connection option that must be text. A number or a
// boolean is refused: YAML (and INI's literal parsing) turn an unquoted
// 000000 into the integer 0, and Ansible keeps it a number, so turning it
// back into text would guess. A secret's value is never printed.
func connText(h *Host, option string, secret bool) (string, error) {
	k, v, ok := ConnVar(h, option)
	if !ok {
		return "", nil
	}
	if u, isUnsafe := v.(Unsafe); isUnsafe {
		v = string(u)
	}
	s, isText := v.(string)
	if !isText {
		return "", textError(h, k, v, secret)
	}
	if strings.Contains(s, "{{") || strings.Contains(s, "{%") {
		if secret {
			return "", varError(h, k, "Jinja templates are not supported")
		}
		return "", varError(h, k, "Jinja templates are not supported: %q", s)
	}
	return s, nil
}

// textError refuses a value that must be text but is not.
func textError(h *Host, key string, v any, secret bool) error {
	found := typeName(v)
	if !secret {
		switch v.(type) {
		case []any, map[string]any:
		default:
			found = fmt.Sprintf("%s (%v)", found, v)
		}
	}
	return varError(h, key, "must be text, but the inventory gives %s, as Ansible reads it too (an unquoted 000000 is the number 0): "+
		"quote the value in YAML (%s: \"...\") or use a vars file such as host_vars/%s.yml with the value quoted "+
		"(an INI host line drops the quotes)", found, key, h.Name)
}

func sshConfig(h *Host) (SSHConfig, error) {
	c := SSHConfig{Host: h.Name, Port: 22, BecomeUser: "root"}
	var err error
	if s, err := connText(h, "host", false); err != nil {
		return c, err
	} else if s != "" {
		c.Host = s
	}
	if k, _, ok := ConnVar(h, "port"); ok {
		p, _, err := optInt(h, k)
		if err != nil {
			return c, err
		}
		if p < 1 || p > 65535 {
			return c, varError(h, k, "port %d is out of range 1-65535", p)
		}
		c.Port = p
	}
	if k, _, ok := ConnVar(h, "timeout"); ok {
		if c.Timeout, _, err = optInt(h, k); err != nil {
			return c, err
		}
	}
	if c.User, err = connText(h, "remote_user", false); err != nil {
		return c, err
	}
	if c.KeyFile, err = connText(h, "private_key_file", false); err != nil {
		return c, err
	}
	if k, _, ok := ConnVar(h, "become"); ok {
		if c.Become, err = optBool(h, k); err != nil {
			return c, err
		}
	}
	if u, err := connText(h, "become_user", false); err != nil {
		return c, err
	} else if u != "" {
		c.BecomeUser = u
	}
	if c.BecomePassword, err = connText(h, "become_pass", true); err != nil {
		return c, err
	}
	// Both apply, common first (ssh.py _build_command).
	var r route
	for _, opt := range []string{"ssh_common_args", "ssh_extra_args"} {
		args, err := connText(h, opt, false)
		if err != nil {
			return c, err
		}
		if err := r.add(args); err != nil {
			k, _, _ := ConnVar(h, opt)
			return c, varError(h, k, "%v", err)
		}
	}
	c.Jumps = r.hops
	return c, nil
}

// route is the way to a host that OpenSSH arguments set: the first
// ProxyJump or ProxyCommand given wins (OpenSSH readconf.c), and ssh
// refuses a -J after either of them (ssh.c).
type route struct {
	set  bool  // a ProxyJump, ProxyCommand or -J was given
	hops []Hop // nil for none
}

// add reads the bastions in OpenSSH arguments: "-J a,b", "-o ProxyJump=a",
// or a "-o ProxyCommand='ssh -W %h:%p [-p N] user@bastion'".
func (r *route) add(args string) error {
	words, err := shlexSplit(args)
	if err != nil {
		return fmt.Errorf("cannot split %q: %v", args, err)
	}
	for i := 0; i < len(words); i++ {
		w := words[i]
		var opt string
		switch {
		case w == "-J" && i+1 < len(words), strings.HasPrefix(w, "-J") && len(w) > 2:
			spec := strings.TrimPrefix(w, "-J")
			if spec == "" {
				spec = words[i+1]
				i++
			}
			if r.set {
				return fmt.Errorf("-J %s comes after another ProxyJump or ProxyCommand, which ssh refuses", spec)
			}
			hops, err := ParseJumps(spec)
			r.set, r.hops = true, hops
			if err != nil {
				return err
			}
			continue
		case w == "-o" && i+1 < len(words):
			opt = words[i+1]
			i++
		case strings.HasPrefix(w, "-o"):
			opt = w[2:]
		default:
			continue
		}
		key, val := splitOption(opt)
		key = strings.ToLower(key)
		if (key != "proxyjump" && key != "proxycommand") || r.set {
			continue
		}
		r.set = true
		if strings.EqualFold(val, "none") {
			continue
		}
		if key == "proxyjump" {
			r.hops, err = ParseJumps(val)
		} else {
			r.hops, err = proxyCommandJump(val)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// jumpsFromArgs returns the bastions OpenSSH arguments set, and whether
// they set the route at all ("ProxyJump=none" sets it to none).
func jumpsFromArgs(args string) ([]Hop, bool, error) {
	var r route
	err := r.add(args)
	return r.hops, r.set, err
}

// splitOption splits "Key=Value" or "Key Value".
func splitOption(opt string) (string, string) {
	if k, v, ok := strings.Cut(opt, "="); ok {
		return strings.TrimSpace(k), strings.TrimSpace(v)
	}
	if k, v, ok := strings.Cut(strings.TrimSpace(opt), " "); ok {
		return k, strings.TrimSpace(v)
	}
	return opt, ""
}

// ParseJumps reads a ProxyJump list: "[user@]host[:port],...".
func ParseJumps(spec string) ([]Hop, error) {
	var hops []Hop
	for _, part := range strings.Split(spec, ",") {
		hop, err := parseHop(strings.TrimSpace(part))
		if err != nil {
			return nil, err
		}
		hops = append(hops, hop)
	}
	return hops, nil
}

// parseHop reads "[user@]host[:port]" or "ssh://[user@]host[:port]".
func parseHop(s string) (Hop, error) {
	orig := s
	s = strings.TrimPrefix(s, "ssh://")
	var h Hop
	if at := strings.LastIndex(s, "@"); at >= 0 {
		h.User, s = s[:at], s[at+1:]
	}
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.Index(s, "]")
		if end < 0 {
			return h, fmt.Errorf("bad jump host %q", orig)
		}
		h.Host, s = s[1:end], s[end+1:]
		if strings.HasPrefix(s, ":") {
			s = s[1:]
		} else if s != "" {
			return h, fmt.Errorf("bad jump host %q", orig)
		}
	case strings.Count(s, ":") == 1:
		h.Host, s, _ = strings.Cut(s, ":")
	default:
		h.Host, s = s, ""
	}
	if s != "" {
		p, err := strconv.Atoi(s)
		if err != nil || p < 1 || p > 65535 {
			return h, fmt.Errorf("bad port in jump host %q", orig)
		}
		h.Port = p
	}
	if h.Host == "" {
		return h, fmt.Errorf("empty jump host in %q", orig)
	}
	return h, nil
}

// proxyCommandJump understands the one ProxyCommand that is a jump:
// "ssh [options] -W %h:%p [user@]bastion".
func proxyCommandJump(cmd string) ([]Hop, error) {
	words, err := shlexSplit(cmd)
	if err != nil || len(words) == 0 || !strings.HasSuffix(words[0], "ssh") {
		return nil, fmt.Errorf("only ProxyJump or a ProxyCommand of the form 'ssh -W %%h:%%p user@bastion' is supported, got %q", cmd)
	}
	var hop Hop
	sawW := false
	for i := 1; i < len(words); i++ {
		w := words[i]
		switch {
		case w == "-W" && i+1 < len(words):
			sawW = true
			i++
		case w == "-p" && i+1 < len(words):
			p, err := strconv.Atoi(words[i+1])
			if err != nil {
				return nil, fmt.Errorf("bad port %q in ProxyCommand", words[i+1])
			}
			hop.Port = p
			i++
		case w == "-l" && i+1 < len(words):
			hop.User = words[i+1]
			i++
		case len(w) == 2 && w[0] == '-' && strings.ContainsRune("ioFEcbDeILmOQRSw", rune(w[1])) && i+1 < len(words):
			i++ // an option with an argument we do not need
		case strings.HasPrefix(w, "-"):
		default:
			h, err := parseHop(w)
			if err != nil {
				return nil, err
			}
			if h.User != "" {
				hop.User = h.User
			}
			hop.Host = h.Host
			if h.Port != 0 {
				hop.Port = h.Port
			}
		}
	}
	if !sawW || hop.Host == "" {
		return nil, fmt.Errorf("only a ProxyCommand of the form 'ssh -W %%h:%%p user@bastion' is supported, got %q", cmd)
	}
	return []Hop{hop}, nil
}

// SSHFor returns how to reach any inventory host, in the cluster or not.
func SSHFor(h *Host) (SSHConfig, error) { return sshConfig(h) }
