package network

import (
	"context"

	"github.com/metalk8s/metalk8s/pkg/steps"
)

// ResetStepName is remove-node's network cleanup, on the removed node.
const ResetStepName = "remove/network-reset"

// resetScript deletes, on a node leaving the cluster, what Kubernetes and
// the pod network made in its kernel, and nothing else:
//   - iptables/ip6tables chains named KUBE-*, FLANNEL-* and CNI-* (kube-proxy,
//     flannel, the bridge and portmap plugins) in every table, after the
//     rules of other chains that jump to them (iptables-restore --noflush:
//     every other rule stays);
//   - ipsets named KUBE-* (kube-proxy's ipvs mode);
//   - nftables tables named kube-proxy, kube-network-policies and
//     flannel-* (kube-proxy's and flannel's nftables modes, the policies);
//   - IPVS virtual services whose address is on kube-ipvs0 (the Services'
//     cluster IPs) or whose port is in the NodePort range 30000-32767,
//     then kube-ipvs0 itself; other IPVS services stay;
//   - the interfaces cni0 and flannel.1 and the CNI state (/var/lib/cni,
//     /run/flannel, metalk8s's conflist).
//
// Its arguments are the files and directories to delete (resetFiles);
// with -n first it prints what it would delete, one line each, and
// changes nothing (the step's check).
const resetScript = `dry=; [ "${1:-}" = -n ] && { dry=1; shift; }
say() { echo "$*"; }
for ipt in iptables ip6tables; do
  command -v $ipt-save >/dev/null || continue
  for t in filter nat mangle raw; do
    rules=$($ipt-save -t $t 2>/dev/null) || continue
    chains=$(printf '%s\n' "$rules" | sed -n 's/^:\(\(KUBE\|FLANNEL\|CNI\)-[^ ]*\) .*/\1/p')
    [ -n "$chains" ] || continue
    say "$ipt $t: chains $(echo $chains)"
    [ -n "$dry" ] && continue
    { echo "*$t"
      printf '%s\n' "$rules" | grep -E -- '^-A ' | grep -Ev -- '^-A (KUBE|FLANNEL|CNI)-' | grep -E -- '-j (KUBE|FLANNEL|CNI)-' | sed 's/^-A /-D /'
      for c in $chains; do echo "-F $c"; done
      for c in $chains; do echo "-X $c"; done
      echo COMMIT
    } | $ipt-restore --noflush || exit 1
  done
done
if command -v ipset >/dev/null; then
  for s in $(ipset list -n 2>/dev/null | grep '^KUBE-'); do
    say "ipset $s"; [ -n "$dry" ] || ipset destroy "$s" || exit 1
  done
fi
if command -v nft >/dev/null; then
  nft list tables 2>/dev/null | while read -r _ fam name; do
    case $name in kube-proxy|kube-network-policies|flannel-*)
      say "nftables table $fam $name"; [ -n "$dry" ] || nft delete table "$fam" "$name" || exit 1;;
    esac
  done || exit 1
fi
if command -v ipvsadm >/dev/null; then
  vips=$(ip -o addr show dev kube-ipvs0 2>/dev/null | awk '{sub(/\/.*/, "", $4); print $4}')
  ipvsadm -S -n 2>/dev/null | awk '$1 == "-A" { print $2, $3 }' | while read -r kind addr; do
    ip=${addr%:*}; port=${addr##*:}; ip=${ip#[}; ip=${ip%]}
    case " $(echo $vips) " in *" $ip "*) ;; *) [ "$port" -ge 30000 ] 2>/dev/null && [ "$port" -le 32767 ] || continue;; esac
    say "ipvs service $addr"; [ -n "$dry" ] || ipvsadm -D "$kind" "$addr" || exit 1
  done || exit 1
fi
for l in kube-ipvs0 cni0 flannel.1; do
  ip link show "$l" >/dev/null 2>&1 || continue
  say "interface $l"; [ -n "$dry" ] || ip link delete "$l" || exit 1
done
for p in "$@"; do
  [ -e "$p" ] || continue
  say "$p"; [ -n "$dry" ] || rm -rf "$p" || exit 1
done
exit 0
`

// resetFiles are the CNI state and configuration a removed node keeps.
var resetFiles = []string{"/var/lib/cni", "/run/flannel", CNIConfPath}

// ResetStep deletes, on a node removed from the cluster, the firewall
// chains, ipsets, nftables tables, IPVS services, interfaces and CNI state
// Kubernetes and the pod network made (resetScript), once its kubelet
// has stopped (deps). The check lists them; a node without any changes
// nothing.
func ResetStep(host string, deps []string) *steps.Step { return resetStep(host, deps, resetFiles) }

func resetStep(host string, deps, files []string) *steps.Step {
	return &steps.Step{ID: steps.ID(ResetStepName, host), Host: host, Phase: "remove", Deps: deps,
		Check: func(ctx context.Context, h steps.Host) (steps.Change, error) {
			lines, err := steps.RunScript(ctx, h, resetScript, true, files...)
			if err != nil {
				return steps.NoChange, err
			}
			for i := range lines {
				lines[i] = "- " + lines[i]
			}
			return steps.Changes(lines...), nil
		},
		Apply: func(ctx context.Context, h steps.Host) error {
			_, err := steps.RunScript(ctx, h, resetScript, false, files...)
			return err
		}}
}
