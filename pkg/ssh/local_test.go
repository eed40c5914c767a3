package ssh

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metalk8s/metalk8s/pkg/inventory"
)

// A local host (ansible_connection=local) runs real commands on this
// machine, uploads real files and dials real ports, through the same
// Client as an SSH host, with no SSH at all (no key, no known host).
func TestLocalConnection(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("HOME", dir) // no keys: an SSH attempt would fail
	t.Setenv("SSH_AUTH_SOCK", "")
	pool, err := NewPool(Options{KnownHosts: filepath.Join(dir, "known_hosts"), CommandTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	c, err := pool.Client("single", inventory.SSHConfig{Connection: "local", Host: "localhost", Become: true, BecomeUser: "root"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	me, _ := user.Current()
	want := me.Username
	if _, err := exec.LookPath("sudo"); err == nil || me.Uid == "0" {
		want = "root" // under become
	}
	res, err := c.Run(ctx, "id -un; echo $$ >/dev/null; hostname")
	host, _ := os.Hostname()
	if err != nil || string(res.Stdout) != want+"\n"+host+"\n" {
		t.Fatalf("run: %q %v, want %s and %s", res.Stdout, err, want, host)
	}
	res, err = c.Run(ctx, "cat; echo err >&2; exit 3", WithStdin([]byte("in\n")))
	if code, ok := ExitCode(err); !ok || code != 3 || string(res.Stdout) != "in\n" || string(res.Stderr) != "err\n" {
		t.Errorf("exit 3: %q %q %v", res.Stdout, res.Stderr, err)
	}
	// A command that times out is killed with its children.
	mark := filepath.Join(dir, "late")
	start := time.Now()
	_, err = c.Run(ctx, "(sleep 2; touch "+Quote(mark)+") & sleep 30", WithTimeout(300*time.Millisecond))
	if !errors.Is(err, errCommandTimeout) || time.Since(start) > 10*time.Second {
		t.Errorf("timeout: %v after %v", err, time.Since(start))
	}
	time.Sleep(2500 * time.Millisecond)
	if _, err := os.Stat(mark); err == nil {
		t.Error("the timed-out command's child ran on")
	}
	// Uploads: content, mode, atomic replace, no change when equal.
	dst := filepath.Join(dir, "etc", "conf")
	for i, tc := range []struct {
		data    string
		changed bool
	}{{"one\n", true}, {"one\n", false}, {"two\n", true}} {
		changed, err := c.Upload(ctx, File{Path: dst, Data: []byte(tc.data), Mode: 0o640})
		got, _ := os.ReadFile(dst)
		st, _ := os.Stat(dst)
		if err != nil || changed != tc.changed || string(got) != tc.data || st.Mode().Perm() != 0o640 {
			t.Errorf("upload %d: changed %v %v, %q %v", i, changed, err, got, st.Mode())
		}
	}
	left, _ := filepath.Glob(filepath.Join(dir, "etc", ".metalk8s-*"))
	if len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
	// Dial: a port on this machine.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		if conn, err := l.Accept(); err == nil {
			conn.Write([]byte("hello"))
			conn.Close()
		}
	}()
	conn, err := c.DialContext(ctx, "tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := conn.Read(buf); err != nil || string(buf) != "hello" {
		t.Errorf("dial: %q %v", buf, err)
	}
	conn.Close()
	if !strings.Contains(c.Addr(), "localhost") {
		t.Errorf("addr %q", c.Addr())
	}
	// Become to another user goes through the real sudo.
	if _, err := exec.LookPath("sudo"); err != nil || me.Uid != "0" {
		t.Skip("become to another user: needs sudo, as root")
	}
	other, err := pool.Client("single", inventory.SSHConfig{Connection: "local", Become: true, BecomeUser: "nobody"})
	if err != nil {
		t.Fatal(err)
	}
	res, err = other.Run(ctx, "id -un")
	if err != nil || string(res.Stdout) != "nobody\n" {
		t.Errorf("become nobody: %q %v", res.Stdout, err)
	}
	res, err = other.Run(ctx, "id -un", AsLoginUser())
	if err != nil || string(res.Stdout) != me.Username+"\n" {
		t.Errorf("as the login user: %q %v", res.Stdout, err)
	}
}

// Every message that gives an address and a port writes an IPv6 address
// in brackets: the host's, and a bastion's.
func TestIPv6Messages(t *testing.T) {
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // now refused
	dir := t.TempDir()
	t.Setenv("HOME", dir)
	t.Setenv("SSH_AUTH_SOCK", "")
	os.WriteFile(filepath.Join(dir, "key"), nil, 0o600)
	pool, err := NewPool(Options{KnownHosts: filepath.Join(dir, "known_hosts"), AgentSocket: "none"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cfg  inventory.SSHConfig
		want string
	}{
		{inventory.SSHConfig{Host: "::1", Port: port}, "([::1]:" + strconv.Itoa(port) + ")"},
		{inventory.SSHConfig{Host: "fd00::2", Port: 22, Jumps: []inventory.Hop{{User: "j", Host: "::1", Port: port}}}, "([::1]:" + strconv.Itoa(port) + ")"},
	} {
		c, _ := pool.Client("six", tc.cfg)
		err := c.Connect(context.Background())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %s", tc.cfg, err, tc.want)
		}
		t.Log(err)
	}
}
