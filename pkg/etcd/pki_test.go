package etcd

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/metalk8s/metalk8s/internal/testpeer"
	"github.com/metalk8s/metalk8s/pkg/pki"
)

var testMembers = []Member{
	{Name: "node1", SANs: []string{"node1", "node1.example", "10.0.0.1"}},
	{Name: "node2", SANs: []string{"node2", "10.0.0.2"}},
}

var allLeaves = []string{"node1/server", "node1/peer", "node2/server", "node2/peer", "healthcheck-client", "apiserver-etcd-client"}

const oneDay = 24 * time.Hour

// newPKI returns a PKI in a directory that does not exist yet, with a fixed clock.
func newPKI(t *testing.T, now time.Time) *PKI {
	return &PKI{Dir: filepath.Join(t.TempDir(), "artifacts", "pki", "etcd"), Now: func() time.Time { return now }}
}

func ensure(t *testing.T, p *PKI, members []Member) []string {
	t.Helper()
	lines, err := p.Ensure(members)
	if err != nil {
		t.Fatal(err)
	}
	return lines
}

func mustCert(t *testing.T, file string) *x509.Certificate {
	t.Helper()
	c, err := readCert(file)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return c
}

// snapshot is every file under dir with its bytes and mtime.
type fileState struct {
	data  string
	mtime time.Time
}

func snapshot(t *testing.T, dir string) map[string]fileState {
	t.Helper()
	out := map[string]fileState{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		out[filepath.ToSlash(rel)] = fileState{string(data), info.ModTime()}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestEnsureCreatesOnceThenNothing(t *testing.T) {
	p := newPKI(t, time.Now())
	got := ensure(t, p, testMembers)
	want := []string{"+ create ca.crt"}
	for _, l := range allLeaves {
		want = append(want, "+ create "+l+".crt")
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("first Ensure:\n got %q\nwant %q", got, want)
	}

	var files []string
	err := filepath.WalkDir(p.Dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, _ := d.Info()
		wantMode := fs.FileMode(0o600)
		if d.IsDir() {
			wantMode = 0o700
		} else {
			rel, _ := filepath.Rel(p.Dir, path)
			files = append(files, filepath.ToSlash(rel))
		}
		if info.Mode().Perm() != wantMode {
			t.Errorf("%s: mode %o, want %o", path, info.Mode().Perm(), wantMode)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantFiles := []string{"ca.crt", "ca.key"}
	for _, l := range allLeaves {
		wantFiles = append(wantFiles, l+".crt", l+".key")
	}
	sort.Strings(wantFiles)
	if !reflect.DeepEqual(files, wantFiles) {
		t.Fatalf("files:\n got %q\nwant %q", files, wantFiles)
	}

	// Back-date every file: a rewrite would show as a new mtime.
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, f := range files {
		if err := os.Chtimes(filepath.Join(p.Dir, f), old, old); err != nil {
			t.Fatal(err)
		}
	}
	before := snapshot(t, p.Dir)
	if lines, err := p.Plan(testMembers); err != nil || len(lines) != 0 {
		t.Fatalf("Plan after Ensure: %q, %v", lines, err)
	}
	if lines := ensure(t, p, testMembers); len(lines) != 0 {
		t.Fatalf("second Ensure: %q", lines)
	}
	after := snapshot(t, p.Dir)
	if !reflect.DeepEqual(before, after) {
		t.Fatal("second Ensure changed files")
	}
	for f, s := range after {
		if !s.mtime.Equal(old) {
			t.Errorf("%s rewritten (mtime %s)", f, s.mtime)
		}
	}
}

func TestCertContents(t *testing.T) {
	now := time.Now()
	p := newPKI(t, now)
	ensure(t, p, testMembers)
	ca := mustCert(t, p.path("ca.crt"))
	if !ca.IsCA || ca.Subject.CommonName != "etcd-ca" || ca.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign|x509.KeyUsageDigitalSignature {
		t.Errorf("CA: IsCA=%v CN=%q usage=%v", ca.IsCA, ca.Subject.CommonName, ca.KeyUsage)
	}
	if ca.NotAfter.Sub(now.AddDate(10, 0, 0)).Abs() > time.Minute || (now.Sub(ca.NotBefore)-5*time.Minute).Abs() > 2*time.Second {
		t.Errorf("CA validity %s .. %s", ca.NotBefore, ca.NotAfter)
	}
	serials := map[string]bool{ca.SerialNumber.String(): true}
	for _, l := range allLeaves {
		c := mustCert(t, p.path(l+".crt"))
		if c.SerialNumber.BitLen() < 100 || serials[c.SerialNumber.String()] {
			t.Errorf("%s: serial %s", l, c.SerialNumber)
		}
		serials[c.SerialNumber.String()] = true
		if c.NotAfter.Sub(now.AddDate(1, 0, 0)).Abs() > time.Minute {
			t.Errorf("%s: NotAfter %s", l, c.NotAfter)
		}
		if c.IsCA {
			t.Errorf("%s is a CA", l)
		}
	}
	hc := mustCert(t, p.path("healthcheck-client.crt"))
	if hc.Subject.CommonName != "kube-etcd-healthcheck-client" || !reflect.DeepEqual(hc.Subject.Organization, []string{"system:masters"}) ||
		!reflect.DeepEqual(hc.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) {
		t.Errorf("healthcheck-client: %s %v", hc.Subject, hc.ExtKeyUsage)
	}
	ac := mustCert(t, p.path("apiserver-etcd-client.crt"))
	if ac.Subject.CommonName != "kube-apiserver-etcd-client" || len(ac.DNSNames)+len(ac.IPAddresses) != 0 {
		t.Errorf("apiserver-etcd-client: %s %v %v", ac.Subject, ac.DNSNames, ac.IPAddresses)
	}
	peer := mustCert(t, p.path("node2/peer.crt"))
	if peer.Subject.CommonName != "node2" || len(peer.ExtKeyUsage) != 2 {
		t.Errorf("node2 peer: %s %v", peer.Subject, peer.ExtKeyUsage)
	}
	if got, want := certSANs(peer), []string{"10.0.0.2", "127.0.0.1", "::1", "localhost", "node2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("node2 peer SANs %q, want %q", got, want)
	}
}

func openssl(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("openssl", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestOpenSSLAcceptsThem(t *testing.T) {
	testpeer.Binary(t, "openssl", "openssl")
	now := time.Now()
	p := newPKI(t, now)
	ensure(t, p, testMembers)
	for _, l := range allLeaves {
		purpose := "sslserver"
		if strings.HasSuffix(l, "client") {
			purpose = "sslclient"
		}
		out := openssl(t, p.Dir, "verify", "-purpose", purpose, "-CAfile", "ca.crt", l+".crt")
		if strings.TrimSpace(out) != l+".crt: OK" {
			t.Errorf("verify %s: %q", l, out)
		}
		openssl(t, p.Dir, "pkey", "-in", l+".key", "-noout")
		out = openssl(t, p.Dir, "x509", "-noout", "-enddate", "-in", l+".crt")
		end, err := time.Parse("Jan _2 15:04:05 2006 MST", strings.TrimPrefix(strings.TrimSpace(out), "notAfter="))
		if err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		if d := end.Sub(now); d < 364*oneDay || d > 366*oneDay {
			t.Errorf("%s: notAfter %s is %s away", l, end, d)
		}
	}
	openssl(t, p.Dir, "pkey", "-in", "ca.key", "-noout")
	out := openssl(t, p.Dir, "x509", "-noout", "-ext", "basicConstraints,keyUsage", "-in", "ca.crt")
	for _, want := range []string{"CA:TRUE", "Certificate Sign", "CRL Sign", "Digital Signature"} {
		if !strings.Contains(out, want) {
			t.Errorf("ca.crt lacks %q:\n%s", want, out)
		}
	}
	out = openssl(t, p.Dir, "x509", "-noout", "-ext", "subjectAltName", "-in", "node1/server.crt")
	for _, want := range []string{"DNS:node1", "DNS:node1.example", "DNS:localhost", "IP Address:10.0.0.1", "IP Address:127.0.0.1", "IP Address:0:0:0:0:0:0:0:1"} {
		if !strings.Contains(out, want+",") && !strings.Contains(out, want+"\n") {
			t.Errorf("node1/server.crt SANs lack %q:\n%s", want, out)
		}
	}
	out = openssl(t, p.Dir, "x509", "-noout", "-subject", "-in", "healthcheck-client.crt")
	if !strings.Contains(out, "O = system:masters") || !strings.Contains(out, "CN = kube-etcd-healthcheck-client") {
		t.Errorf("healthcheck-client subject: %s", out)
	}
}

// serve accepts one connection with node1's server cert, requiring a client
// cert from the CA, and reports the handshake's outcome.
func serve(t *testing.T, p *PKI) (string, <-chan error) {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(p.path("node1/server.crt"), p.path("node1/server.key"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(mustCert(t, p.path("ca.crt")))
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		tc := c.(*tls.Conn)
		if err := tc.Handshake(); err != nil {
			done <- err
			return
		}
		cn := tc.ConnectionState().PeerCertificates[0].Subject.CommonName
		_, err = fmt.Fprintf(c, "hello %s\n", cn)
		done <- err
	}()
	return ln.Addr().String(), done
}

func dial(addr string, conf *tls.Config) (string, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, conf)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return bufio.NewReader(c).ReadString('\n')
}

func TestTLSHandshake(t *testing.T) {
	p := newPKI(t, time.Now())
	ensure(t, p, testMembers)

	for _, name := range []string{"node1", ""} { // "" : verified against 127.0.0.1
		conf, err := p.ClientTLS()
		if err != nil {
			t.Fatal(err)
		}
		conf.ServerName = name
		addr, done := serve(t, p)
		got, err := dial(addr, conf)
		if err != nil || got != "hello kube-etcd-healthcheck-client\n" {
			t.Fatalf("ServerName %q: %q, %v", name, got, err)
		}
		if err := <-done; err != nil {
			t.Fatalf("server: %v", err)
		}
	}

	// node2's name is not in node1's cert.
	conf, _ := p.ClientTLS()
	conf.ServerName = "node2"
	addr, _ := serve(t, p)
	if _, err := dial(addr, conf); err == nil {
		t.Fatal("node1's cert accepted as node2")
	}

	// A client cert from another CA is refused by the server.
	other := newPKI(t, time.Now())
	ensure(t, other, testMembers)
	conf, err := other.ClientTLS()
	if err != nil {
		t.Fatal(err)
	}
	good, _ := p.ClientTLS()
	conf.RootCAs = good.RootCAs // trust the server, present the foreign cert
	conf.ServerName = "node1"
	addr, done := serve(t, p)
	if got, err := dial(addr, conf); err == nil {
		t.Fatalf("foreign client cert accepted: %q", got)
	}
	if err := <-done; err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("server accepted a foreign client cert: %v", err)
	}
}

func TestRenewBeforeExpiry(t *testing.T) {
	t0 := time.Now()
	p := newPKI(t, t0)
	ensure(t, p, testMembers)
	caBefore, _ := os.ReadFile(p.path("ca.crt"))
	var want []string
	for _, l := range allLeaves {
		end := mustCert(t, p.path(l+".crt")).NotAfter
		want = append(want, fmt.Sprintf("~ renew %s.crt (expires %s, within 90 days)", l, end.UTC().Format("2006-01-02")))
	}

	later := t0.Add(300 * oneDay)
	p.Now = func() time.Time { return later }
	before := snapshot(t, p.Dir)
	got, err := p.Plan(testMembers)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Plan at +300 days:\n got %q, %v\nwant %q", got, err, want)
	}
	if !reflect.DeepEqual(before, snapshot(t, p.Dir)) {
		t.Fatal("Plan wrote files")
	}
	if got := ensure(t, p, testMembers); !reflect.DeepEqual(got, want) {
		t.Fatalf("Ensure at +300 days:\n got %q\nwant %q", got, want)
	}
	if caAfter, _ := os.ReadFile(p.path("ca.crt")); !bytes.Equal(caBefore, caAfter) {
		t.Fatal("CA changed")
	}
	pool := x509.NewCertPool()
	pool.AddCert(mustCert(t, p.path("ca.crt")))
	for _, l := range allLeaves {
		c := mustCert(t, p.path(l+".crt"))
		if _, err := c.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: later, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Errorf("%s after renewal: %v", l, err)
		}
		if c.NotAfter.Sub(later.AddDate(1, 0, 0)).Abs() > time.Minute {
			t.Errorf("%s: NotAfter %s", l, c.NotAfter)
		}
		if before[l+".key"].data == snapshot(t, p.Dir)[l+".key"].data {
			t.Errorf("%s: key not renewed", l)
		}
	}
	testpeer.Binary(t, "openssl", "openssl")
	at := fmt.Sprint(later.Unix())
	for _, l := range allLeaves {
		openssl(t, p.Dir, "verify", "-attime", at, "-CAfile", "ca.crt", l+".crt")
	}
	if lines := ensure(t, p, testMembers); len(lines) != 0 {
		t.Fatalf("Ensure after renewal: %q", lines)
	}
}

func TestSANChangeRenewsOnlyThatMember(t *testing.T) {
	p := newPKI(t, time.Now())
	ensure(t, p, testMembers)

	// Same set, other order, case and IP spelling: nothing to do.
	same := []Member{
		{Name: "node1", SANs: []string{"10.0.0.1", "NODE1.example", "node1", "0:0:0:0:0:0:0:1", "localhost"}},
		testMembers[1],
	}
	if lines, err := p.Plan(same); err != nil || len(lines) != 0 {
		t.Fatalf("equivalent SANs: %q, %v", lines, err)
	}

	changed := []Member{{Name: "node1", SANs: []string{"node1", "10.0.0.1", "10.0.0.5"}}, testMembers[1]}
	before := snapshot(t, p.Dir)
	want := []string{
		"~ renew node1/server.crt (SANs changed: +10.0.0.5 -node1.example)",
		"~ renew node1/peer.crt (SANs changed: +10.0.0.5 -node1.example)",
	}
	lines, err := p.Plan(changed)
	if d := pki.Changes(lines).Destructive; err != nil || d != "replace node1/server.crt, node1/peer.crt" {
		t.Errorf("destructive %q, %v", d, err)
	}
	if got := ensure(t, p, changed); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	after := snapshot(t, p.Dir)
	for f, s := range before {
		renewed := strings.HasPrefix(f, "node1/")
		if (s.data != after[f].data) != renewed {
			t.Errorf("%s: renewed=%v, want %v", f, s.data != after[f].data, renewed)
		}
	}
	if got, want := certSANs(mustCert(t, p.path("node1/server.crt"))), []string{"10.0.0.1", "10.0.0.5", "127.0.0.1", "::1", "localhost", "node1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("SANs %q, want %q", got, want)
	}
}

func TestCAExpiringIsAnError(t *testing.T) {
	t0 := time.Now()
	p := newPKI(t, t0)
	ensure(t, p, testMembers)
	end := mustCert(t, p.path("ca.crt")).NotAfter.UTC().Format("2006-01-02")
	before := snapshot(t, p.Dir)
	p.Now = func() time.Time { return t0.AddDate(10, 0, 0).Add(-30 * oneDay) }
	for name, f := range map[string]func([]Member) ([]string, error){"Plan": p.Plan, "Ensure": p.Ensure} {
		_, err := f(testMembers)
		if err == nil || !strings.Contains(err.Error(), p.path("ca.crt")) || !strings.Contains(err.Error(), end) || !strings.Contains(err.Error(), "not automatic") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if !reflect.DeepEqual(before, snapshot(t, p.Dir)) {
		t.Fatal("files changed")
	}
}

func TestBrokenFiles(t *testing.T) {
	p := newPKI(t, time.Now())
	ensure(t, p, testMembers)
	other := newPKI(t, time.Now())
	ensure(t, other, testMembers)

	os.Remove(p.path("node2/peer.key"))
	os.WriteFile(p.path("node1/server.crt"), []byte("garbage"), 0o600)
	key, _ := os.ReadFile(other.path("apiserver-etcd-client.key"))
	os.WriteFile(p.path("apiserver-etcd-client.key"), key, 0o600) // from another pair
	for _, ext := range []string{".crt", ".key"} {                // a well-formed pair from another CA
		data, _ := os.ReadFile(other.path("node1/peer" + ext))
		os.WriteFile(p.path("node1/peer"+ext), data, 0o600)
	}
	os.Remove(p.path("healthcheck-client.crt"))

	want := []string{
		"~ renew node1/server.crt (server.crt unreadable: no CERTIFICATE PEM block)",
		"~ renew node1/peer.crt (not signed by the current CA)",
		"~ renew node2/peer.crt (peer.key missing)",
		"+ create healthcheck-client.crt",
		"~ renew apiserver-etcd-client.crt (apiserver-etcd-client.key does not match apiserver-etcd-client.crt)",
	}
	if got := ensure(t, p, testMembers); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	if lines := ensure(t, p, testMembers); len(lines) != 0 {
		t.Fatalf("after repair: %q", lines)
	}

	// Without the CA, everything is made again.
	os.Remove(p.path("ca.crt"))
	want = []string{"+ create ca.crt"}
	for _, l := range allLeaves {
		want = append(want, "~ renew "+l+".crt (not signed by the current CA)")
	}
	if got := ensure(t, p, testMembers); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}

	// A CA cert without its key is not replaced.
	os.Remove(p.path("ca.key"))
	if _, err := p.Plan(testMembers); err == nil || !strings.Contains(err.Error(), p.path("ca.key")+": missing") {
		t.Fatalf("CA without key: %v", err)
	}
}

func TestMembersDroppedAreLeftAlone(t *testing.T) {
	p := newPKI(t, time.Now())
	ensure(t, p, testMembers)
	before := snapshot(t, p.Dir)
	if lines := ensure(t, p, testMembers[:1]); len(lines) != 0 {
		t.Fatalf("%q", lines)
	}
	if !reflect.DeepEqual(before, snapshot(t, p.Dir)) {
		t.Fatal("files changed")
	}
}

func TestBadMembers(t *testing.T) {
	p := newPKI(t, time.Now())
	for _, ms := range [][]Member{{{Name: ""}}, {{Name: "../x"}}, {{Name: ".."}}, {{Name: "a"}, {Name: "a"}}} {
		if _, err := p.Ensure(ms); err == nil {
			t.Errorf("%v accepted", ms)
		}
	}
	if _, err := os.Stat(p.Dir); err == nil {
		t.Fatal("Dir created")
	}
}

func TestFiles(t *testing.T) {
	p := newPKI(t, time.Now())
	if _, err := p.Files("node1"); err == nil || !strings.Contains(err.Error(), "ca.crt") {
		t.Fatalf("Files before Ensure: %v", err)
	}
	if _, err := p.ClientTLS(); err == nil {
		t.Fatal("ClientTLS before Ensure")
	}
	ensure(t, p, testMembers)
	files, err := p.Files("node1")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"/etc/kubernetes/pki/apiserver-etcd-client.crt", "/etc/kubernetes/pki/apiserver-etcd-client.key",
		"/etc/kubernetes/pki/etcd/ca.crt", "/etc/kubernetes/pki/etcd/ca.key",
		"/etc/kubernetes/pki/etcd/healthcheck-client.crt", "/etc/kubernetes/pki/etcd/healthcheck-client.key",
		"/etc/kubernetes/pki/etcd/peer.crt", "/etc/kubernetes/pki/etcd/peer.key",
		"/etc/kubernetes/pki/etcd/server.crt", "/etc/kubernetes/pki/etcd/server.key",
	}
	var got []string
	for k := range files {
		got = append(got, k)
	}
	sort.Strings(got)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("paths:\n got %q\nwant %q", got, want)
	}
	caKey, _ := os.ReadFile(p.path("ca.key"))
	ca := mustCert(t, p.path("ca.crt"))
	for name, data := range files {
		block, rest := pem.Decode(data)
		if block == nil || len(bytes.TrimSpace(rest)) != 0 {
			t.Fatalf("%s: not one PEM block", name)
		}
		if bytes.Equal(data, caKey) != (name == "/etc/kubernetes/pki/etcd/ca.key") {
			t.Fatalf("%s: is the CA key: %v", name, bytes.Equal(data, caKey))
		}
		if strings.HasSuffix(name, ".crt") {
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if name != "/etc/kubernetes/pki/etcd/ca.crt" && c.CheckSignatureFrom(ca) != nil {
				t.Errorf("%s not signed by the CA", name)
			}
			continue
		}
		key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if name != "/etc/kubernetes/pki/etcd/ca.key" && key.(crypto.Signer).Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(ca.PublicKey) {
			t.Fatalf("%s is the CA key", name)
		}
	}
	if srv, _ := os.ReadFile(p.path("node1/server.crt")); !bytes.Equal(files["/etc/kubernetes/pki/etcd/server.crt"], srv) {
		t.Error("server.crt is not node1's")
	}
	if _, err := p.Files("node3"); err == nil || !strings.Contains(err.Error(), filepath.Join("node3", "server.crt")) {
		t.Fatalf("Files(node3): %v", err)
	}
}

func TestPlanNeverWrites(t *testing.T) {
	p := newPKI(t, time.Now())
	lines, err := p.Plan(testMembers)
	if err != nil || len(lines) != 1+len(allLeaves) {
		t.Fatalf("%q, %v", lines, err)
	}
	if _, err := os.Stat(filepath.Dir(p.Dir)); err == nil {
		t.Fatal("Plan created directories")
	}
	if err := os.MkdirAll(p.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Plan(testMembers); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(p.Dir)
	info, _ := os.Stat(p.Dir)
	if len(entries) != 0 || info.Mode().Perm() != 0o755 {
		t.Fatalf("Plan touched the dir: %d entries, mode %o", len(entries), info.Mode().Perm())
	}
}

// ClientTLS names every missing file, as a MissingError that is
// fs.ErrNotExist.
func TestClientTLSMissing(t *testing.T) {
	dir := t.TempDir()
	p := &PKI{Dir: dir}
	_, err := p.ClientTLS()
	me, ok := err.(*MissingError)
	want := []string{filepath.Join(dir, "ca.crt"), filepath.Join(dir, "healthcheck-client.crt"), filepath.Join(dir, "healthcheck-client.key")}
	if !ok || !reflect.DeepEqual(me.Files, want) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ClientTLS in an empty dir: %v, want the three files missing", err)
	}
	if _, err := p.Ensure(testMembers); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "healthcheck-client.crt"))
	if _, err = p.ClientTLS(); !errors.As(err, &me) || !reflect.DeepEqual(me.Files, want[1:2]) {
		t.Errorf("ClientTLS without the client certificate: %v", err)
	}
}
