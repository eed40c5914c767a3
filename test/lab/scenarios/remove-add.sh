#!/usr/bin/env bash
# remove-add.sh: issue 18's day-2 scenarios on a running lab cluster (after
# `make demo`; node1 and node2 control planes, etcd members and workers,
# node3 an etcd member and worker):
#  1. a refused removal (etcd quorum) changes nothing;
#  2. remove-node node2 (control plane, etcd member, worker) leaves a healthy
#     2-member etcd, node3's API proxy without node2, node2's volumes and
#     data intact; add-node node2 brings it back in all its roles, touching
#     only the cluster-side steps on node1 and node3;
#  3. node3 powered off is removed with --unreachable; powered on again, a
#     second remove-node cleans it up;
#  4. node3 comes back as a worker only, is removed and added back as one;
#  5. verify fails naming CoreDNS scaled to zero; a plan has nothing to do;
#  6. node3 removed again and added back in all its roles (the members'
#     etcd/member, recorded with the other [etcd], checked again), and a
#     final plan on the full inventory has nothing to do: the lab is left
#     as the scenario found it, ready for another run.
# On the light lab (LAB_CONTROL_PLANES=1 LAB_ETCD_MEMBERS=1: node1 the one
# control plane and etcd member, node2 and node3 workers) steps 1 and 2,
# which need three members and two control planes, are skipped and said so
# (and 6, which would repeat 4).
# With LAB_KUBE_NODES="2 3" (node1 a control plane and etcd member only,
# not a worker: its emulated CPUs left to the API and etcd) every step runs.
#
#   test/lab/scenarios/remove-add.sh     (make lab-remove-add)
#
# Env: BIN (bin/metalk8s), LAB_DIR (.lab), LAB_BUNDLE (.cache/bundle/<v>).
# Prints each check as "ok ..." or "FAIL ..."; exits 1 if any failed.
SCENARIO=remove-add
. "$(dirname "$0")/lib.sh"

# A drain on the emulated nodes: the kubelet's StopContainer calls hit
# containerd's deadline on a loaded node, and a first run's drain of node2
# outlasted the default 5 minutes (a re-run resumed and took 4m22s), a
# later one 15 (remove() below runs it again then): CoreDNS's containers
# had exited, but containerd did not report them stopped. Pods whose
# deletion is 3 minutes old no longer hold the drain (kubectl drain's
# --skip-wait-for-delete-timeout): node2's reset stops them.
DRAIN=(--drain-timeout 15m --skip-wait-for-delete-timeout 3m)

# remove NAME ARGS...: mk8s NAME remove-node ARGS...; when that stopped at
# its drain (pods still terminating on a loaded emulated node), once more,
# as an operator would: the re-run resumes (issue 18). Returns the last
# run's code.
remove() {
	local name=$1 rc
	shift
	mk8s "$name" remove-node "$@"
	rc=$?
	if ((rc != 0)) && awk '$3 ~ /^remove\/drain\// && $4 == "failed" {f = 1} END {exit !f}' "$OUT/$name.log"; then
		echo "   the drain did not finish ($(grep -m1 -oE 'remove/drain/[^ ]+ +failed.*' "$OUT/$name.log" | cut -c1-160)); remove-node again, which resumes"
		mk8s "$name-resumed" remove-node "$@"
		rc=$?
	fi
	return $rc
}
# inv_without HOST...: the full inventory without HOST, as the operator
# edits it after remove-node.
inv_without() {
	local re
	re=$(IFS='|' && echo "$*")
	grep -vE "^($re)( |\$)" "$OUT/hosts.ini.full" >"$INV"
}
# inv_worker HOST: the full inventory with HOST in [kube-node] only.
inv_worker() {
	awk -v h="$1" '/^\[/ {sec = $0} !(($1 == h) && (sec == "[kube-master]" || sec == "[etcd]"))' "$OUT/hosts.ini.full" >"$INV"
}
# only_cluster_side LOG HOST...: add-node's steps on HOST (a node already in
# the cluster) are only its cluster-side ones (pkg/cluster/addnode.go
# clusterSide) and the check-only ones, and of those only cluster-side
# ones changed anything. etcd/member on the members that stay is checked
# again, read-only, when the inventory's [etcd] differs from the one the
# journal recorded it with (node3 back as a worker only: Recheck in
# pkg/steps/run.go).
only_cluster_side() {
	local log=$1 others changed bad
	shift
	local hosts=" $* "
	others=$(awk -v hs="$hosts" 'index(hs, " " $2 " ") && $4 != "started" {print $3}' "$log" | sort -u)
	echo "   steps on $*: $(echo $others)"
	bad=$(echo "$others" | grep -vE '^(preflight/|prepare/time-sync|pki/recover|etcd/pki|etcd/data|control-plane/node-state|workers/node-state|etcd/health|control-plane/pki|control-plane/ready|workers/apiserver-proxy|workers/nodes-ready|volumes/|addons/|etcd/member)' || true)
	check "no other step on $*${bad:+: $(echo $bad)}" test -z "$bad"
	changed=$(awk -v hs="$hosts" 'index(hs, " " $2 " ") && $4 == "changed" {print $3}' "$log" | sort -u)
	echo "   changed on $*: $(echo $changed)"
	bad=$(echo "$changed" | grep -E '^(preflight/|prepare/|etcd/data|etcd/member|control-plane/node-state|workers/node-state)' || true)
	check "no check-only step changed anything${bad:+: $(echo $bad)}" test -z "$bad"
}
# stop: the rest depends on the command that just failed: the full
# inventory back in place, and an end.
stop() {
	cp "$OUT/hosts.ini.full" "$INV"
	echo "remove-add: stopped (the rest depends on that command; the lab's inventory is the full one again)"
	exit 1
}
# roles NODE: NODE's roles in the lab's inventory ("control plane, etcd member, worker")
roles() {
	local r=()
	hosts_of kube-master | grep -qx "$1" && r+=("control plane")
	hosts_of etcd | grep -qx "$1" && r+=("etcd member")
	hosts_of kube-node | grep -qx "$1" && r+=(worker)
	local IFS=,
	echo "${r[*]}" | sed 's/,/, /g'
}
# proxies NODE: the API servers NODE's apiserver proxy lists (haproxy.cfg)
proxies() { on "$1" "awk '\$1 == \"server\" {print \$2}' /etc/kubernetes/apiserver-proxy/haproxy.cfg | sort | xargs"; }

step "preconditions"
cp "$INV" "$OUT/hosts.ini.full"
check "3 nodes Ready" until_nodes "node1=True node2=True node3=True " 10
etcd0=$(members 0)
cps=$(hosts_of kube-master | xargs)
case "$etcd0/$cps" in
"node1, node2, node3/node1 node2") full=1 rest="node1, node2" rest_cps="node1 node2" ;;
"node1/node1") full=0 rest=node1 rest_cps=node1 ;;
*) fail "etcd members $etcd0, control planes $cps: neither the full lab's (node1, node2, node3; node1 node2) nor the light one's (node1; node1)" && exit 1 ;;
esac
ok "etcd members $etcd0; control planes $cps"
((full)) && mark node2
mark node3
echo "   node3's API proxy: $(proxies node3)"

if ((!full)); then
	step "1. and 2. skipped: the light lab has one etcd member and one control plane (make demo's lab has them)"
else
step "1. a refused removal: node3's etcd stopped, removing node2 would leave 1 of 2 healthy"
on node3 "systemctl stop etcd"
mk8s refused remove-node "$INV" node2 "${FLAGS[@]}" "${DRAIN[@]}" --yes
rc=$?
check "remove-node refused (exit $rc, not 0)" test "$rc" != 0
check "the refusal names quorum" grep -q "quorum" "$OUT/refused.log"
on node3 "systemctl start etcd"
check "nothing changed: node2 schedulable" test -z "$($KUBECTL get node node2 -o jsonpath='{.spec.unschedulable}')"
sleep 20
check "nothing changed: 3 etcd members" test "$(members 1)" = "node1, node2, node3"

step "2. remove-node node2 ($(roles node2))"
mk8s plan-remove plan --remove-node node2 "$INV" "${FLAGS[@]}"
rc=$?
check "plan --remove-node: exit 3 (changes pending), got $rc" test "$rc" = 3
remove remove "$INV" node2 "${FLAGS[@]}" "${DRAIN[@]}" --yes -v
check "remove-node exit 0" test $? = 0 || stop
grep -E ' (would change|changed|failed)' "$OUT/remove.log" | sed 's/^/   /'
inv_without node2
check "2 nodes Ready, node2 gone" until_nodes "node1=True node3=True " 5
check "etcd members node1 node3" test "$(members 2)" = "node1, node3"
check "no unbound PersistentVolume of node2 left" test -z "$($KUBECTL get pv -l metalk8s.io/node=node2 -o jsonpath='{range .items[?(@.status.phase!="Bound")]}{.metadata.name}{end}')"
check "node3's API proxy without node2 ($(proxies node3))" test "$(proxies node3)" = "node1"
host_reset node2
verify_ok verify-2 "verify on two nodes"
check "the 2-member etcd warned about" grep -q "warning: .*the etcd group has 2 hosts" "$OUT/verify-2.log"

step "2. add-node node2 in all its roles"
cp "$OUT/hosts.ini.full" "$INV"
mk8s plan-add plan --add-node node2 "$INV" "${FLAGS[@]}"
rc=$?
check "plan --add-node: exit 3, got $rc" test "$rc" = 3
mk8s add add-node "$INV" node2 "${FLAGS[@]}" --yes -v
check "add-node exit 0" test $? = 0 || stop
only_cluster_side "$OUT/add.log" node1 node3
check "3 nodes Ready" until_nodes "node1=True node2=True node3=True " 10
check "etcd members node1 node2 node3" test "$(members 3)" = "node1, node2, node3"
[[ -z ${vol[node2]:-} ]] || check "node2's PersistentVolumes back" test -n "$($KUBECTL get pv -l metalk8s.io/node=node2 -o name)"
[[ -z ${vol[node2]:-} ]] || check "node2: the marker still there" test "$(on node2 "cat ${vol[node2]}/scenario.marker")" = "${marker[node2]}"
check "node3's API proxy with node2 again ($(proxies node3))" test "$(proxies node3)" = "node1 node2"
rollout
verify_ok verify-3 "verify"
fi

step "3. node3 powered off, removed with --unreachable"
test/lab/lab.sh poweroff 3
remove remove-unreachable "$INV" node3 "${FLAGS[@]}" "${DRAIN[@]}" --yes --unreachable -v
check "remove-node --unreachable exit 0" test $? = 0 || stop
check "the steps on node3 listed as skipped" grep -q "^skipped on node3: .*(unreachable)" "$OUT/remove-unreachable.log"
check "no step ran on node3" test -z "$(awk '$2 == "node3"' "$OUT/remove-unreachable.log")"
inv_without node3
check "2 nodes Ready, node3 gone" until_nodes "node1=True node2=True " 5
check "etcd members $rest" test "$(members 4)" = "$rest"
rollout
verify_ok verify-4 "verify without node3"
step "3. node3 powered on: a second remove-node resets it"
test/lab/lab.sh poweron 3
chain node3 # the operator's firewall, restored at boot by their own means
cp "$OUT/hosts.ini.full" "$INV"
remove remove-again "$INV" node3 "${FLAGS[@]}" "${DRAIN[@]}" --yes -v
check "remove-node on the returned node3: exit 0" test $? = 0 || stop
grep -E ' (changed|failed)' "$OUT/remove-again.log" | sed 's/^/   /'
inv_without node3
check "2 nodes Ready, node3 gone" until_nodes "node1=True node2=True " 5
check "etcd members $rest" test "$(members 5)" = "$rest"
host_reset node3

step "4. node3 back as a worker only"
inv_worker node3
mk8s add-worker add-node "$INV" node3 "${FLAGS[@]}" --yes -v
check "add-node (worker) exit 0" test $? = 0 || stop
only_cluster_side "$OUT/add-worker.log" node1 node2
check "3 nodes Ready" until_nodes "node1=True node2=True node3=True " 10
check "etcd members still $rest" test "$(members 6)" = "$rest"
check "node3: no etcd" test "$(on node3 "systemctl is-active etcd")" != active
check "node3's API proxy lists $rest_cps ($(proxies node3))" test "$(proxies node3)" = "$rest_cps"
step "4. remove-node node3 (worker only)"
remove remove-worker "$INV" node3 "${FLAGS[@]}" "${DRAIN[@]}" --yes -v
check "remove-node (worker) exit 0" test $? = 0 || stop
check "no etcd member step" test -z "$(grep -E 'remove/etcd-(member|quorum)' "$OUT/remove-worker.log")"
inv_without node3
check "2 nodes Ready, node3 gone" until_nodes "node1=True node2=True " 5
check "etcd members $rest" test "$(members 7)" = "$rest"
host_reset node3
step "4. add-node node3 (worker only) again"
inv_worker node3
mk8s add-worker2 add-node "$INV" node3 "${FLAGS[@]}" --yes -v
check "add-node (worker) again: exit 0" test $? = 0 || stop
only_cluster_side "$OUT/add-worker2.log" node1 node2
check "3 nodes Ready" until_nodes "node1=True node2=True node3=True " 10
check "node3's PersistentVolumes back" test -n "$($KUBECTL get pv -l metalk8s.io/node=node3 -o name)"
[[ -z ${vol[node3]:-} ]] || check "node3: the marker still there" test "$(on node3 "cat ${vol[node3]}/scenario.marker")" = "${marker[node3]}"
rollout
verify_ok verify-5 "verify with node3 a worker"

step "5. verify fails, naming the check, with CoreDNS scaled to zero"
replicas=$($KUBECTL -n kube-system get deploy coredns -o jsonpath='{.spec.replicas}')
$KUBECTL -n kube-system scale deploy coredns --replicas 0 >/dev/null
mk8s verify-nodns verify "$INV" --known-hosts "$KNOWN"
rc=$?
check "verify without DNS: exit 1, got $rc" test "$rc" = 1
check "verify names CoreDNS scaled to zero" grep -q "CoreDNS is scaled to zero" "$OUT/verify-nodns.log"
$KUBECTL -n kube-system scale deploy coredns --replicas "${replicas:-2}" >/dev/null
$KUBECTL -n kube-system rollout status deploy coredns --timeout 10m >/dev/null
mk8s plan-after plan "$INV" "${FLAGS[@]}"
check "plan after the scenarios: exit 0 (no changes)" test $? = 0

if ((full)); then
	step "6. node3 back in all its roles (etcd member, worker)"
	remove remove-worker3 "$INV" node3 "${FLAGS[@]}" "${DRAIN[@]}" --yes -v
	check "remove-node (worker) exit 0" test $? = 0 || stop
	host_reset node3
	cp "$OUT/hosts.ini.full" "$INV"
	mk8s add-full add-node "$INV" node3 "${FLAGS[@]}" --yes -v
	check "add-node (all roles) exit 0" test $? = 0 || stop
	# The journal recorded node1's and node2's etcd/member with [etcd]
	# node1, node2: checked again, read-only (Recheck, pkg/steps/run.go).
	check "node1's and node2's etcd members checked again, unchanged" \
		test "$(grep -cE '^[0-9:]+ +node[12] +etcd/member +ok' "$OUT/add-full.log")" = 2
	only_cluster_side "$OUT/add-full.log" node1 node2
	check "3 nodes Ready" until_nodes "node1=True node2=True node3=True " 10
	check "etcd members node1, node2, node3" test "$(members 8)" = "node1, node2, node3"
	[[ -z ${vol[node3]:-} ]] || check "node3: the marker still there" test "$(on node3 "cat ${vol[node3]}/scenario.marker")" = "${marker[node3]}"
	rollout
	verify_ok verify-6 "verify with node3 in all its roles"
	mk8s plan-full plan "$INV" "${FLAGS[@]}"
	check "plan with the full inventory: exit 0 (no changes)" test $? = 0
else
	cp "$OUT/hosts.ini.full" "$INV"
fi

for n in "${!vol[@]}"; do
	on "$n" "rm -f ${vol[$n]}/scenario.marker; iptables -D INPUT -j OPERATOR-KEEP; iptables -X OPERATOR-KEEP" || true
done

[[ $failed == 0 ]] && echo "remove-add: every check passed" || echo "remove-add: some checks failed"
exit $failed
