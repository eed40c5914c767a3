// Command checks runs the benchmark's six read-only checks on every host
// of an inventory group as real steps of metalk8s's executor in plan mode
// (the same graph, executor and SSH pool as `metalk8s plan`), and prints
// how long that took.
//
//	checks -i hosts.ini -known-hosts FILE [-group fleet] [-forks 50]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/metalk8s/metalk8s/pkg/inventory"
	"github.com/metalk8s/metalk8s/pkg/ssh"
	"github.com/metalk8s/metalk8s/pkg/steps"
)

// Checks are the six commands, the same as the playbook's (bench.sh).
var Checks = []struct{ Name, Cmd string }{
	{"os-release", "cat /etc/os-release"},
	{"module", "if [ -d /sys/module/overlay ]; then echo loaded; else echo absent; fi"},
	{"sysctl", "/usr/sbin/sysctl -n net.ipv4.ip_forward"},
	{"package", "dpkg-query -W -f='${Status}' openssh-server"},
	{"stat", "stat -c %s /etc/hostname"},
	{"sha256", "sha256sum /etc/ssh/sshd_config"},
}

func main() {
	invPath := flag.String("i", "", "inventory")
	known := flag.String("known-hosts", "", "known_hosts file")
	group := flag.String("group", "fleet", "inventory group to check")
	forks := flag.Int("forks", 50, "hosts at once")
	cpuprof := flag.String("cpuprofile", "", "write a CPU profile to this file")
	flag.Parse()
	if *cpuprof != "" {
		f, err := os.Create(*cpuprof)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "checks:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(*invPath, *known, *group, *forks); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "checks:", err)
		os.Exit(1)
	}
}

func run(invPath, known, group string, forks int) error {
	t0 := time.Now()
	inv, err := inventory.Load(invPath)
	if err != nil {
		return err
	}
	g, ok := inv.Groups[group]
	if !ok {
		return fmt.Errorf("%s: no group %q", invPath, group)
	}
	pool, err := ssh.NewPool(ssh.Options{KnownHosts: known})
	if err != nil {
		return err
	}
	hosts := map[string]steps.Host{}
	var all []*steps.Step
	for _, h := range inv.AllHosts(g) {
		cfg, err := inventory.SSHFor(h)
		if err != nil {
			return err
		}
		c, err := pool.Client(h.Name, cfg)
		if err != nil {
			return err
		}
		defer c.Close()
		hosts[h.Name] = &steps.SSHHost{Client: c}
		prev := ""
		for _, chk := range Checks {
			s := &steps.Step{ID: steps.ID("preflight/bench-"+chk.Name, h.Name), Host: h.Name, Phase: "preflight",
				Check: func(ctx context.Context, h steps.Host) (steps.Change, error) {
					out, err := h.Run(ctx, chk.Cmd)
					if err == nil && len(strings.TrimSpace(string(out))) == 0 {
						err = fmt.Errorf("%s: no output", chk.Name)
					}
					return steps.NoChange, err
				}}
			if prev != "" {
				s.Deps = []string{prev}
			}
			prev = s.ID
			all = append(all, s)
		}
	}
	graph, err := steps.NewGraph(all)
	if err != nil {
		return err
	}
	r := steps.Run(context.Background(), graph, hosts, steps.Options{Forks: forks, Transient: ssh.Transient})
	if err := r.Err(); err != nil {
		return err
	}
	fmt.Printf("%d hosts, %d checks in %.3f s\n", len(hosts), len(all), time.Since(t0).Seconds())
	return nil
}
