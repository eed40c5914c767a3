#!/usr/bin/env bash
# remove-add.sh: issue 18's day-2 scenario on a running lab cluster (after
# `make demo`): a refused removal changes nothing, remove-node node3 (etcd
# member and worker) leaves a healthy 2-member etcd and node3's volumes and
# data intact, add-node node3 brings it back touching only the cluster-side
# steps on node1 and node2, and a final plan has nothing to do.
#
#   test/lab/scenarios/remove-add.sh     (make lab-remove-add)
#
# Env: BIN (bin/metalk8s), LAB_DIR (.lab), LAB_BUNDLE (.cache/bundle/<v>).
# Prints each check as "ok ..." or "FAIL ..."; exits 1 if any failed.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
cd "$REPO"
BIN=${BIN:-bin/metalk8s}
LAB_DIR=${LAB_DIR:-.lab}
INV=$LAB_DIR/inventory/hosts.ini
KNOWN=$LAB_DIR/inventory/known_hosts
LAB_BUNDLE=${LAB_BUNDLE:-$(ls -d .cache/bundle/v* | tail -1)}
KUBECTL="$LAB_BUNDLE/bin/kubectl --kubeconfig $LAB_DIR/inventory/artifacts/admin.conf --request-timeout 60s"
FLAGS=(--known-hosts "$KNOWN" --bundle "$LAB_BUNDLE")
OUT=$LAB_DIR/remove-add
mkdir -p "$OUT"
export LAB_DIR

failed=0
ok() { echo "ok   $*"; }
fail() {
	echo "FAIL $*"
	failed=1
}
check() { # check WHAT CMD...: ok when CMD succeeds
	local what=$1
	shift
	if "$@"; then ok "$what"; else fail "$what"; fi
}
on() { test/lab/lab.sh ssh "${1#node}" "$2"; }
step() { echo "== $(date +%T) $*"; }
# mk8s NAME ARGS...: run metalk8s, output in $OUT/NAME.log, return its code
mk8s() {
	local name=$1 t0=$SECONDS rc
	shift
	"$BIN" "$@" >"$OUT/$name.log" 2>&1
	rc=$?
	echo "   metalk8s $1: exit $rc in $((SECONDS - t0)) s ($OUT/$name.log)"
	return $rc
}
nodes() { $KUBECTL get nodes -o jsonpath='{range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{" "}{end}'; }
# members: etcd's member list as etcd status prints it ("node1, node2")
members() { "$BIN" etcd status "$1" --known-hosts "$KNOWN" 2>/dev/null | sed -n 's/^members: //p'; }
until_nodes() { # until_nodes WANT MINUTES
	local i
	for ((i = 0; i < $2 * 6; i++)); do
		[[ "$(nodes)" == "$1" ]] && return 0
		sleep 10
	done
	echo "   nodes: $(nodes)"
	return 1
}

step "preconditions"
check "3 nodes Ready" until_nodes "node1=True node2=True node3=True " 10
check "etcd members node1 node2 node3" test "$(members "$INV")" = "node1, node2, node3"
# A volume of node3's, with a file on it, and a firewall chain of the
# operator's own: both must outlive remove-node.
vol=$(on node3 "findmnt -rn -o TARGET | grep '^/mnt/vg_metalk8s/' | head -1")
marker="metalk8s-$(date +%s)-$RANDOM"
on node3 "echo $marker > $vol/remove-add.marker && iptables -N OPERATOR-KEEP 2>/dev/null; iptables -C INPUT -j OPERATOR-KEEP 2>/dev/null || iptables -A INPUT -j OPERATOR-KEEP"
check "marker written on node3:$vol" test -n "$vol"

step "a refused removal: node2's etcd stopped, removing node3 would leave 1 of 2 healthy"
on node2 "systemctl stop etcd"
mk8s refused remove-node "$INV" node3 "${FLAGS[@]}" --yes
rc=$?
check "remove-node refused (exit $rc, not 0)" test "$rc" != 0
check "the refusal names quorum" grep -q "quorum" "$OUT/refused.log"
on node2 "systemctl start etcd"
check "nothing changed: node3 schedulable" test -z "$($KUBECTL get node node3 -o jsonpath='{.spec.unschedulable}')"
sleep 20
check "nothing changed: 3 etcd members" test "$(members "$INV")" = "node1, node2, node3"

step "plan --remove-node node3"
mk8s plan-remove plan --remove-node node3 "$INV" "${FLAGS[@]}"
rc=$?
check "plan --remove-node: exit 3 (changes pending), got $rc" test "$rc" = 3
step "remove-node node3"
mk8s remove remove-node "$INV" node3 "${FLAGS[@]}" --yes -v
check "remove-node exit 0" test $? = 0
grep -E ' (would change|changed|failed)' "$OUT/remove.log" | sed 's/^/   /'

# The inventory without node3, as the operator edits it.
cp "$INV" "$OUT/hosts.ini.full"
grep -vE '^node3( |$)' "$OUT/hosts.ini.full" >"$INV"
check "2 nodes Ready, node3 gone" until_nodes "node1=True node2=True " 5
check "etcd members node1 node2" test "$(members "$INV")" = "node1, node2"
check "no unbound PersistentVolume of node3 left" test -z "$($KUBECTL get pv -l metalk8s.io/node=node3 -o jsonpath='{range .items[?(@.status.phase!="Bound")]}{.metadata.name}{end}')"
check "node3: the marker on its volume" test "$(on node3 "cat $vol/remove-add.marker")" = "$marker"
check "node3: its logical volumes kept" test -n "$(on node3 "lvs --noheadings vg_metalk8s")"
check "node3: /etc/kubernetes gone" test -z "$(on node3 "ls -A /etc/kubernetes 2>/dev/null")"
check "node3: kubelet and etcd stopped" test "$(on node3 "systemctl is-active kubelet etcd" | grep -cx active)" = 0
check "node3: no Kubernetes or flannel chain left" test "$(on node3 "iptables-save | grep -cE 'KUBE-|FLANNEL'")" = 0
check "node3: the operator's chain kept" on node3 "iptables -C INPUT -j OPERATOR-KEEP"
check "node3: no flannel, cni or ipvs link" test -z "$(on node3 "ip -o link | grep -E 'flannel|cni0|kube-ipvs'")"
mk8s verify-2 verify "$INV" --known-hosts "$KNOWN"
check "verify on two nodes: exit 0" test $? = 0
check "the 2-member etcd warned about" grep -q "warning: .*the etcd group has 2 hosts" "$OUT/verify-2.log"

step "add-node node3"
cp "$OUT/hosts.ini.full" "$INV"
mk8s plan-add plan --add-node node3 "$INV" "${FLAGS[@]}"
rc=$?
check "plan --add-node: exit 3, got $rc" test "$rc" = 3
mk8s add add-node "$INV" node3 "${FLAGS[@]}" --yes -v
check "add-node exit 0" test $? = 0
# Steps on node1 and node2 must be add-node's cluster-side ones only
# (pkg/cluster/addnode.go clusterSide) and the check-only ones.
others=$(awk '($2 == "node1" || $2 == "node2") && $4 != "started" {print $3}' "$OUT/add.log" | sort -u)
echo "   steps on node1 and node2: $(echo $others)"
bad=$(echo "$others" | grep -vE '^(preflight/|prepare/time-sync|pki/recover|etcd/pki|etcd/data|control-plane/node-state|workers/node-state|etcd/health|control-plane/pki|control-plane/ready|workers/apiserver-proxy|workers/nodes-ready|volumes/|addons/)' || true)
check "no other step on node1 or node2${bad:+: $(echo $bad)}" test -z "$bad"
# and of those, only cluster-side ones changed anything
changed=$(awk '($2 == "node1" || $2 == "node2") && $4 == "changed" {print $3}' "$OUT/add.log" | sort -u)
echo "   changed on node1 and node2: $(echo $changed)"
bad=$(echo "$changed" | grep -E '^(preflight/|prepare/|etcd/data|control-plane/node-state|workers/node-state)' || true)
check "no check-only step changed anything${bad:+: $(echo $bad)}" test -z "$bad"
check "3 nodes Ready" until_nodes "node1=True node2=True node3=True " 10
check "etcd members node1 node2 node3" test "$(members "$INV")" = "node1, node2, node3"
check "node3's PersistentVolumes back" test -n "$($KUBECTL get pv -l metalk8s.io/node=node3 -o name)"
check "node3: the marker still there" test "$(on node3 "cat $vol/remove-add.marker")" = "$marker"
# The DaemonSets' pods on node3 (Traefik's, flannel's) start after it is
# Ready: verify right away may catch one not ready yet.
$KUBECTL get ds -A -o jsonpath='{range .items[*]}{.metadata.namespace}/{.metadata.name}{"\n"}{end}' | while IFS=/ read -r ns ds; do
	$KUBECTL -n "$ns" rollout status ds "$ds" --timeout 10m >/dev/null
done
mk8s verify-3 verify "$INV" --known-hosts "$KNOWN"
check "verify: exit 0" test $? = 0
step "verify fails, naming the check, with CoreDNS scaled to zero"
replicas=$($KUBECTL -n kube-system get deploy coredns -o jsonpath='{.spec.replicas}')
$KUBECTL -n kube-system scale deploy coredns --replicas 0 >/dev/null
mk8s verify-nodns verify "$INV" --known-hosts "$KNOWN"
rc=$?
check "verify without DNS: exit 1, got $rc" test "$rc" = 1
check "verify names CoreDNS scaled to zero" grep -q "CoreDNS is scaled to zero" "$OUT/verify-nodns.log"
$KUBECTL -n kube-system scale deploy coredns --replicas "${replicas:-2}" >/dev/null
$KUBECTL -n kube-system rollout status deploy coredns --timeout 10m >/dev/null
mk8s plan-after plan "$INV" "${FLAGS[@]}"
check "plan after add-node: exit 0 (no changes)" test $? = 0
on node3 "rm -f $vol/remove-add.marker; iptables -D INPUT -j OPERATOR-KEEP; iptables -X OPERATOR-KEEP" || true

[[ $failed == 0 ]] && echo "remove-add: every check passed" || echo "remove-add: some checks failed"
exit $failed
