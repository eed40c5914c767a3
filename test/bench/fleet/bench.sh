#!/usr/bin/env bash
# bench.sh — metalk8s against ansible-playbook, the same six read-only
# checks on the same N real sshd hosts (test/fleet), alternated ROUNDS
# times; prints each tool's median wall time and the ratio. Then the
# 1000-host graph benchmark and the peak RSS of `metalk8s plan` on the fleet.
#
#   test/bench/fleet/bench.sh [N [ROUNDS]]     (N=100, ROUNDS=3; needs root)
#
# Both tools log in as the fleet's plain user (mk8s): root's shell startup on
# a dev machine (pyenv in ~/.bashrc) would otherwise be what is measured.
# Ansible: gather_facts false, forks 50, pipelining on, ControlPersist on
# (warmed by the first round, as in daily use), changed_when false.
set -euo pipefail

N=${1:-100}
ROUNDS=${2:-3}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
export PATH=/usr/local/go/bin:$PATH
W=$(mktemp -d /tmp/mk8s-bench.XXXXXX)
chmod 755 "$W" # sshd reads the fleet's authorized_keys as the plain user
FLEET=$W/fleet
export FLEET_PREFIX=mk8sb FLEET_NET=78
export SSH_AUTH_SOCK= # the inventory names the key; an agent would only add tries

log() { printf 'bench: %s\n' "$*" >&2; }
cleanup() { "$REPO/test/fleet/fleet.sh" down "$FLEET" >/dev/null 2>&1 || true; rm -rf "$W"; }
trap cleanup EXIT

command -v ansible-playbook >/dev/null || { log "ansible-playbook missing: make deps"; exit 1; }
log "building"
(cd "$REPO" && make -s build >/dev/null && go build -o "$W/checks" ./test/bench/fleet/checks)

log "starting $N sshd hosts"
"$REPO/test/fleet/fleet.sh" up "$FLEET" "$N" >/dev/null

# Only the plain hosts, as the unprivileged user; groups for `plan`.
{
	sed -n '/^\[fleet\]/,/^$/p' "$FLEET/hosts.ini" | sed 's/ansible_user=root/ansible_user=mk8s/'
	printf '\n[kube-master]\nnode-001\n\n[etcd]\nnode-001\n\n[kube-node:children]\nfleet\n'
	# plan needs a bundle: a manifest of this release's binaries and core
	# images (never fetched: plan reads, the hosts fail its checks), the
	# addons off (their images are not listed).
	printf '\n[all:vars]\nmetalk8s_bundle=%s\n' "$W/bundle"
	for a in metrics_server traefik headlamp monitoring logging; do printf 'metalk8s_%s_enabled=false\n' "$a"; done
} >"$W/hosts.ini"
mkdir -p "$W/bundle"
{
	printf '{"versions":{"kube":"%s"},"files":[' "$("$REPO/bin/metalk8s" bundle versions | sed -n 's/^KUBE_VERSION=//p')"
	sep=
	for f in kubeadm kubelet kubectl containerd runc crictl cni-plugins etcd node_exporter; do
		printf '%s{"name":"%s","path":"bin/%s","sha256":"%064d","size":1}' "$sep" "$f" "$f" 0
		sep=,
	done
	printf '],"images":['
	"$REPO/bin/metalk8s" bundle versions | sed -n 's/^IMAGE=//p' | awk '{printf "%s{\"name\":\"%s\",\"digest\":\"sha256:0\"}", (NR > 1 ? "," : ""), $0}'
	printf '],"image_archive":"images.tar"}\n'
} >"$W/bundle/manifest.json"

cat >"$W/playbook.yml" <<'EOF'
- hosts: fleet
  gather_facts: false
  tasks:
    - {name: os-release, command: cat /etc/os-release, changed_when: false}
    - {name: module, shell: "if [ -d /sys/module/overlay ]; then echo loaded; else echo absent; fi", changed_when: false}
    - {name: sysctl, command: /usr/sbin/sysctl -n net.ipv4.ip_forward, changed_when: false}
    - {name: package, command: "dpkg-query -W -f=${Status} openssh-server", changed_when: false}
    - {name: stat, command: stat -c %s /etc/hostname, changed_when: false}
    - {name: sha256, command: sha256sum /etc/ssh/sshd_config, changed_when: false}
EOF
sed -e "s|^inventory = .*|inventory = $W/hosts.ini\nforks = 50|" -e 's|^\[ssh_connection\]|[ssh_connection]\npipelining = True|' \
	"$FLEET/ansible.cfg" >"$W/ansible.cfg"
export ANSIBLE_CONFIG=$W/ansible.cfg

# secs CMD...: run, print the wall time in seconds; fail loudly.
secs() {
	local t0=$EPOCHREALTIME out
	if ! out=$("$@" 2>&1); then
		printf '%s\n' "$out" | tail -n 20 >&2
		log "FAILED: $*"
		exit 1
	fi
	echo "$(((${EPOCHREALTIME/./} - ${t0/./}) / 1000))"
}

mk=() an=()
for ((r = 1; r <= ROUNDS; r++)); do
	mk+=("$(secs "$W/checks" -i "$W/hosts.ini" -known-hosts "$FLEET/known_hosts" -group fleet -forks 50)")
	an+=("$(secs ansible-playbook "$W/playbook.yml")")
	log "round $r: metalk8s ${mk[-1]} ms, ansible-playbook ${an[-1]} ms"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : int((a[NR/2] + a[NR/2+1]) / 2)}'; }
m=$(median "${mk[@]}") a=$(median "${an[@]}")

rss=$(/usr/bin/time -f '%M' "$REPO/bin/metalk8s" plan "$W/hosts.ini" --known-hosts "$FLEET/known_hosts" --forks 50 2>&1 >/dev/null | tail -n 1) || true

log "graph benchmark (1000 hosts)"
graph=$(cd "$REPO" && go test ./pkg/cluster -run '^$' -bench Graph1000 -benchmem -benchtime 5x | awk '/^BenchmarkGraph1000/ {printf "%.0f ms/op, %.1f MB/op, %s allocs/op", $3/1e6, $5/1e6, $7}')

printf '\n%-34s %12s %s\n' "six checks on $N hosts ($ROUNDS rounds)" "median" "runs (ms)"
div() { awk -v a="$1" -v b="$2" 'BEGIN {print a / b}'; }
printf '%-34s %9.2f s  %s\n' "metalk8s (steps, plan mode)" "$(div "$m" 1000)" "${mk[*]}"
printf '%-34s %9.2f s  %s\n' "ansible-playbook (forks 50)" "$(div "$a" 1000)" "${an[*]}"
printf '%-34s %9.1fx\n' "ratio ansible / metalk8s" "$(div "$a" "$m")"
printf '%-34s %s\n' "graph for 1000 hosts" "$graph"
printf '%-34s %.0f MB\n' "peak RSS of metalk8s plan ($N hosts)" "$(div "${rss:-0}" 1024)"
