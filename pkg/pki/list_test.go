package pki

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestList(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	if got, err := List(dir); err != nil || len(got) != 0 {
		t.Fatalf("missing dir: %v, %v", got, err)
	}
	now := time.Now()
	makePKI(t, dir)
	got, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		path, subject string
		ca            bool
		years         int
	}{
		{"etcd/ca.crt", "CN=etcd-ca", true, 10},
		{"etcd/node1/server.crt", "CN=node1", false, 1},
		{"etcd/node2/server.crt", "CN=node2", false, 1},
		{"etcd/node3/server.crt", "CN=node3", false, 1},
		{"kubernetes/ca.crt", "CN=kubernetes", true, 10},
		{"kubernetes/front-proxy-ca.crt", "CN=front-proxy-ca", true, 10},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i, w := range want {
		g := got[i]
		if g.Path != w.path || g.Subject != w.subject || g.IsCA != w.ca || g.NotAfter.Sub(now.AddDate(w.years, 0, 0)).Abs() > time.Hour {
			t.Errorf("%d: got %+v, want %+v", i, g, w)
		}
	}
	os.WriteFile(filepath.Join(dir, "etcd", "bad.crt"), []byte("x"), 0o600)
	if _, err := List(dir); err == nil || !strings.Contains(err.Error(), "bad.crt") {
		t.Fatalf("bad file: %v", err)
	}
}
