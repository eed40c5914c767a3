// Package kubetest starts a real etcd and kube-apiserver on 127.0.0.1 for
// tests of code that talks to the API (pkg/kube and its users). The
// binaries come from $KUBETEST_BIN, else the lab's artifacts build
// (<repo>/.cache/artifacts/<version>/bin), else $PATH; without them the
// test is skipped, or fails when $CI is set.
package kubetest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Endpoint is the control-plane endpoint name the kubeconfig's server uses;
// the serving certificate holds it, 127.0.0.1 and localhost.
const Endpoint = "control-plane.kubetest.local"

// Server is a running kube-apiserver (with its etcd) for one test.
type Server struct {
	Port       int           // the apiserver's port on 127.0.0.1
	Kubeconfig []byte        // admin, server https://Endpoint:6443, client certificate
	Started    time.Duration // from launching etcd to /readyz answering ok
	// EtcdURL is etcd's client URL (plain HTTP on 127.0.0.1; its /metrics
	// too).
	EtcdURL string
	caPEM   []byte
	pki     *pki
}

// Start runs etcd and kube-apiserver until the test ends: etcd without
// fsync in a temporary directory, the apiserver with a throwaway PKI,
// RBAC authorization (as kubeadm's, without the Node authorizer) and the
// admin in system:masters.
func Start(t testing.TB) *Server {
	t.Helper()
	apiserver, etcd := binaries(t)
	dir := t.TempDir()
	start := time.Now()
	p, err := makePKI(dir, Endpoint)
	if err != nil {
		t.Fatalf("kubetest PKI: %v", err)
	}
	clientPort, peerPort, port := FreePort(t), FreePort(t), FreePort(t)
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", clientPort)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	run(t, dir, "etcd", etcd, "--name=kubetest", "--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=kubetest="+peerURL, "--unsafe-no-fsync", "--log-level=warn")
	run(t, dir, "kube-apiserver", apiserver,
		"--etcd-servers="+etcdURL, "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(port),
		"--tls-cert-file="+p.path("apiserver.crt"), "--tls-private-key-file="+p.path("apiserver.key"),
		"--client-ca-file="+p.path("ca.crt"), "--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+p.path("sa.pub"), "--service-account-signing-key-file="+p.path("sa.key"),
		"--service-cluster-ip-range=10.96.0.0/16", "--enable-priority-and-fairness=false",
		"--profiling=false", "--endpoint-reconciler-type=none",
		"--allow-privileged=true") // as kubeadm starts it
	s := &Server{Port: port, Kubeconfig: kubeconfig(p), EtcdURL: etcdURL, caPEM: p.caPEM, pki: p}
	if err := s.waitReady(p, 90*time.Second); err != nil {
		t.Fatalf("kubetest: kube-apiserver: %v (logs in %s)\n%s", err, dir, tail(filepath.Join(dir, "kube-apiserver.log")))
	}
	s.Started = time.Since(start)
	return s
}

// Dialer stands in for a host's SSH connection: whatever address it is
// asked for, it connects to the test apiserver (an SSH host would reach
// its own 127.0.0.1:6443).
func (s *Server) Dialer() *Redirect { return &Redirect{To: fmt.Sprintf("127.0.0.1:%d", s.Port)} }

// Redirect dials To whatever the address; To "" refuses, like a host
// whose apiserver is down.
type Redirect struct{ To string }

// DialContext connects to r.To.
func (r *Redirect) DialContext(ctx context.Context, network, _ string) (net.Conn, error) {
	if r.To == "" {
		return nil, fmt.Errorf("kubetest: connection refused")
	}
	var d net.Dialer
	return d.DialContext(ctx, network, r.To)
}

func (s *Server) waitReady(p *pki, within time.Duration) error {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.caPEM)
	cert, err := tls.X509KeyPair(p.adminCert, p.adminKey)
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}}
	url := fmt.Sprintf("https://127.0.0.1:%d/readyz", s.Port)
	deadline := time.Now().Add(within)
	last := "no answer"
	for time.Now().Before(deadline) {
		resp, err := hc.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("/readyz not ok within %s: %s", within, last)
}

// kubeconfig is the admin's, naming the server https://Endpoint:6443.
func kubeconfig(p *pki) []byte {
	return fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters:
- name: kubetest
  cluster:
    server: https://%s:6443
    certificate-authority-data: %s
users:
- name: admin
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: admin@kubetest
  context: {cluster: kubetest, user: admin}
current-context: admin@kubetest
`, Endpoint, b64(p.caPEM), b64(p.adminCert), b64(p.adminKey))
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// run starts a process logging to dir/<name>.log, stopped at the test's end.
func run(t testing.TB, dir, name, bin string, args ...string) {
	t.Helper()
	log, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("kubetest: starting %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		log.Close()
	})
}

// binaries finds kube-apiserver and etcd, or skips (fails under $CI).
func binaries(t testing.TB) (apiserver, etcd string) {
	t.Helper()
	return Binary(t, "kube-apiserver", "k8s"), Binary(t, "etcd", "etcd")
}

// Binary returns the path of an executable named name from
// $KUBETEST_BIN, else the lab's artifacts build (the newest version's
// bin/), else $PATH. Without it the test is skipped, or fails when $CI is
// set; the message names step, the build.sh step that builds it.
func Binary(t testing.TB, name, step string) string {
	t.Helper()
	var dirs []string
	if d := os.Getenv("KUBETEST_BIN"); d != "" {
		dirs = append(dirs, d)
	}
	if root := repoRoot(); root != "" {
		found, _ := filepath.Glob(filepath.Join(root, ".cache", "artifacts", "*", "bin"))
		sort.Sort(sort.Reverse(sort.StringSlice(found))) // the newest version first
		dirs = append(dirs, found...)
	}
	for _, d := range dirs {
		if p := filepath.Join(d, name); executable(p) {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	msg := fmt.Sprintf("kubetest: %s not found in $KUBETEST_BIN, %v or $PATH (test/lab/artifacts/build.sh %s builds it)", name, dirs, step)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func executable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// repoRoot is the nearest directory above the working directory with a go.mod.
func repoRoot() string {
	d, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		up := filepath.Dir(d)
		if up == d {
			return ""
		}
		d = up
	}
}

// AdminFiles are the paths of the CA certificate, the admin's client
// certificate and its key (PEM; the key 0600), for a program that takes
// files and an address (https://127.0.0.1:Port) rather than a
// kubeconfig.
func (s *Server) AdminFiles() (ca, cert, key string) {
	return s.pki.path("ca.crt"), s.pki.path("admin.crt"), s.pki.path("admin.key")
}

// TokenKubeconfigFile writes a kubeconfig that authenticates with a
// bearer token (a service account's, from a TokenRequest) to
// https://127.0.0.1:Port (in the serving certificate), for a process
// without the test's dialer, into a file of the test's (0600) and
// returns its path.
func (s *Server) TokenKubeconfigFile(t testing.TB, token string) string {
	t.Helper()
	b := fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters:
- name: kubetest
  cluster:
    server: https://127.0.0.1:%d
    certificate-authority-data: %s
users:
- name: token
  user: {token: %q}
contexts:
- name: token@kubetest
  context: {cluster: kubetest, user: token}
current-context: token@kubetest
`, s.Port, b64(s.caPEM), token)
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// FreePort is a TCP port free on 127.0.0.1 a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}
