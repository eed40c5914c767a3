package node

import (
	"context"
	"fmt"
	"strings"

	"github.com/metalk8s/metalk8s/pkg/inventory"
	"github.com/metalk8s/metalk8s/pkg/ssh"
	"github.com/metalk8s/metalk8s/pkg/steps"
)

// KernelModules are loaded on Kubernetes nodes: overlayfs for containerd,
// br_netfilter for the CNI bridge, IPVS for kube-proxy.
var KernelModules = []string{"overlay", "br_netfilter", "ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_sh", "nf_conntrack"}

// Sysctls are set on Kubernetes nodes.
var Sysctls = [][2]string{
	{"net.ipv4.ip_forward", "1"},
	{"net.bridge.bridge-nf-call-iptables", "1"},
	{"net.bridge.bridge-nf-call-ip6tables", "1"},
}

const (
	modulesFile = "/etc/modules-load.d/metalk8s.conf"
	sysctlFile  = "/etc/sysctl.d/90-metalk8s.conf"
)

func modulesConf() []byte {
	return []byte("# Written by metalk8s.\n" + strings.Join(KernelModules, "\n") + "\n")
}

func sysctlConf() []byte {
	var b strings.Builder
	b.WriteString("# Written by metalk8s.\n")
	for _, kv := range Sysctls {
		fmt.Fprintf(&b, "%s = %s\n", kv[0], kv[1])
	}
	return []byte(b.String())
}

// System returns, for every Kubernetes node, the steps that load and
// persist kernel modules, set and persist sysctls, turn swap off for good,
// and look at time synchronisation.
func System(cl *inventory.Cluster) []*steps.Step {
	var out []*steps.Step
	for _, n := range cl.Nodes {
		if !n.ControlPlane && !n.Worker {
			continue
		}
		host := n.Name
		state := steps.ID("prepare/state-dir", host)
		modules := steps.ID("prepare/kernel-modules", host)
		out = append(out,
			&steps.Step{ID: modules, Host: host, Phase: "prepare", Deps: []string{state}, Inputs: KernelModules,
				Check: checkModules,
				Apply: func(ctx context.Context, h steps.Host) error {
					if _, err := h.Put(ctx, ssh.File{Path: modulesFile, Data: modulesConf(), Mode: 0o644}); err != nil {
						return err
					}
					_, err := h.Run(ctx, "modprobe -a "+strings.Join(KernelModules, " "))
					return err
				}},
			&steps.Step{ID: steps.ID("prepare/sysctl", host), Host: host, Phase: "prepare", Deps: []string{modules}, Inputs: Sysctls,
				Check: checkSysctls,
				Apply: func(ctx context.Context, h steps.Host) error {
					if _, err := h.Put(ctx, ssh.File{Path: sysctlFile, Data: sysctlConf(), Mode: 0o644}); err != nil {
						return err
					}
					_, err := h.Run(ctx, "sysctl -q -p "+sysctlFile)
					return err
				}},
			&steps.Step{ID: steps.ID("prepare/swap", host), Host: host, Phase: "prepare", Deps: []string{state},
				Check: checkSwap,
				Apply: func(ctx context.Context, h steps.Host) error {
					_, err := h.Run(ctx, swapOffScript)
					return err
				}},
			&steps.Step{ID: steps.ID("prepare/time-sync", host), Host: host, Phase: "prepare", Deps: []string{state},
				Check: checkTimeSync},
		)
	}
	return out
}

// checkModules: each module is loaded (or built in), and the boot-time list
// is ours.
func checkModules(ctx context.Context, h steps.Host) (steps.Change, error) {
	script := `for m in ` + strings.Join(KernelModules, " ") + `; do ` +
		`if [ -d /sys/module/$m ] || grep -qs "/$m.ko" /lib/modules/$(uname -r)/modules.builtin; then echo "loaded $m"; fi; done; ` +
		`sha256sum < ` + modulesFile + ` 2>/dev/null || true`
	out, err := h.Run(ctx, script)
	if err != nil {
		return steps.NoChange, err
	}
	loaded := map[string]bool{}
	fileSum := ""
	for _, l := range strings.Split(string(out), "\n") {
		if m, ok := strings.CutPrefix(l, "loaded "); ok {
			loaded[m] = true
		} else if f := strings.Fields(l); len(f) == 2 && f[1] == "-" {
			fileSum = f[0]
		}
	}
	var diff []string
	for _, m := range KernelModules {
		if !loaded[m] {
			diff = append(diff, "+ load module "+m)
		}
	}
	diff = append(diff, steps.FileDiff(modulesFile, fileSum, modulesConf())...)
	return steps.Changes(diff...), nil
}

func checkSysctls(ctx context.Context, h steps.Host) (steps.Change, error) {
	var keys []string
	for _, kv := range Sysctls {
		keys = append(keys, kv[0])
	}
	// One line per key: missing keys (module not loaded) print nothing.
	script := `for k in ` + strings.Join(keys, " ") + `; do v=$(sysctl -n $k 2>/dev/null) && echo "$k=$v"; done; ` +
		`sha256sum < ` + sysctlFile + ` 2>/dev/null || true`
	out, err := h.Run(ctx, script)
	if err != nil {
		return steps.NoChange, err
	}
	have := map[string]string{}
	fileSum := ""
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			have[k] = strings.TrimSpace(v)
		} else if f := strings.Fields(l); len(f) == 2 && f[1] == "-" {
			fileSum = f[0]
		}
	}
	var diff []string
	for _, kv := range Sysctls {
		switch v, ok := have[kv[0]]; {
		case !ok:
			diff = append(diff, fmt.Sprintf("~ sysctl %s (absent) -> %s", kv[0], kv[1]))
		case v != kv[1]:
			diff = append(diff, fmt.Sprintf("~ sysctl %s %s -> %s", kv[0], v, kv[1]))
		}
	}
	diff = append(diff, steps.FileDiff(sysctlFile, fileSum, sysctlConf())...)
	return steps.Changes(diff...), nil
}

// Swap: kubelet refuses to run with swap on. Active swap areas come from
// /proc/swaps; persistent ones from /etc/fstab lines of type swap.
const swapCheckScript = `tail -n +2 /proc/swaps | awk '{print "active " $1}'; ` +
	`awk '$1 !~ /^#/ && $3 == "swap" {print "fstab " $1}' /etc/fstab 2>/dev/null; true`

// swapOffScript turns swap off and comments out fstab's swap lines,
// keeping the original once as /etc/fstab.metalk8s-orig.
const swapOffScript = `set -e; swapoff -a; ` +
	`if awk '$1 !~ /^#/ && $3 == "swap" {found=1} END {exit !found}' /etc/fstab; then ` +
	`[ -e /etc/fstab.metalk8s-orig ] || cp -p /etc/fstab /etc/fstab.metalk8s-orig; ` +
	`awk '$1 !~ /^#/ && $3 == "swap" {print "# swap off for Kubernetes (metalk8s): " $0; next} {print}' /etc/fstab > /etc/fstab.metalk8s-new; ` +
	`chmod --reference=/etc/fstab /etc/fstab.metalk8s-new; mv -f /etc/fstab.metalk8s-new /etc/fstab; fi`

func checkSwap(ctx context.Context, h steps.Host) (steps.Change, error) {
	out, err := h.Run(ctx, swapCheckScript)
	if err != nil {
		return steps.NoChange, err
	}
	var diff []string
	for _, l := range strings.Split(string(out), "\n") {
		if dev, ok := strings.CutPrefix(l, "active "); ok {
			diff = append(diff, "- swapoff "+dev)
		} else if dev, ok := strings.CutPrefix(l, "fstab "); ok {
			diff = append(diff, "~ comment out swap "+dev+" in /etc/fstab")
		}
	}
	return steps.Changes(diff...), nil
}

// checkTimeSync looks for a synchronised clock (systemd's view, else
// chrony's, else ntpd's). It changes nothing: time sync is the operator's
// choice; without it, clocks drift and TLS and etcd suffer, so it warns.
func checkTimeSync(ctx context.Context, h steps.Host) (steps.Change, error) {
	out, err := h.Run(ctx, `if command -v timedatectl >/dev/null && s=$(timedatectl show -p NTPSynchronized --value 2>/dev/null); then echo "timedatectl $s"; fi; `+
		`if command -v chronyc >/dev/null; then chronyc -n tracking 2>/dev/null | awk -F': ' '/^Leap status/ {print "chrony " $2}'; fi; `+
		`if command -v ntpstat >/dev/null; then ntpstat >/dev/null 2>&1 && echo "ntpstat yes" || echo "ntpstat no"; fi; true`)
	if err != nil {
		return steps.NoChange, err
	}
	return timeSyncChange(string(out)), nil
}

func timeSyncChange(out string) steps.Change {
	var seen []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		tool, v, ok := strings.Cut(l, " ")
		if !ok {
			continue
		}
		if v == "yes" || (tool == "chrony" && v == "Normal") {
			return steps.NoChange
		}
		seen = append(seen, tool+": "+v)
	}
	why := "no time service answers (timedatectl, chronyc, ntpstat)"
	if len(seen) > 0 {
		why = strings.Join(seen, ", ")
	}
	return steps.Change{Warnings: []string{"clock not synchronised by NTP (" + why + "); keep the nodes' clocks in sync"}}
}
