package inventory

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// SSHConfig is how to reach a host, from Ansible's connection variables
// and the ssh options they carry, resolved as OpenSSH does with the
// command line Ansible's ssh connection plugin builds.
type SSHConfig struct {
	Connection     string   // "ssh", or "local": commands run on this machine (ansible_connection)
	Host           string   // HostName, else ansible_host, else the inventory name
	Port           int      // -o Port / -p, else ansible_port, else 22
	User           string   // -o User / -l, else ansible_user; empty means the local user
	KeyFile        string   // the first identity file (ansible_ssh_private_key_file, -i, IdentityFile)
	MoreKeys       []string // the others, in the order ssh offers them
	Become         bool     // ansible_become
	BecomeUser     string   // ansible_become_user, else root
	BecomePassword string   `json:"-"` // ansible_become_password: a secret, never printed
	Jumps          []Hop    // bastions, first hop first (ProxyJump, ProxyCommand, kubespray's bastion)
	Timeout        int      // connect timeout in seconds (ansible_ssh_timeout); 0: the default
	KeepAlive      int      // ServerAliveInterval in seconds; 0: metalk8s's default; -1: none
}

// Local reports whether commands run on this machine, without SSH.
func (c SSHConfig) Local() bool { return c.Connection == "local" }

// Route is where metalk8s logs in: user@address:port (an IPv6 address in
// brackets) and the bastions it goes through, or "local".
func (c SSHConfig) Route() string {
	if c.Local() {
		return "local (ansible_connection=local: no SSH)"
	}
	s := Hop{User: c.User, Host: c.Host, Port: c.Port}.Addr()
	for _, j := range c.Jumps {
		s += " via " + j.Addr()
	}
	return s
}

// Hop is one bastion on the way to a host.
type Hop struct {
	User     string
	Host     string
	Port     int
	KeyFiles []string `json:",omitempty"` // keys for this hop (-i in a ProxyCommand); none: the host's
}

// Addr is [user@]address:port, the port always written (22 when unset),
// an IPv6 address in brackets.
func (h Hop) Addr() string {
	p := h.Port
	if p == 0 {
		p = 22
	}
	s := net.JoinHostPort(h.Host, strconv.Itoa(p))
	if h.User != "" {
		s = h.User + "@" + s
	}
	return s
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
// private_key_file, timeout, ssh_args, ssh_common_args, ssh_extra_args) and
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
	"ssh_args":        {"ansible_ssh_args"},
	"ssh_common_args": {"ansible_ssh_common_args"},
	"ssh_extra_args":  {"ansible_ssh_extra_args"},
	"connection":      {"ansible_connection"}, // constants.py MAGIC_VARIABLE_MAPPING
	"become":          {"ansible_become"},     // likewise
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

// ParseJumps reads a ProxyJump list, "[user@]host[:port],..." or
// ssh:// URIs, first hop first (OpenSSH readconf.c parse_jump).
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
