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

func sshConfig(h *Host) (SSHConfig, error) {
	c := SSHConfig{Host: h.Name, Port: 22, BecomeUser: "root"}
	var err error
	if s, err := optString(h, "ansible_host", "ansible_ssh_host"); err != nil {
		return c, err
	} else if s != "" {
		c.Host = s
	}
	if p, ok, err := optInt(h, "ansible_port", "ansible_ssh_port"); err != nil {
		return c, err
	} else if ok {
		if p < 1 || p > 65535 {
			k, _, _ := lookup(h, "ansible_port", "ansible_ssh_port")
			return c, varError(h, k, "port %d is out of range 1-65535", p)
		}
		c.Port = p
	}
	if t, ok, err := optInt(h, "ansible_ssh_timeout", "ansible_timeout"); err != nil {
		return c, err
	} else if ok {
		c.Timeout = t
	}
	if c.User, err = optString(h, "ansible_user", "ansible_ssh_user", "ansible_remote_user"); err != nil {
		return c, err
	}
	if c.KeyFile, err = optString(h, "ansible_ssh_private_key_file", "ansible_private_key_file"); err != nil {
		return c, err
	}
	if c.Become, err = optBool(h, "ansible_become"); err != nil {
		return c, err
	}
	if u, err := optString(h, "ansible_become_user"); err != nil {
		return c, err
	} else if u != "" {
		c.BecomeUser = u
	}
	if k, v, ok := lookup(h, "ansible_become_password", "ansible_become_pass", "ansible_sudo_pass"); ok && v != nil {
		s, ok := v.(string)
		if !ok {
			s = fmt.Sprint(v) // a numeric password is still a password
		}
		if strings.Contains(s, "{{") {
			return c, varError(h, k, "Jinja templates are not supported")
		}
		c.BecomePassword = s
	}
	args, err := optString(h, "ansible_ssh_common_args", "ansible_ssh_extra_args")
	if err != nil {
		return c, err
	}
	if args != "" {
		k, _, _ := lookup(h, "ansible_ssh_common_args", "ansible_ssh_extra_args")
		if c.Jumps, err = jumpsFromArgs(args); err != nil {
			return c, varError(h, k, "%v", err)
		}
	}
	return c, nil
}

// jumpsFromArgs finds the bastions in OpenSSH arguments: "-J a,b",
// "-o ProxyJump=a", or a "-o ProxyCommand='ssh -W %h:%p [-p N] user@bastion'".
func jumpsFromArgs(args string) ([]Hop, error) {
	words, err := shlexSplit(args)
	if err != nil {
		return nil, fmt.Errorf("cannot split %q: %v", args, err)
	}
	for i := 0; i < len(words); i++ {
		w := words[i]
		var opt string
		switch {
		case w == "-J" && i+1 < len(words):
			return ParseJumps(words[i+1])
		case strings.HasPrefix(w, "-J"):
			return ParseJumps(w[2:])
		case w == "-o" && i+1 < len(words):
			opt = words[i+1]
			i++
		case strings.HasPrefix(w, "-o"):
			opt = w[2:]
		default:
			continue
		}
		key, val := splitOption(opt)
		switch strings.ToLower(key) {
		case "proxyjump":
			if strings.EqualFold(val, "none") {
				return nil, nil
			}
			return ParseJumps(val)
		case "proxycommand":
			return proxyCommandJump(val)
		}
	}
	return nil, nil
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
