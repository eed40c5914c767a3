package inventory

import (
	"fmt"
	"strconv"
	"strings"
)

// SSHFor returns how to reach any inventory host, in the cluster or not:
// its connection variables (connVars) and the ssh options they carry, in
// the order of ansible/plugins/connection/ssh.py's _build_command, each
// option resolved as OpenSSH does (ssh.c, readconf.c: the first value
// wins), or ansible_connection=local (plugins/connection/local.py).
func SSHFor(h *Host) (SSHConfig, error) { return sshConfig(h) }

func sshConfig(h *Host) (SSHConfig, error) {
	c := SSHConfig{Connection: "ssh", Host: h.Name, Port: 22, BecomeUser: "root"}
	if err := becomeVars(h, &c); err != nil {
		return c, err
	}
	if s, err := connText(h, "host", false); err != nil {
		return c, err
	} else if s != "" {
		c.Host = s
	}
	conn, err := connection(h)
	if err != nil || conn == "local" {
		// The local plugin (ansible/plugins/connection/local.py) reads
		// no address, port, user, key or ssh option; Host stays the
		// node's address when it has no ip.
		c.Connection, c.Port = conn, 0
		return c, err
	}
	a, err := commandLine(h)
	if err != nil {
		return c, err
	}
	alias := c.Host // what ssh is given, and -F's Host patterns see
	cfg := a.configFile()
	fileErr := func(err error) error {
		if a.configs == 0 {
			return &Error{Msg: fmt.Sprintf("host %s: %v (ssh reads this file when no -F is given, and so does metalk8s)", h.Name, err)}
		}
		return varError(h, a.configFrom, "-F %v", err)
	}
	if err := applySSHFile(cfg, alias, a); err != nil {
		return c, fileErr(err)
	}
	// ssh.c passes its -F on to the ssh that reaches each jump host.
	if a.route.hops, err = a.route.resolve(cfg, 0); err != nil {
		return c, fileErr(err)
	}
	if a.hostname != "" {
		c.Host = a.hostname
	}
	if a.port != 0 {
		c.Port = a.port
	}
	c.User = a.user
	if len(a.identities) > 0 {
		c.KeyFile, c.MoreKeys = a.identities[0], a.identities[1:]
	}
	c.Timeout = max(a.timeout, 0)
	switch {
	case a.alive == 0:
		c.KeepAlive = -1
	case a.alive > 0:
		c.KeepAlive = a.alive
	}
	c.Jumps = a.route.hops
	return c, nil
}

// commandLine reads the options of the ssh command line Ansible's ssh
// plugin builds (ansible/plugins/connection/ssh.py, _build_command), in
// its order, each keeping the first value (OpenSSH): ssh_args; then
// Ansible's own -o Port=, -o IdentityFile=, -o User= when set and -o
// ConnectTimeout= always (its default is 10 s); then ssh_common_args
// (kubespray's bastion rule when the inventory sets none) and
// ssh_extra_args.
func commandLine(h *Host) (*sshArgs, error) {
	a := newSSHArgs()
	if err := argsVar(h, a, "ssh_args", ""); err != nil {
		return nil, err
	}
	if k, _, ok := ConnVar(h, "port"); ok {
		p, _, err := optInt(h, k)
		if err != nil {
			return nil, err
		}
		if p < 1 || p > 65535 {
			return nil, varError(h, k, "port %d is out of range 1-65535", p)
		}
		if a.port == 0 {
			a.port = p
		}
	}
	key, err := connText(h, "private_key_file", false)
	if err != nil {
		return nil, err
	}
	if key != "" {
		a.identities = append(a.identities, key)
	}
	user, err := connText(h, "remote_user", false)
	if err != nil {
		return nil, err
	}
	if a.user == "" {
		a.user = user
	}
	if a.timeout < 0 {
		a.timeout = 0 // the inventory's, or metalk8s's default
		if k, _, ok := ConnVar(h, "timeout"); ok {
			if a.timeout, _, err = optInt(h, k); err != nil {
				return nil, err
			}
		}
	}
	common, err := kubesprayBastion(h)
	if err != nil {
		return nil, err
	}
	if err := argsVar(h, a, "ssh_common_args", common); err != nil {
		return nil, err
	}
	return a, argsVar(h, a, "ssh_extra_args", "")
}

// argsVar reads the ssh options of one variable (fallback when the
// inventory does not set it), naming host, variable and option on error.
func argsVar(h *Host, a *sshArgs, option, fallback string) error {
	key, _, _ := ConnVar(h, option)
	args, err := connText(h, option, false)
	if err != nil {
		return err
	}
	if key == "" {
		if fallback == "" {
			return nil
		}
		args, key = fallback, "ansible_ssh_common_args (kubespray's default, from its bastion host)"
	}
	words, err := shlexSplit(args)
	if err != nil {
		return varError(h, key, "cannot split %q: %v", args, err)
	}
	before := a.configs
	dest, rest, err := a.parse(words, nil)
	if err == nil && dest != "" {
		err = fmt.Errorf("%q is not an ssh option (ssh would take it for the host to reach)", strings.Join(append([]string{dest}, rest...), " "))
	}
	if err != nil {
		return varError(h, key, "%v", err)
	}
	if a.configs != before {
		a.configFrom = key
	}
	return nil
}

// connection is ansible_connection: "ssh" (also smart and paramiko, which
// reach the host over SSH too) or "local". Other plugins are refused.
func connection(h *Host) (string, error) {
	v, err := connText(h, "connection", false)
	if err != nil || v == "" {
		return "ssh", err
	}
	name := strings.TrimPrefix(strings.TrimPrefix(v, "ansible.builtin."), "ansible.legacy.")
	switch name {
	case "ssh", "smart", "paramiko", "paramiko_ssh":
		return "ssh", nil
	case "local":
		return "local", nil
	}
	k, _, _ := ConnVar(h, "connection")
	return "ssh", varError(h, k, "connection %q is not supported: metalk8s connects with ssh (also smart, paramiko) or local", v)
}

// becomeVars reads ansible_become and sudo's user and password.
func becomeVars(h *Host, c *SSHConfig) error {
	var err error
	if k, _, ok := ConnVar(h, "become"); ok {
		if c.Become, err = optBool(h, k); err != nil {
			return err
		}
	}
	if u, err := connText(h, "become_user", false); err != nil {
		return err
	} else if u != "" {
		c.BecomeUser = u
	}
	c.BecomePassword, err = connText(h, "become_pass", true)
	return err
}

// BastionHost is the host kubespray reaches every other host through.
const BastionHost = "bastion"

// kubesprayBastion is kubespray's default ansible_ssh_common_args
// (roles/kubespray_defaults/defaults/main/main.yml): when the inventory has
// a host named bastion, every host whose inventory sets no
// ansible_ssh_common_args (a role default yields to any inventory value)
// gets
//
//	-o ProxyCommand='ssh -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no
//	  -W %h:%p -p PORT USER@HOST [-i KEY]'
//
// with the bastion's ansible_port (22), ansible_user and ansible_host, and
// the host's own ansible_ssh_private_key_file. The bastion itself is not
// reached through itself here (kubespray runs no play on it).
func kubesprayBastion(h *Host) (string, error) {
	if h.inv == nil || h.Name == BastionHost {
		return "", nil
	}
	b, ok := h.inv.Hosts[BastionHost]
	if !ok {
		return "", nil
	}
	if _, set := h.Vars["ansible_ssh_common_args"]; set {
		return "", nil
	}
	var addr, user, port string
	for _, v := range []struct {
		key string
		to  *string
	}{{"ansible_host", &addr}, {"ansible_user", &user}, {"ansible_port", &port}} {
		x, set := b.Vars[v.key]
		switch x := x.(type) {
		case string:
			*v.to = x
		case Unsafe:
			*v.to = string(x)
		case int64:
			if v.key == "ansible_port" {
				*v.to = strconv.FormatInt(x, 10)
				continue
			}
			return "", varError(b, v.key, "must be text")
		default:
			if set && x != nil {
				return "", varError(b, v.key, "must be text")
			}
		}
	}
	if addr == "" || user == "" {
		return "", &Error{File: h.inv.Path, Line: b.Line, Msg: fmt.Sprintf("host %s: kubespray reaches it through host bastion, "+
			"which needs ansible_host and ansible_user (roles/kubespray_defaults)", h.Name)}
	}
	if port == "" {
		port = "22"
	}
	proxy := fmt.Sprintf("ssh -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no -W %%h:%%p -p %s %s@%s ", port, user, addr)
	if k, isText := h.Vars["ansible_ssh_private_key_file"].(string); isText {
		proxy += "-i " + k + " "
	}
	return " -o ProxyCommand='" + proxy + "' ", nil
}
