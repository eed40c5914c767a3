package inventory

import (
	"fmt"
	"strconv"
	"strings"
)

// sshArgs is what OpenSSH makes of the options of one command line, read
// as ssh.c's getopt loop and readconf.c's process_config_line do: each
// option keeps the FIRST value it is given ("the first obtained value will
// be used", ssh_config(5)); -i and IdentityFile add up, in order.
type sshArgs struct {
	user, hostname string
	port           int      // 0: not set
	identities     []string // -i and IdentityFile, in order
	route          route
	timeout        int    // ConnectTimeout; -1: not set
	alive          int    // ServerAliveInterval; -1: not set
	config         string // the last -F (ssh.c keeps the last); "" none
	configs        int    // how many -F were read
	configFrom     string // the variable that gave the last -F
}

func newSSHArgs() *sshArgs { return &sshArgs{timeout: -1, alive: -1} }

// configFile is the configuration file ssh reads after this command line:
// the last -F, else ~/.ssh/config (ssh.c).
func (a *sshArgs) configFile() string {
	if a.configs > 0 {
		return a.config
	}
	return userSSHConfig()
}

// sshFlags are OpenSSH 9's command-line options (ssh.c, getopt string
// "1246ab:c:e:fgi:kl:m:no:p:qstvxAB:CD:E:F:GI:J:KL:MNO:P:Q:R:S:TVw:W:XYy"):
// true for those taking an argument.
var sshFlags = map[byte]bool{
	'1': false, '2': false, '4': false, '6': false, 'A': false, 'C': false, 'G': false, 'K': false, 'M': false,
	'N': false, 'T': false, 'V': false, 'X': false, 'Y': false, 'a': false, 'f': false, 'g': false, 'k': false,
	'n': false, 'q': false, 's': false, 't': false, 'v': false, 'x': false, 'y': false,
	'B': true, 'D': true, 'E': true, 'F': true, 'I': true, 'J': true, 'L': true, 'O': true, 'P': true, 'Q': true,
	'R': true, 'S': true, 'W': true, 'b': true, 'c': true, 'e': true, 'i': true, 'l': true, 'm': true, 'o': true,
	'p': true, 'w': true,
}

// harmlessFlags change nothing of where, as whom and how safely metalk8s
// logs in, nor what its commands see: compression, verbosity, terminal and
// X11/agent forwarding requests, ssh's own log and control socket.
const harmlessFlags = "2ACKTXYaegknqtvxyES"

// parse reads ssh options. A word that is not an option ends them: the
// first is the destination (options may follow it, as ssh.c parses
// again), the next starts the remote command, returned with the rest.
// flag, when not nil, handles options the caller knows (ProxyCommand's -W).
func (a *sshArgs) parse(words []string, flag func(f byte, arg string) (bool, error)) (dest string, command []string, err error) {
	for i := 0; i < len(words); i++ {
		w := words[i]
		if w == "--" || !strings.HasPrefix(w, "-") || w == "-" {
			if w == "--" {
				i++
			}
			if dest != "" || i >= len(words) {
				return dest, words[i:], nil
			}
			dest = words[i]
			continue
		}
		for j := 1; j < len(w); j++ {
			f := w[j]
			takes, known := sshFlags[f]
			if !known {
				return dest, nil, fmt.Errorf("unknown ssh option -%c in %q", f, w)
			}
			if !takes {
				if !strings.ContainsRune(harmlessFlags, rune(f)) {
					return dest, nil, fmt.Errorf("ssh option -%c is not supported (%s)", f, flagRefusal(f))
				}
				continue
			}
			arg := w[j+1:]
			if arg == "" {
				if i+1 >= len(words) {
					return dest, nil, fmt.Errorf("ssh option -%c needs an argument", f)
				}
				i++
				arg = words[i]
			}
			if err := a.flag(f, arg, flag); err != nil {
				return dest, nil, err
			}
			break
		}
	}
	return dest, nil, nil
}

func flagRefusal(f byte) string {
	switch f {
	case 'D', 'L', 'R', 'W', 'w':
		return "metalk8s forwards no ports"
	case 'f', 'N', 's', 'G', 'V', 'M', 'O', 'Q':
		return "metalk8s runs commands, in the foreground"
	}
	return "it would change how Ansible connects in a way metalk8s does not follow"
}

// flag applies one option that takes an argument.
func (a *sshArgs) flag(f byte, arg string, custom func(byte, string) (bool, error)) error {
	if custom != nil {
		if done, err := custom(f, arg); done || err != nil {
			return err
		}
	}
	switch f {
	case 'p':
		return a.option("Port", arg)
	case 'l':
		return a.option("User", arg)
	case 'i':
		return a.option("IdentityFile", arg)
	case 'o':
		k, v := splitOption(arg)
		if err := a.option(k, v); err != nil {
			return fmt.Errorf("-o %s: %w", k, err) // the value is in err where it may be shown
		}
		return nil
	case 'F':
		a.config = arg
		a.configs++
		return nil
	case 'J':
		return a.route.jump(arg)
	case 'E', 'S', 'e':
		return nil // ssh's log file, control socket, escape character
	}
	return fmt.Errorf("ssh option -%c %s is not supported (%s)", f, arg, flagRefusal(f))
}

// harmlessOptions are the ssh_config keywords (lower case) metalk8s
// accepts and ignores, because they cannot change where, as whom or how
// safely it logs in: metalk8s keeps one connection a host for the whole
// run (Control*), always verifies host keys against its own known_hosts
// (never less strictly than StrictHostKeyChecking=yes, whatever they say),
// retries dropped connections itself, and offers only keys.
var harmlessOptions = map[string]bool{
	"controlmaster": true, "controlpersist": true, "controlpath": true, "compression": true,
	"stricthostkeychecking": true, "userknownhostsfile": true, "globalknownhostsfile": true,
	"hashknownhosts": true, "checkhostip": true, "updatehostkeys": true, "visualhostkey": true,
	"batchmode": true, "loglevel": true, "connectionattempts": true, "serveralivecountmax": true,
	"tcpkeepalive": true, "identitiesonly": true, "addkeystoagent": true, "forwardagent": true,
	"forwardx11": true, "forwardx11trusted": true, "passwordauthentication": true,
	"kbdinteractiveauthentication": true, "challengeresponseauthentication": true,
	"gssapiauthentication": true, "gssapidelegatecredentials": true, "preferredauthentications": true,
	"pubkeyauthentication": true, "requesttty": true, "sendenv": true, "escapechar": true,
	"exitonforwardfailure": true, "clearallforwardings": true,
}

// option applies one ssh_config keyword, from -o or from a -F file.
func (a *sshArgs) option(key, val string) error {
	lk := strings.ToLower(key)
	switch lk {
	case "port":
		p, err := strconv.Atoi(val)
		if err != nil || p < 1 || p > 65535 {
			return fmt.Errorf("bad port %q", val)
		}
		if a.port == 0 {
			a.port = p
		}
	case "user":
		if a.user == "" {
			a.user = val
		}
	case "hostname":
		if a.hostname == "" {
			a.hostname = val
		}
	case "identityfile":
		if strings.Contains(val, "%") {
			return fmt.Errorf("IdentityFile %q: %%-tokens are not supported by metalk8s", val)
		}
		if !strings.EqualFold(val, "none") {
			a.identities = append(a.identities, val)
		}
	case "proxyjump", "proxycommand":
		return a.route.proxy(lk, val)
	case "connecttimeout", "serveraliveinterval":
		n, err := strconv.Atoi(val)
		if strings.EqualFold(val, "none") && lk == "connecttimeout" {
			n, err = 0, nil
		}
		if err != nil || n < 0 {
			return fmt.Errorf("%s needs whole seconds, got %q", key, val)
		}
		if p := map[string]*int{"connecttimeout": &a.timeout, "serveraliveinterval": &a.alive}[lk]; *p < 0 {
			*p = n
		}
	default:
		if harmlessOptions[lk] {
			return nil
		}
		return fmt.Errorf("ssh option %s is not supported by metalk8s (it honours Port, User, HostName, IdentityFile, "+
			"ProxyJump, ProxyCommand, ConnectTimeout and ServerAliveInterval, and ignores only options that change nothing of where and how safely it logs in)", key)
	}
	return nil
}

// route is the way to a host that OpenSSH arguments set: the first
// ProxyJump or ProxyCommand given wins (OpenSSH readconf.c), and ssh
// refuses a -J after either of them (ssh.c).
type route struct {
	set     bool  // a ProxyJump, ProxyCommand or -J was given
	viaJump bool  // by ProxyJump or -J: ssh passes its -F to each hop
	hops    []Hop // nil for none
}

// jump is -J: ssh.c refuses it after a ProxyJump or ProxyCommand.
func (r *route) jump(spec string) error {
	if r.set {
		return fmt.Errorf("-J %s comes after another ProxyJump or ProxyCommand, which ssh refuses", spec)
	}
	return r.proxy("proxyjump", spec)
}

// proxy is -o ProxyJump or -o ProxyCommand: the first one wins.
func (r *route) proxy(key, val string) error {
	if r.set {
		return nil
	}
	r.set, r.viaJump = true, key == "proxyjump"
	if strings.EqualFold(val, "none") {
		return nil
	}
	var err error
	if key == "proxyjump" {
		r.hops, err = ParseJumps(val)
	} else {
		r.hops, err = proxyCommandJump(val)
	}
	return err
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

// proxyCommandJump understands the ProxyCommands that are a jump through
// one more ssh: "ssh [options] -W %h:%p [user@]bastion" and "ssh [options]
// [user@]bastion nc %h %p" (also ncat, netcat). The inner ssh's -l, -p,
// -i, -J and -o User/Port/IdentityFile apply to the bastion; -F is read
// for it as for any host.
func proxyCommandJump(cmd string) ([]Hop, error) {
	shown := cmd
	bad := func(why string) error {
		return fmt.Errorf("ProxyCommand %q: %s; metalk8s understands 'ssh -W %%h:%%p [user@]bastion' and 'ssh [user@]bastion nc %%h %%p'", shown, why)
	}
	words, err := shlexSplit(cmd)
	if err != nil {
		return nil, bad(err.Error())
	}
	if len(words) == 0 || (words[0] != "ssh" && !strings.HasSuffix(words[0], "/ssh")) {
		// Its arguments are not shown: another program's may hold a
		// password (sshpass -p).
		if shown = ""; len(words) > 0 {
			shown = words[0] + " ..."
		}
		return nil, bad("not an ssh command")
	}
	in := newSSHArgs()
	sawW := false
	dest, rest, err := in.parse(words[1:], func(f byte, arg string) (bool, error) {
		if f != 'W' {
			return false, nil
		}
		if arg != "%h:%p" && arg != "[%h]:%p" {
			return true, fmt.Errorf("-W %s does not go to the host itself (%%h:%%p)", arg)
		}
		sawW = true
		return true, nil
	})
	if err != nil {
		return nil, bad(err.Error())
	}
	netcat := len(rest) == 3 && (rest[0] == "nc" || rest[0] == "ncat" || rest[0] == "netcat") && rest[1] == "%h" && rest[2] == "%p"
	switch {
	case dest == "":
		return nil, bad("no bastion")
	case sawW && len(rest) > 0, !sawW && !netcat:
		return nil, bad("no -W %h:%p and no 'nc %h %p' after the bastion")
	}
	last, err := parseHop(dest)
	if err != nil {
		return nil, bad(err.Error())
	}
	return in.hops(last)
}

// hops returns the bastions before dest and dest itself as ssh with these
// options reaches it: -l and -p (or -o User, -o Port) before the user and
// port written in dest (ssh.c), -F's entries after both.
func (a *sshArgs) hops(dest Hop) ([]Hop, error) {
	if a.user != "" {
		dest.User = a.user
	}
	if a.port != 0 {
		dest.Port = a.port
	}
	if a.hostname != "" {
		dest.Host = a.hostname
	}
	dest.KeyFiles = a.identities
	r := a.route
	if cfg := a.configFile(); cfg != "" {
		d, own, err := resolveHop(cfg, dest)
		if err != nil {
			return nil, err
		}
		if !r.set {
			r = own // the command line's route comes first
		}
		dest = d
	}
	before, err := r.resolve(a.configFile(), 1)
	return append(append([]Hop{}, before...), dest), err
}
