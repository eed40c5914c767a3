package main

import (
	"io"
	"testing"

	"github.com/metalk8s/metalk8s/test/fleet"
)

// BenchmarkExecTrue100 times `metalk8s exec -- true` on 100 fleet hosts:
// connect (key exchange, host key check, auth) and run, in parallel.
//
//	go test ./cmd/metalk8s -run '^$' -bench ExecTrue100 -benchtime 5x
func BenchmarkExecTrue100(b *testing.B) {
	f := fleet.Start(b, 100)
	b.Setenv("SSH_AUTH_SOCK", "")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		code := run([]string{"metalk8s", "exec", "-i", f.Inventory, "--known-hosts", f.KnownHosts,
			"--limit", "fleet", "--forks", "100", "--", "true"}, io.Discard, io.Discard)
		if code != 0 {
			b.Fatalf("exec exited %d", code)
		}
	}
}
