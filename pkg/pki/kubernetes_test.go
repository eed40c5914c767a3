package pki

import (
	"crypto/rsa"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

func newKubernetes(t *testing.T, now time.Time) *Kubernetes {
	return &Kubernetes{Dir: filepath.Join(t.TempDir(), "artifacts", "pki", "kubernetes"), Now: func() time.Time { return now }}
}

func mustEnsure(t *testing.T, k *Kubernetes) []string {
	t.Helper()
	lines, err := k.Ensure()
	if err != nil {
		t.Fatal(err)
	}
	return lines
}

// shell runs a pipeline in dir and returns its stdout.
func shell(t *testing.T, dir, script string) string {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("no openssl")
	}
	cmd := exec.Command("sh", "-ec", script)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	return string(out)
}

func TestKubernetesEnsureOnceThenNothing(t *testing.T) {
	k := newKubernetes(t, time.Now())
	if _, err := k.Files(); err == nil || !strings.Contains(err.Error(), "ca.crt") {
		t.Fatalf("Files before Ensure: %v", err)
	}
	lines, err := k.Plan()
	want := []string{"+ create ca.crt", "+ create front-proxy-ca.crt", "+ create sa.key"}
	if err != nil || !reflect.DeepEqual(lines, want) {
		t.Fatalf("Plan: %q, %v", lines, err)
	}
	if _, err := os.Stat(filepath.Dir(k.Dir)); err == nil {
		t.Fatal("Plan made directories")
	}
	if got := mustEnsure(t, k); !reflect.DeepEqual(got, want) {
		t.Fatalf("Ensure: %q", got)
	}
	var names []string
	filepath.WalkDir(k.Dir, func(p string, d fs.DirEntry, err error) error {
		info, _ := d.Info()
		mode := fs.FileMode(0o600)
		if d.IsDir() {
			mode = 0o700
		} else {
			names = append(names, d.Name())
		}
		if info.Mode().Perm() != mode {
			t.Errorf("%s: mode %o, want %o", p, info.Mode().Perm(), mode)
		}
		return nil
	})
	sorted := append([]string{}, KubernetesFiles...)
	sort.Strings(sorted)
	if !reflect.DeepEqual(names, sorted) {
		t.Fatalf("files %q", names)
	}
	before := snapshot(t, k.Dir)
	if lines, err := k.Plan(); err != nil || len(lines) != 0 {
		t.Fatalf("Plan after Ensure: %q, %v", lines, err)
	}
	if lines := mustEnsure(t, k); len(lines) != 0 {
		t.Fatalf("second Ensure: %q", lines)
	}
	if !reflect.DeepEqual(before, snapshot(t, k.Dir)) {
		t.Fatal("second Ensure rewrote files")
	}
	files, err := k.Files()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range KubernetesFiles {
		if string(files[name]) != before[name] {
			t.Errorf("Files()[%q] is not the file", name)
		}
	}
	key, err := ParseKey(files["sa.key"])
	if err != nil {
		t.Fatal(err)
	}
	if rk, ok := key.(*rsa.PrivateKey); !ok || rk.N.BitLen() != 2048 {
		t.Errorf("sa.key: %T, want RSA 2048", key)
	}
}

func TestKubernetesOpenSSL(t *testing.T) {
	k := newKubernetes(t, time.Now())
	mustEnsure(t, k)
	for _, c := range []struct{ name, cn string }{{"ca", "kubernetes"}, {"front-proxy-ca", "front-proxy-ca"}} {
		text := shell(t, k.Dir, "openssl x509 -noout -text -in "+c.name+".crt")
		for _, want := range []string{"CA:TRUE", "Certificate Sign", "Subject: CN = " + c.cn, "Public-Key: (2048 bit)"} {
			if !strings.Contains(text, want) {
				t.Errorf("%s.crt lacks %q:\n%s", c.name, want, text)
			}
		}
		if out := shell(t, k.Dir, "openssl verify -CAfile "+c.name+".crt "+c.name+".crt"); strings.TrimSpace(out) != c.name+".crt: OK" {
			t.Errorf("verify %s: %q", c.name, out)
		}
		// The key is the certificate's.
		if a, b := shell(t, k.Dir, "openssl pkey -in "+c.name+".key -pubout"), shell(t, k.Dir, "openssl x509 -noout -pubkey -in "+c.name+".crt"); a != b {
			t.Errorf("%s.key does not match %s.crt", c.name, c.name)
		}
	}
	if out := shell(t, k.Dir, "openssl verify -CAfile ca.crt front-proxy-ca.crt || true"); strings.Contains(out, ": OK") {
		t.Errorf("front-proxy-ca verified by the cluster CA: %q", out)
	}
	pub, _ := os.ReadFile(filepath.Join(k.Dir, "sa.pub"))
	if got := shell(t, k.Dir, "openssl pkey -in sa.key -pubout"); got != string(pub) {
		t.Errorf("openssl pkey -pubout:\n%s\nsa.pub:\n%s", got, pub)
	}
	if out := shell(t, k.Dir, "openssl pkey -in sa.key -noout -text"); !strings.Contains(out, "Private-Key: (2048 bit") {
		t.Errorf("sa.key: %s", out[:min(len(out), 80)])
	}
}

func TestCACertHash(t *testing.T) {
	k := newKubernetes(t, time.Now())
	mustEnsure(t, k)
	etcd := &Set{Dir: filepath.Join(t.TempDir(), "etcd"), CA: CA{Name: "ca", CommonName: "etcd-ca", Label: "etcd"}}
	if _, err := etcd.Ensure(); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{filepath.Join(k.Dir, "ca.crt"), filepath.Join(k.Dir, "front-proxy-ca.crt"), etcd.Path("ca.crt")} { // RSA and ECDSA
		data, _ := os.ReadFile(file)
		got, err := CACertHash(data)
		if err != nil {
			t.Fatal(err)
		}
		// kubeadm's documented recipe for --discovery-token-ca-cert-hash.
		out := shell(t, "", "openssl x509 -pubkey -in "+file+" | openssl pkey -pubin -outform der | sha256sum")
		if want := "sha256:" + strings.Fields(out)[0]; got != want {
			t.Errorf("%s: %s, openssl says %s", file, got, want)
		}
	}
	for _, bad := range []string{"", "garbage", string(mustRead(t, filepath.Join(k.Dir, "sa.pub")))} {
		if _, err := CACertHash([]byte(bad)); err == nil {
			t.Errorf("CACertHash(%.20q) accepted", bad)
		}
	}
}

func mustRead(t *testing.T, file string) []byte {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestKubernetesServiceAccountKey(t *testing.T) {
	k := newKubernetes(t, time.Now())
	mustEnsure(t, k)
	key := mustRead(t, filepath.Join(k.Dir, "sa.key"))
	pub := mustRead(t, filepath.Join(k.Dir, "sa.pub"))
	other := newKubernetes(t, time.Now())
	mustEnsure(t, other)

	cases := []struct {
		name   string
		break_ func()
		want   string // Plan's line, or an error containing it
		isErr  bool
	}{
		{"pub missing", func() { os.Remove(filepath.Join(k.Dir, "sa.pub")) }, "~ rewrite sa.pub (missing)", false},
		{"pub of another key", func() {
			os.WriteFile(filepath.Join(k.Dir, "sa.pub"), mustRead(t, filepath.Join(other.Dir, "sa.pub")), 0o600)
		}, "~ rewrite sa.pub (does not match sa.key)", false},
		{"key unreadable", func() { os.WriteFile(filepath.Join(k.Dir, "sa.key"), []byte("garbage"), 0o600) }, "not replaced automatically", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			os.WriteFile(filepath.Join(k.Dir, "sa.key"), key, 0o600)
			os.WriteFile(filepath.Join(k.Dir, "sa.pub"), pub, 0o600)
			c.break_()
			lines, err := k.Plan()
			if c.isErr {
				if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), filepath.Join(k.Dir, "sa.key")) {
					t.Fatalf("Plan: %q, %v", lines, err)
				}
				if _, err := k.Ensure(); err == nil {
					t.Fatal("Ensure replaced an unreadable sa.key")
				}
				if _, err := k.Files(); err == nil {
					t.Fatal("Files with an unreadable sa.key")
				}
				return
			}
			if err != nil || !reflect.DeepEqual(lines, []string{c.want}) {
				t.Fatalf("Plan: %q, %v", lines, err)
			}
			if _, err := k.Files(); err == nil {
				t.Fatal("Files before the repair")
			}
			mustEnsure(t, k)
			if got := mustRead(t, filepath.Join(k.Dir, "sa.key")); string(got) != string(key) {
				t.Fatal("sa.key replaced")
			}
			if got := mustRead(t, filepath.Join(k.Dir, "sa.pub")); string(got) != string(pub) {
				t.Fatalf("sa.pub not rewritten from sa.key")
			}
		})
	}
}

func TestKubernetesCANearExpiry(t *testing.T) {
	t0 := time.Now()
	k := newKubernetes(t, t0)
	mustEnsure(t, k)
	before := snapshot(t, k.Dir)
	k.Now = func() time.Time { return t0.AddDate(10, 0, 0).Add(-30 * 24 * time.Hour) }
	for name, f := range map[string]func() ([]string, error){"Plan": k.Plan, "Ensure": k.Ensure} {
		if _, err := f(); err == nil || !strings.Contains(err.Error(), "the Kubernetes CA expires") || !strings.Contains(err.Error(), filepath.Join(k.Dir, "ca.crt")) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if !reflect.DeepEqual(before, snapshot(t, k.Dir)) {
		t.Fatal("files changed")
	}
}

// snapshot is every file under dir (slash path) with its content.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		return out
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = string(mustRead(t, p))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Each of kubeadm's encryptionAlgorithm values makes CAs and sa.key of
// that type, as openssl reads them; a change of algorithm later keeps
// the keys already made.
func TestKubernetesAlgorithm(t *testing.T) {
	want := map[Algorithm]string{
		RSA2048: "Public-Key: (2048 bit)", RSA3072: "Public-Key: (3072 bit)", RSA4096: "Public-Key: (4096 bit)",
		ECDSAP256: "NIST CURVE: P-256", ECDSAP384: "NIST CURVE: P-384",
	}
	for _, alg := range Algorithms {
		k := newKubernetes(t, time.Now())
		k.Algorithm = alg
		mustEnsure(t, k)
		for _, f := range []string{"ca.crt", "front-proxy-ca.crt"} {
			if text := shell(t, k.Dir, "openssl x509 -noout -text -in "+f); !strings.Contains(text, want[alg]) {
				t.Errorf("%s: %s lacks %q", alg, f, want[alg])
			}
		}
		if text := shell(t, k.Dir, "openssl pkey -in sa.key -noout -text"); !strings.Contains(text, strings.TrimSuffix(strings.Replace(want[alg], "Public", "Private", 1), ")")) {
			t.Errorf("%s: sa.key is not of that type:\n%s", alg, text[:min(len(text), 120)])
		}
		before := snapshot(t, k.Dir)
		k.Algorithm = RSA2048
		if alg == RSA2048 {
			k.Algorithm = ECDSAP256
		}
		if lines, err := k.Plan(); err != nil || len(lines) != 0 {
			t.Errorf("%s then %s: plan %q, %v; want the keys kept", alg, k.Algorithm, lines, err)
		}
		mustEnsure(t, k)
		if !reflect.DeepEqual(before, snapshot(t, k.Dir)) {
			t.Errorf("%s then %s: Ensure rewrote files", alg, k.Algorithm)
		}
	}
	k := newKubernetes(t, time.Now())
	k.Algorithm = "DSA-1024"
	if _, err := k.Ensure(); err == nil || !strings.Contains(err.Error(), "DSA-1024") {
		t.Errorf("an unknown algorithm: %v", err)
	}
}
