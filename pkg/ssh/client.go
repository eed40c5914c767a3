// Package ssh runs commands and copies files on inventory hosts over
// SSH, one reusable connection per host, with host keys always verified;
// a local host (ansible_connection=local) gets the same on this machine,
// without SSH (local.go).
package ssh

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/metalk8s/metalk8s/pkg/inventory"
)

// Options are shared by every connection of a run.
type Options struct {
	KnownHosts     string        // default ~/.ssh/known_hosts
	TrustNewHosts  bool          // record unknown hosts (OpenSSH's accept-new)
	ConnectTimeout time.Duration // overrides the inventory's ansible_ssh_timeout
	CommandTimeout time.Duration // default for Run; 0 means none
	KeepAlive      time.Duration
	AgentSocket    string         // default $SSH_AUTH_SOCK
	Passphrase     PassphraseFunc // asks for key passphrases; nil: fail instead
	Bastion        string         // [user@]host[:port], for hosts that name none
	BecomePassword string         // for hosts that become without their own password
	LocalUser      string         // default remote user
}

// Pool makes and keeps the connections of one run.
type Pool struct {
	opts  Options
	keys  *keyring
	hosts *hostKeys
}

// NewPool prepares connections with opts.
func NewPool(opts Options) (*Pool, error) {
	if opts.KnownHosts == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("find known_hosts: %w", err)
		}
		opts.KnownHosts = filepath.Join(home, ".ssh", "known_hosts")
	}
	if opts.KeepAlive == 0 {
		opts.KeepAlive = 5 * time.Second // a dead link is found within 4 of these (serverAliveCountMax)
	}
	if opts.AgentSocket == "" {
		opts.AgentSocket = os.Getenv("SSH_AUTH_SOCK")
	}
	if opts.LocalUser == "" {
		// ssh's default user: the local account's name (ssh.c, getpwuid).
		if u, err := user.Current(); err == nil {
			opts.LocalUser = u.Username
		} else if opts.LocalUser = os.Getenv("USER"); opts.LocalUser == "" {
			opts.LocalUser = "root"
		}
	}
	hk, err := newHostKeys(opts.KnownHosts, opts.TrustNewHosts)
	if err != nil {
		return nil, err
	}
	return &Pool{opts: opts, keys: newKeyring(opts.AgentSocket, opts.Passphrase), hosts: hk}, nil
}

// Client is the connection to one host. It reconnects when the
// connection dropped, and is safe for concurrent use.
type Client struct {
	Name string
	cfg  inventory.SSHConfig
	pool *Pool

	mu     sync.Mutex
	conn   *gossh.Client
	hops   []*gossh.Client
	dead   chan struct{} // closed when the keepalive finds the link gone
	sftpc  *sftpClient
	idle   [2][]*shell // by asRoot(become)
	shells [2]int      // open shells, idle or busy
}

// Client returns the (not yet connected) client for a host.
func (p *Pool) Client(name string, cfg inventory.SSHConfig) (*Client, error) {
	if cfg.User == "" {
		cfg.User = p.opts.LocalUser
	}
	if len(cfg.Jumps) == 0 && p.opts.Bastion != "" && !cfg.Local() {
		hops, err := inventory.ParseJumps(p.opts.Bastion)
		if err != nil {
			return nil, fmt.Errorf("--bastion: %w", err)
		}
		cfg.Jumps = hops
	}
	if cfg.Become && cfg.BecomePassword == "" {
		cfg.BecomePassword = p.opts.BecomePassword
	}
	return &Client{Name: name, cfg: cfg, pool: p}, nil
}

// Addr is host:port of the host itself ("localhost" for a local one).
func (c *Client) Addr() string {
	if c.cfg.Local() {
		return "localhost"
	}
	return net.JoinHostPort(c.cfg.Host, strconv.Itoa(c.cfg.Port))
}

// Connect opens the connection if it is not open or has dropped.
func (c *Client) Connect(ctx context.Context) error {
	if c.cfg.Local() {
		return nil // nothing to connect to
	}
	_, err := c.connection(ctx)
	return err
}

func (c *Client) connection(ctx context.Context) (*gossh.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		select {
		case <-c.dead:
			c.closeLocked()
		default:
			return c.conn, nil
		}
	}
	conn, hops, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	c.conn, c.hops, c.dead = conn, hops, make(chan struct{})
	go c.keepAlive(conn, c.dead, c.keepAliveEvery())
	return conn, nil
}

// dial connects through every bastion in turn, verifying each one's key.
func (c *Client) dial(ctx context.Context) (*gossh.Client, []*gossh.Client, error) {
	var keys []string
	if c.cfg.KeyFile != "" {
		keys = append([]string{c.cfg.KeyFile}, c.cfg.MoreKeys...)
	}
	auth, err := c.pool.keys.authMethod(keys, false)
	if err != nil {
		return nil, nil, &ConnectError{Host: c.Name, Addr: c.Addr(), Err: err}
	}
	var hops []*gossh.Client
	var through *gossh.Client
	fail := func(name, addr string, err error) (*gossh.Client, []*gossh.Client, error) {
		for i := len(hops) - 1; i >= 0; i-- {
			hops[i].Close()
		}
		return nil, nil, &ConnectError{Host: name, Addr: addr, Err: err, Via: c.Name}
	}
	for _, h := range c.cfg.Jumps {
		// ssh reaches a jump host with its own ssh: the local user unless
		// the jump names one (ssh.c, ProxyJump), the hop's keys if it
		// names some (-i in a ProxyCommand, IdentityFile in -F), else
		// ssh's default identities, which metalk8s offers after the host's.
		user, port := h.User, h.Port
		if user == "" {
			user = c.pool.opts.LocalUser
		}
		if port == 0 {
			port = 22
		}
		hopKeys, withDefaults := h.KeyFiles, false
		if len(hopKeys) == 0 {
			hopKeys, withDefaults = keys, true
		}
		hopAuth, err := c.pool.keys.authMethod(hopKeys, withDefaults)
		if err != nil {
			return fail("bastion "+h.String(), net.JoinHostPort(h.Host, strconv.Itoa(port)), err)
		}
		addr := net.JoinHostPort(h.Host, strconv.Itoa(port))
		name := "bastion " + h.String()
		conn, err := c.handshake(ctx, through, addr, name, user, hopAuth)
		if err != nil {
			return fail(name, addr, err)
		}
		hops = append(hops, conn)
		through = conn
	}
	conn, err := c.handshake(ctx, through, c.Addr(), c.Name, c.cfg.User, auth)
	if err != nil {
		return fail(c.Name, c.Addr(), err)
	}
	return conn, hops, nil
}

func (c *Client) handshake(ctx context.Context, through *gossh.Client, addr, name, user string, auth gossh.AuthMethod) (*gossh.Client, error) {
	// --connect-timeout, else the inventory's ansible_ssh_timeout, else 15s.
	timeout := c.pool.opts.ConnectTimeout
	if timeout == 0 && c.cfg.Timeout > 0 {
		timeout = time.Duration(c.cfg.Timeout) * time.Second
	}
	if timeout == 0 {
		timeout = 15 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var raw net.Conn
	var err error
	if through == nil {
		var d net.Dialer
		raw, err = d.DialContext(ctx, "tcp", addr)
	} else {
		raw, err = through.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	config := &gossh.ClientConfig{
		User:              user,
		Auth:              []gossh.AuthMethod{auth},
		HostKeyCallback:   c.pool.hosts.callback(name),
		HostKeyAlgorithms: c.pool.hosts.algorithms(addr),
		Timeout:           timeout,
	}
	// The handshake must not outlive the context.
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	sc, chans, reqs, err := gossh.NewClientConn(raw, addr, config)
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		raw.Close()
		return nil, err
	}
	return gossh.NewClient(sc, chans, reqs), nil
}

// keepAliveEvery is the host's ServerAliveInterval, else the pool's;
// 0 when the inventory turns keepalives off (ServerAliveInterval=0).
func (c *Client) keepAliveEvery() time.Duration {
	switch {
	case c.cfg.KeepAlive > 0:
		return time.Duration(c.cfg.KeepAlive) * time.Second
	case c.cfg.KeepAlive < 0:
		return 0
	}
	return c.pool.opts.KeepAlive
}

// serverAliveCountMax is OpenSSH's ServerAliveCountMax default: how many
// keepalives in a row may go unanswered before the link counts as dead. A
// host busy with a large upload can take more than one interval to answer.
const serverAliveCountMax = 3

// keepAlive pings the server every interval (never when it is 0), one
// ping at a time; when serverAliveCountMax intervals in a row pass without
// an answer, or a ping fails, the connection is closed and marked dead so
// the next command reconnects.
func (c *Client) keepAlive(conn *gossh.Client, dead chan struct{}, every time.Duration) {
	done := make(chan struct{})
	go func() { conn.Wait(); close(done) }()
	if every <= 0 {
		<-done
		close(dead)
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	replies := make(chan error, 1)
	pending, missed := false, 0
	for {
		select {
		case <-done:
			close(dead)
			return
		case err := <-replies:
			pending, missed = false, 0
			if err != nil {
				conn.Close()
			}
		case <-t.C:
			if pending {
				if missed++; missed >= serverAliveCountMax {
					conn.Close()
				}
				continue
			}
			pending = true
			go func() {
				_, _, err := conn.SendRequest("keepalive@openssh.com", true, nil)
				replies <- err
			}()
		}
	}
}

// Close closes the connection and its bastions.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeLocked()
	return nil
}

func (c *Client) closeLocked() {
	c.closeShellsLocked()
	if c.sftpc != nil {
		c.sftpc.close()
		c.sftpc = nil
	}
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
	for i := len(c.hops) - 1; i >= 0; i-- {
		c.hops[i].Close()
	}
	c.hops = nil
}

// ConnectError is a failure to reach or log in to a host.
type ConnectError struct {
	Host string
	Addr string
	Via  string // the host we were trying to reach, when Host is a bastion
	Err  error
}

func (e *ConnectError) Error() string {
	var hk *HostKeyError
	if errors.As(e.Err, &hk) {
		if e.Via != "" && e.Via != hk.Host {
			return fmt.Sprintf("host %s: through %s (%s): %s", e.Via, hk.Host, hk.Addr, hk.reason())
		}
		return hk.Error()
	}
	msg := fmt.Sprintf("host %s (%s): connect: %v", e.Host, e.Addr, e.Err)
	if e.Via != "" && e.Via != e.Host {
		msg = fmt.Sprintf("host %s: through %s (%s): %v", e.Via, e.Host, e.Addr, e.Err)
	}
	return msg
}

func (e *ConnectError) Unwrap() error { return e.Err }

// Transient reports whether an error may go away on a retry: a dropped
// or refused connection, a timeout. Refused keys and logins do not.
func Transient(err error) bool {
	var hk *HostKeyError
	if errors.As(err, &hk) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	return errors.Is(err, ErrConnectionLost) || errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, errCommandTimeout)
}

// DialContext opens a TCP connection from the host to addr, through the
// SSH connection (direct-tcpip): services listening on the host's loopback
// are reached without opening their ports to this machine.
func (c *Client) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if c.cfg.Local() {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	conn, err := c.connection(ctx)
	if err != nil {
		return nil, err
	}
	nc, err := conn.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("host %s: connect to %s through SSH: %w", c.Name, addr, err)
	}
	return nc, nil
}
