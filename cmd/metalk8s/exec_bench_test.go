package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metalk8s/metalk8s/test/fleet"
)

// BenchmarkExecTrue100 times `metalk8s exec -- true` on 100 fleet hosts:
// connect (key exchange, host key check, auth) and run, in parallel. It
// logs in as the fleet's plain user: root's shell startup on a dev machine
// (a pyenv init in ~/.bashrc) would be what it measures otherwise.
//
//	go test ./cmd/metalk8s -run '^$' -bench ExecTrue100 -benchtime 5x
func BenchmarkExecTrue100(b *testing.B) {
	f := fleet.Start(b, 100)
	b.Setenv("SSH_AUTH_SOCK", "")
	data, err := os.ReadFile(f.Inventory)
	if err != nil {
		b.Fatal(err)
	}
	inv := filepath.Join(b.TempDir(), "hosts.ini")
	os.WriteFile(inv, []byte(strings.ReplaceAll(string(data), "ansible_user=root", "ansible_user="+fleet.NoPasswdUser)), 0o600)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		code := run([]string{"metalk8s", "exec", "-i", inv, "--known-hosts", f.KnownHosts,
			"--limit", "fleet", "--forks", "100", "--", "true"}, io.Discard, io.Discard)
		if code != 0 {
			b.Fatalf("exec exited %d", code)
		}
	}
}
