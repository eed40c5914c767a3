package ssh

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/metalk8s/metalk8s/pkg/inventory"
	"github.com/metalk8s/metalk8s/test/fleet"
)

// BenchmarkRun times one read-only command on a real sshd host, in a shell
// (how Run runs commands) and in a session of its own (how commands with
// stdin run, and how every command ran before shells), and a connection
// (handshake and login). cpu-ms/op is the whole machine's CPU: the host's
// sshd and shells share it with the client.
//
//	go test ./pkg/ssh -run '^$' -bench Run -benchtime 300x
func BenchmarkRun(b *testing.B) {
	f := fleet.Start(b, 1)
	b.Setenv("SSH_AUTH_SOCK", "")
	pool, err := NewPool(Options{KnownHosts: f.KnownHosts})
	if err != nil {
		b.Fatal(err)
	}
	h := f.Host("node-001")
	cfg := inventory.SSHConfig{Host: h.Addr, Port: h.Port, User: fleet.NoPasswdUser, KeyFile: f.Key}
	ctx := context.Background()
	const cmd = "cat /etc/os-release"
	for _, bc := range []struct {
		name string
		opts []RunOption
	}{{"shell", nil}, {"session", []RunOption{WithStdin([]byte{})}}} {
		b.Run(bc.name, func(b *testing.B) {
			c, _ := pool.Client("node-001", cfg)
			defer c.Close()
			if _, err := c.Run(ctx, cmd, bc.opts...); err != nil {
				b.Fatal(err)
			}
			cpu := machineCPU()
			b.ResetTimer()
			for b.Loop() {
				if _, err := c.Run(ctx, cmd, bc.opts...); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(machineCPU()-cpu)*10/float64(b.N), "cpu-ms/op")
		})
	}
	b.Run("connect", func(b *testing.B) {
		cpu := machineCPU()
		for b.Loop() {
			c, _ := pool.Client("node-001", cfg)
			if err := c.Connect(ctx); err != nil {
				b.Fatal(err)
			}
			c.Close()
		}
		b.ReportMetric(float64(machineCPU()-cpu)*10/float64(b.N), "cpu-ms/op")
	})
}

// machineCPU is the CPU time this machine spent, in clock ticks (10 ms),
// idle and I/O wait left out.
func machineCPU() int {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	total := 0
	for i, v := range strings.Fields(line)[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, _ := strconv.Atoi(v)
		total += n
	}
	return total
}
