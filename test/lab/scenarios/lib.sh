# lib.sh: what the lab's scenarios share; sourced with SCENARIO set (the
# name of the folder under $LAB_DIR that keeps its commands' output).
# Env: BIN (bin/metalk8s), LAB_DIR (.lab), LAB_BUNDLE (.cache/bundle/<v>).
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
cd "$REPO"
BIN=${BIN:-bin/metalk8s}
LAB_DIR=${LAB_DIR:-.lab}
INV=$LAB_DIR/inventory/hosts.ini
KNOWN=$LAB_DIR/inventory/known_hosts
LAB_BUNDLE=${LAB_BUNDLE:-$(ls -d .cache/bundle/v* | tail -1)}
KUBECTL="$LAB_BUNDLE/bin/kubectl --kubeconfig $LAB_DIR/inventory/artifacts/admin.conf --request-timeout 60s"
FLAGS=(--known-hosts "$KNOWN" --bundle "$LAB_BUNDLE")
OUT=$LAB_DIR/$SCENARIO
mkdir -p "$OUT"
export LAB_DIR

failed=0
ok() { echo "ok   $*"; }
fail() {
	echo "FAIL $*"
	failed=1
}
check() { # check WHAT CMD...: ok when CMD succeeds; returns CMD's success
	local what=$1
	shift
	if "$@"; then ok "$what"; else
		fail "$what"
		return 1
	fi
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
# hosts_of GROUP: the hosts the lab's inventory lists under [GROUP], one per line
hosts_of() { awk -v g="[$1]" '$0 == g {a = 1; next} /^\[/ {a = 0} a && NF {print $1}' "$INV"; }
nodes() { $KUBECTL get nodes -o jsonpath='{range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{" "}{end}'; }
# members N: etcd's member list as etcd status prints it ("node1, node2"),
# its whole output in $OUT/etcd-status-N.log. Asked up to 5 times, a
# minute apart, while a member is unhealthy: on the loaded lab, members
# just restarted or joined missed status's 10 s per member (all three
# once, 20 s after one restarted).
members() {
	local i
	for ((i = 1; i <= 5; i++)); do
		"$BIN" etcd status "$INV" --known-hosts "$KNOWN" >"$OUT/etcd-status-$1.log" 2>&1 && break
		echo "   etcd status, try $i: $(grep -c UNHEALTHY "$OUT/etcd-status-$1.log") unhealthy ($OUT/etcd-status-$1.log)" >&2
		cp "$OUT/etcd-status-$1.log" "$OUT/etcd-status-$1.try$i.log"
		((i < 5)) && sleep 60
	done
	sed -n 's/^members: //p' "$OUT/etcd-status-$1.log"
}
# until_ok MINUTES CMD...: CMD succeeds within MINUTES (tried every 10 s)
until_ok() {
	local i n=$(($1 * 6))
	shift
	for ((i = 0; i < n; i++)); do
		"$@" 2>/dev/null && return 0
		sleep 10
	done
	return 1
}
nodes_are() { [[ "$(nodes)" == "$1" ]]; }
until_nodes() { # until_nodes WANT MINUTES
	until_ok "$2" nodes_are "$1" && return 0
	echo "   nodes: $(nodes)"
	return 1
}

# host_reset NODE: what remove-node and reset leave on a host they reached: the
# operator's marker, chain and logical volumes, nothing of Kubernetes'.
host_reset() {
	local n=$1
	if [[ -n ${vol[$n]} ]]; then
		check "$n: the marker on its volume" test "$(on "$n" "cat ${vol[$n]}/scenario.marker")" = "${marker[$n]}"
		check "$n: its logical volumes kept" test -n "$(on "$n" "lvs --noheadings vg_metalk8s")"
	fi
	check "$n: /etc/kubernetes gone" test -z "$(on "$n" "ls -A /etc/kubernetes 2>/dev/null")"
	check "$n: kubelet and etcd stopped" test "$(on "$n" "systemctl is-active kubelet etcd" | grep -cx active)" = 0
	check "$n: no Kubernetes or flannel chain left" test "$(on "$n" "iptables-save | grep -cE 'KUBE-|FLANNEL'")" = 0
	check "$n: the operator's chain kept" on "$n" "iptables -C INPUT -j OPERATOR-KEEP"
	check "$n: no flannel, cni or ipvs link" test -z "$(on "$n" "ip -o link | grep -E 'flannel|cni0|kube-ipvs'")"
}
# mark NODE: a file on one of NODE's volumes (a worker's: the others
# have none) and a firewall chain of the operator's own, both to outlive
# remove-node.
declare -A vol marker
mark() {
	local n=$1
	chain "$n"
	if ! hosts_of kube-node | grep -qx "$n"; then
		echo "   $n: not in kube-node, no volume of its own"
		return
	fi
	vol[$n]=$(on "$n" "findmnt -rn -o TARGET | grep '^/mnt/vg_metalk8s/' | head -1")
	check "a volume mounted on $n: ${vol[$n]}" test -n "${vol[$n]}" || return
	marker[$n]="metalk8s-$(date +%s)-$RANDOM"
	on "$n" "echo ${marker[$n]} > ${vol[$n]}/scenario.marker"
}
# chain NODE: the operator's firewall chain OPERATOR-KEEP, jumped to from
# INPUT (again after a reboot, as the operator's own firewall would).
chain() {
	on "$1" "iptables -N OPERATOR-KEEP 2>/dev/null; iptables -C INPUT -j OPERATOR-KEEP 2>/dev/null || iptables -A INPUT -j OPERATOR-KEEP"
}
# rollout: wait for every DaemonSet (Traefik's, flannel's) to be ready on
# a node just joined, and every Deployment to be available again after a
# node left (metrics-server's pod made anew elsewhere: its APIService is
# not Available until it serves), so verify does not catch one starting.
rollout() {
	local kind ns name
	for kind in ds deploy; do
		$KUBECTL get "$kind" -A -o jsonpath='{range .items[*]}{.metadata.namespace}/{.metadata.name}{"\n"}{end}' | while IFS=/ read -r ns name; do
			$KUBECTL -n "$ns" rollout status "$kind" "$name" --timeout 10m >/dev/null
		done
	done
	# The API aggregator marks metrics-server's APIService Available
	# after its own probe (every 30 s or so).
	$KUBECTL wait apiservice --all --for condition=Available --timeout 3m >/dev/null 2>&1 || true
}
# verify_ok NAME WHAT: metalk8s verify passes, its volume check among
# them, and leaves no volume claimed; if not, the pods' places and
# metrics-server's log go to $OUT/NAME.diag.
verify_ok() {
	mk8s "$1" verify "$INV" --known-hosts "$KNOWN"
	local rc=$?
	check "$2: the volume written and read" grep -qE '^volume-write-read +pass' "$OUT/$1.log"
	check "$2: no volume left claimed by verify" test -z "$($KUBECTL get pv -o jsonpath='{range .items[*]}{.spec.claimRef.namespace}{"\n"}{end}' | grep metalk8s-verify)"
	if ! check "$2: exit 0" test $rc = 0; then
		{
			$KUBECTL get pods -A -o wide
			$KUBECTL -n kube-system logs deploy/metrics-server --tail 40
		} >"$OUT/$1.diag" 2>&1
		echo "   pods and metrics-server's log: $OUT/$1.diag"
	fi
}
