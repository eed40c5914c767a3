#!/usr/bin/env bash
# lab.sh — the metalk8s VM lab: N real Debian 12 VMs as cluster nodes, under
# QEMU with software emulation (TCG), on this machine. Needs root.
#
#   lab.sh deps           install the host packages the lab needs (if missing)
#   lab.sh build          build the VM image, unless the cache has it
#   lab.sh up [N]         boot N nodes (default 3), write the inventory, wait for SSH
#   lab.sh down           stop every VM of the lab and remove its network (idempotent)
#   lab.sh ssh I [CMD..]  SSH into node I (1-based), host key verified
#   lab.sh poweroff I     power node I off (ACPI), keeping its disks
#   lab.sh poweron I      boot node I again on its disks
#   lab.sh status         show each node's VM and SSH state (exit 1 if one is down)
#   lab.sh clock [check]  set every node's clock from this machine's again (or
#                         only measure how far off it is); `up` sets them once
#
# Layout (paths under LAB_DIR, default REPO/.lab):
#   inventory/hosts.ini, inventory/group_vars/all.yml, inventory/known_hosts
#   ssh_config            `ssh -F .lab/ssh_config node1`
#   keys/                 the client key (id_ed25519) and each node's host key
#   run/nodeI/            overlay and data disks, console.log, qemu.pid, fw_cfg files
#   lab.env               what `up` started (read by down, ssh, status)
# The image is cached in LAB_CACHE (default REPO/.cache/lab)/KEY/, where KEY
# hashes image.sh, packages and guest/ (see image_key).
#
# Network: node I has two NICs.
#   user  QEMU user-mode network, restricted (the guest reaches nothing through
#         it); it only carries the host's loopback forwards
#         127.0.0.1:(LAB_SSH_PORT+I) -> :22 and 127.0.0.1:(LAB_API_PORT+I) -> :6443.
#   lab   a tap on bridge br0 inside the lab's own network namespace LAB_NAME:
#         node I is 10.10.0.(10+I)/24, default route via the bridge (10.10.0.1),
#         which leads nowhere. `ip netns exec LAB_NAME ssh root@10.10.0.11` works
#         (with the lab key and known_hosts).
#
# Environment (defaults in brackets):
#   LAB_DIR [REPO/.lab]  LAB_CACHE [REPO/.cache/lab]
#   LAB_NAME [mk8slab]   netns name, tap prefix and the marker in QEMU's command
#                        line; [a-z][a-z0-9]{0,9}. Labs of distinct names and
#                        ports can run side by side.
#   LAB_SSH_PORT [2220]  LAB_API_PORT [6440]   forward bases (node I: base+I)
#   LAB_MEM [3072] MiB   LAB_CPUS [1]   LAB_DISK_SIZE [80G] (/dev/vdb, /dev/vdc; sparse)
#   LAB_CONTROL_PLANES [2]  how many of the first nodes are control planes
#   LAB_ETCD_MEMBERS [3]    how many of the first nodes are etcd members (with 3+ nodes)
#   LAB_CONTROL_PLANE_WORKERS [1]  0: control planes are not workers (kept
#                        out of kube-node, so kubeadm's taint stays and the
#                        addons' pods run elsewhere)
#   LAB_KUBE_NODES       the nodes in kube-node, by number ("2 3"); overrides
#                        LAB_CONTROL_PLANE_WORKERS
#   LAB_BOOT_TIMEOUT [600] seconds for all nodes to answer SSH
#   LAB_KEEP=1           leave the VMs running when `up` fails (to debug them)
#   LAB_ACCEL [tcg]  LAB_CPU_MODEL [max,svm=off,vmx=off,la57=off]
#   LAB_MACHINE [q35 without SATA, SMBus, PS/2, USB]  LAB_APPEND (kernel args)
#                        QEMU settings, for experiments. KVM is not the default:
#                        a stock kernel does not boot on this kind of machine's.
set -euo pipefail

SELF=$(readlink -f "${BASH_SOURCE[0]}")
HERE=$(dirname "$SELF")
REPO=$(cd "$HERE/../.." && pwd)

LAB_DIR=${LAB_DIR:-$REPO/.lab}
LAB_CACHE=${LAB_CACHE:-$REPO/.cache/lab}
LAB_NAME=${LAB_NAME:-mk8slab}
LAB_SSH_PORT=${LAB_SSH_PORT:-2220}
LAB_API_PORT=${LAB_API_PORT:-6440}
LAB_MEM=${LAB_MEM:-3072}
LAB_CPUS=${LAB_CPUS:-1}
LAB_CONTROL_PLANES=${LAB_CONTROL_PLANES:-2}
LAB_ETCD_MEMBERS=${LAB_ETCD_MEMBERS:-3}
LAB_CONTROL_PLANE_WORKERS=${LAB_CONTROL_PLANE_WORKERS:-1}
LAB_DISK_SIZE=${LAB_DISK_SIZE:-80G}
LAB_BOOT_TIMEOUT=${LAB_BOOT_TIMEOUT:-600}
LAB_SUITE=${LAB_SUITE:-bookworm}
LAB_ACCEL=${LAB_ACCEL:-tcg}
LAB_CPU_MODEL=${LAB_CPU_MODEL:-max,svm=off,vmx=off,la57=off}
LAB_MACHINE=${LAB_MACHINE:-q35,sata=off,smbus=off,i8042=off,usb=off,vmport=off,graphics=off}
SUBNET=10.10.0 # inside the lab's netns only
MAX_NODES=9

INV=$LAB_DIR/inventory
KEYS=$LAB_DIR/keys
RUN=$LAB_DIR/run
CLIENT_KEY=$KEYS/id_ed25519
KNOWN_HOSTS=$INV/known_hosts
T0=$EPOCHREALTIME

log() { printf '[lab %6.1fs] %s\n' "$(elapsed "$T0")" "$*" >&2; }
die() { printf 'lab: ERROR: %s\n' "$*" >&2; exit 1; }
# elapsed T: seconds since the $EPOCHREALTIME value T, with one decimal.
elapsed() { local now=$EPOCHREALTIME; echo "$(((${now/./} - ${1/./}) / 1000000)).$(((${now/./} - ${1/./}) / 100000 % 10))"; }
usage() { awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$SELF" >&2; exit 2; }
need_root() { [[ $(id -u) == 0 ]] || die "the lab needs root (QEMU taps, network namespaces, mmdebstrap)"; }

[[ $LAB_NAME =~ ^[a-z][a-z0-9]{0,9}$ ]] || die "LAB_NAME '$LAB_NAME' must match [a-z][a-z0-9]{0,9}"

# The unique marker in every QEMU command line of this lab: `down` finds the
# lab's VMs by it even when their pid files are gone.
marker() { echo "guest=metalk8s-lab:$LAB_NAME:node$1"; }
tap_name() { echo "${LAB_NAME}t$1"; }
ssh_port() { echo $((LAB_SSH_PORT + $1)); }
api_port() { echo $((LAB_API_PORT + $1)); }
node_addr() { echo "$SUBNET.$((10 + $1))"; }

# --- deps ---------------------------------------------------------------------

# command:package pairs of what the lab runs on the host
DEPS=(qemu-system-x86_64:qemu-system-x86 qemu-img:qemu-utils mmdebstrap:mmdebstrap
	mkfs.ext4:e2fsprogs ssh:openssh-client ssh-keygen:openssh-client ip:iproute2
	ss:iproute2 flock:util-linux pgrep:procps python3:python3-minimal)

missing_debs() {
	local d
	for d in "${DEPS[@]}"; do command -v "${d%%:*}" >/dev/null || echo "${d#*:}"; done | sort -u
}

cmd_deps() {
	local missing
	missing=$(missing_debs | tr '\n' ' ')
	[[ -z ${missing// /} ]] && return 0
	need_root
	log "installing $missing"
	apt-get update -qq
	# shellcheck disable=SC2086 # word splitting intended
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

# --- image --------------------------------------------------------------------

# image_key: the cache key of the image, a hash of its whole recipe.
image_key() {
	{
		echo "suite=$LAB_SUITE root_size=${LAB_ROOT_SIZE:-8G}"
		cat "$HERE/image.sh" "$HERE/packages"
		(cd "$HERE" && find guest -type f | LC_ALL=C sort | while read -r f; do
			if [[ -x $f ]]; then echo "== $f (executable)"; else echo "== $f"; fi
			cat "$f"
		done)
	} | sha256sum | cut -c1-16
}

image_dir() { echo "$LAB_CACHE/$(image_key)"; }

cmd_build() {
	need_root
	cmd_deps
	local key dir
	key=$(image_key)
	dir=$LAB_CACHE/$key
	[[ -f $dir/ok ]] && { log "image $key: cached in $dir"; return 0; }
	mkdir -p "$LAB_CACHE"
	exec 8>"$LAB_CACHE/.lock"
	flock 8 # one build at a time; a concurrent build of the same key is reused
	if [[ ! -f $dir/ok ]]; then
		local t0=$EPOCHREALTIME
		log "image $key: building (mmdebstrap from the host's Debian sources)"
		rm -rf "$dir.partial"
		LAB_SUITE=$LAB_SUITE LAB_DEB_CACHE=$LAB_CACHE/debs "$HERE/image.sh" "$dir.partial"
		touch "$dir.partial/ok"
		rm -rf "$dir"
		mv "$dir.partial" "$dir"
		log "image $key: built in $(elapsed "$t0")s ($(du -sh "$dir/root.img" | cut -f1) on disk)"
		# Older images: a running VM keeps its backing file open, so removing
		# them here harms nothing.
		local old
		for old in "$LAB_CACHE"/*; do
			[[ -d $old && $(basename "$old") =~ ^[0-9a-f]{16}(\.partial)?$ && $old != "$dir" ]] || continue
			log "removing old image $(basename "$old")"
			rm -rf "$old"
		done
	fi
	exec 8>&-
}

# --- keys ---------------------------------------------------------------------

# make_keys N: the client key and N host keys, made once and kept, so that
# known_hosts stays the same from one `up` to the next.
make_keys() {
	local n=$1 i
	mkdir -p "$KEYS"
	chmod 700 "$KEYS"
	[[ -f $CLIENT_KEY ]] || ssh-keygen -q -t ed25519 -N '' -C "metalk8s-lab" -f "$CLIENT_KEY"
	for ((i = 1; i <= n; i++)); do
		[[ -f $KEYS/node$i/ssh_host_ed25519_key ]] && continue
		mkdir -p "$KEYS/node$i"
		ssh-keygen -q -t ed25519 -N '' -C "root@node$i" -f "$KEYS/node$i/ssh_host_ed25519_key"
	done
}

# --- network ------------------------------------------------------------------

net_up() {
	ip netns add "$LAB_NAME"
	ip -n "$LAB_NAME" link set lo up
	ip -n "$LAB_NAME" link add br0 type bridge
	ip -n "$LAB_NAME" addr add "$SUBNET.1/24" dev br0
	ip -n "$LAB_NAME" link set br0 up
}

# --- VMs ----------------------------------------------------------------------

# start_vm I N IMAGE_DIR: boot node I of N. QEMU daemonizes once the VM runs
# (its tap and forwards are open), or fails with a message.
start_vm() {
	local i=$1 n=$2 img=$3 d=$RUN/node$1
	mkdir -p "$d/fw"
	qemu-img create -q -f qcow2 -F raw -b "$img/root.img" "$d/root.qcow2"
	qemu-img create -q -f qcow2 "$d/data1.qcow2" "$LAB_DISK_SIZE"
	qemu-img create -q -f qcow2 "$d/data2.qcow2" "$LAB_DISK_SIZE"
	launch_vm "$i" "$n" "$img"
}

# launch_vm I N IMG: run node I's QEMU on the disks it has.
launch_vm() {
	local i=$1 n=$2 img=$3 d=$RUN/node$1 tap j
	tap=$(tap_name "$i")
	local mac_user mac_lab
	mac_user=$(printf '52:54:00:4d:00:%02x' "$i")
	mac_lab=$(printf '52:54:00:4d:01:%02x' "$i")
	cat >"$d/fw/node" <<-EOF
		NAME=node$i
		ADDR=$(node_addr "$i")/24
		GATEWAY=$SUBNET.1
		MAC_USER=$mac_user
		MAC_LAB=$mac_lab
	EOF
	for ((j = 1; j <= n; j++)); do printf '%s\tnode%s\n' "$(node_addr "$j")" "$j"; done >"$d/fw/hosts"
	cp "$CLIENT_KEY.pub" "$d/fw/authorized_keys"
	install -m 600 "$KEYS/node$i/ssh_host_ed25519_key" "$d/fw/host_key"

	ip tuntap add dev "$tap" mode tap
	local machine_id
	machine_id=$(printf 'metalk8s-lab %s %s' "$LAB_NAME" "$i" | md5sum | cut -c1-32)
	# tsc=reliable: TCG's TSC is one host counter for every vCPU, but with
	# two vCPUs the kernel's boot-time sync check misfires on the slow
	# vCPUs and falls back to the HPET, whose every read is a system call.
	# norandmaps: TCG keys its translated code by virtual address too, so
	# with ASLR every new process translates ld.so, libc and a PIE binary
	# afresh (about 2 MiB of host code per exec); 100 execs of ls and date
	# took 5.1 s with it and 1.5 s without, and a lab node running
	# Kubernetes filled QEMU's 1 GiB translation buffer (a flush of all
	# translated code) every 7 minutes.
	local append=(root=/dev/vda rw console=ttyS0 net.ifnames=0 mitigations=off tsc=reliable norandmaps
		"systemd.hostname=node$i" "systemd.machine_id=$machine_id")
	local extra=()
	read -ra extra <<<"${LAB_APPEND:-}"
	append+=("${extra[@]}")
	qemu-system-x86_64 \
		-name "$(marker "$i"),process=$LAB_NAME-node$i" \
		-machine "$LAB_MACHINE" -accel "$LAB_ACCEL" -cpu "$LAB_CPU_MODEL" -smp "$LAB_CPUS" -m "$LAB_MEM" \
		-nodefaults -no-user-config -display none \
		-kernel "$img/vmlinuz" -initrd "$img/initrd.img" -append "${append[*]}" \
		-drive "if=none,id=root,file=$d/root.qcow2,format=qcow2,cache=unsafe,discard=unmap" \
		-device virtio-blk-pci,drive=root,serial=lab-root \
		-drive "if=none,id=data1,file=$d/data1.qcow2,format=qcow2,cache=unsafe,discard=unmap" \
		-device virtio-blk-pci,drive=data1,serial=lab-data1 \
		-drive "if=none,id=data2,file=$d/data2.qcow2,format=qcow2,cache=unsafe,discard=unmap" \
		-device virtio-blk-pci,drive=data2,serial=lab-data2 \
		-netdev "user,id=user,restrict=on,ipv6=off,hostfwd=tcp:127.0.0.1:$(ssh_port "$i")-:22,hostfwd=tcp:127.0.0.1:$(api_port "$i")-:6443" \
		-device "virtio-net-pci,netdev=user,mac=$mac_user" \
		-netdev "tap,id=lab,ifname=$tap,script=no,downscript=no" \
		-device "virtio-net-pci,netdev=lab,mac=$mac_lab" \
		-device virtio-rng-pci \
		-fw_cfg "name=opt/metalk8s/node,file=$d/fw/node" \
		-fw_cfg "name=opt/metalk8s/hosts,file=$d/fw/hosts" \
		-fw_cfg "name=opt/metalk8s/authorized_keys,file=$d/fw/authorized_keys" \
		-fw_cfg "name=opt/metalk8s/host_key,file=$d/fw/host_key" \
		-uuid "$(cat /proc/sys/kernel/random/uuid)" \
		-rtc base=utc \
		-serial "file:$d/console.log" \
		-qmp "unix:$d/qmp.sock,server=on,wait=off" \
		-pidfile "$d/qemu.pid" -daemonize \
		2>"$d/qemu.err" 8>&- 9>&- || { cat "$d/qemu.err" >&2; die "node$i: QEMU did not start"; }
	# QEMU holds the tap open: move it into the lab's netns, onto the bridge.
	ip link set "$tap" netns "$LAB_NAME"
	ip -n "$LAB_NAME" link set "$tap" master br0 up
}

vm_pid() { # vm_pid I: the pid of node I's QEMU, or nothing
	local f=$RUN/node$1/qemu.pid p
	[[ -f $f ]] || return 0
	p=$(<"$f")
	[[ -r /proc/$p/cmdline ]] && tr '\0' '\n' <"/proc/$p/cmdline" 2>/dev/null | grep -qxF -- "$(marker "$1"),process=$LAB_NAME-node$1" && echo "$p"
	return 0
}

cpu_seconds() { # CPU time (user + system) of process $1 so far, in seconds
	awk -v hz="$(getconf CLK_TCK)" '{printf "%.1f", ($14 + $15) / hz}' "/proc/$1/stat" 2>/dev/null || echo "?"
}

lab_ssh_opts() { # options for ssh to node I, host key verified against known_hosts
	printf '%s\n' -i "$CLIENT_KEY" -p "$(ssh_port "$1")" \
		-o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes \
		-o UserKnownHostsFile="$KNOWN_HOSTS" -o GlobalKnownHostsFile=/dev/null \
		-o ConnectTimeout=10 -o LogLevel=ERROR -o ServerAliveInterval=15
}

# wait_ssh I DEADLINE_EPOCH: until node I answers SSH (with its real host
# key). On failure, says why in run/nodeI/failed.
wait_ssh() {
	local i=$1 deadline=$2 t0=$EPOCHREALTIME opts
	mapfile -t opts < <(lab_ssh_opts "$i")
	while :; do
		[[ -d /proc/$$ ]] || return 1 # lab.sh itself is gone
		if [[ -z $(vm_pid "$i") ]]; then
			echo "QEMU exited after $(elapsed "$t0")s ($(tail -n 1 "$RUN/node$i/qemu.err" 2>/dev/null))" >"$RUN/node$i/failed"
			return 1
		fi
		if timeout 30 ssh "${opts[@]}" root@127.0.0.1 true 2>"$RUN/node$i/ssh.err" </dev/null; then
			log "node$i: SSH after $(elapsed "$t0")s, $(cpu_seconds "$(vm_pid "$i")") s of CPU (127.0.0.1:$(ssh_port "$i"), host key verified)"
			return 0
		fi
		if ((${EPOCHREALTIME%.*} > deadline)); then
			echo "no SSH after ${LAB_BOOT_TIMEOUT}s (LAB_BOOT_TIMEOUT); last try: $(tail -n 1 "$RUN/node$i/ssh.err")" >"$RUN/node$i/failed"
			return 1
		fi
		sleep 1
	done
}

# console_tail I [LINES]: the end of node I's serial console, without colours.
console_tail() {
	echo "--- node$1: $RUN/node$1/console.log, last lines:"
	tail -n "${2:-25}" "$RUN/node$1/console.log" 2>/dev/null | sed -e 's/\x1b\[[0-9;]*[A-Za-z]//g' -e 's/\r//g'
	echo "---"
}

# sync_clock I [check]: set node I's clock from this machine's over an open
# SSH session (the VM's RTC has whole seconds only and the lab has no NTP
# server), then measure what is left; with "check", only measure. Prints
# "SKEW_US RTT_US": the guest's clock minus ours, give or take half the RTT.
sync_clock() {
	local i=$1 opts line ta tb set
	# The guest takes its own clock's offset with bash's builtin clock, then
	# lets date(1) apply it relative to the time date itself reads: the
	# time it takes to start date is not lost.
	# shellcheck disable=SC2016 # expanded by the guest's shell
	set='g=$EPOCHREALTIME; d=$(( ${t/./} - ${g/./} )); s=+; if ((d < 0)); then s=-; d=$((-d)); fi
		printf -v f %06d $((d % 1000000)); date -u -s "$s$((d / 1000000)).$f seconds" >/dev/null'
	[[ ${2:-} == check ]] && set=:
	mapfile -t opts < <(lab_ssh_opts "$i")
	coproc CLOCK { ssh "${opts[@]}" root@127.0.0.1 \
		"echo ready; read -r t; $set; echo set; read -r t; date +%s%N" 2>&1; }
	read -r -t 60 line <&"${CLOCK[0]}" && [[ $line == ready ]] || { echo "no session: $line"; return 1; }
	echo "$EPOCHREALTIME" >&"${CLOCK[1]}"
	read -r -t 60 line <&"${CLOCK[0]}" && [[ $line == set ]] || { echo "date -s: $line"; return 1; }
	ta=$EPOCHREALTIME
	echo >&"${CLOCK[1]}"
	read -r -t 60 line <&"${CLOCK[0]}" || { echo "no time read back"; return 1; }
	tb=$EPOCHREALTIME
	wait "$CLOCK_PID" 2>/dev/null || true
	ta=${ta/./} tb=${tb/./}
	echo "$((line / 1000 - (ta + tb) / 2)) $((tb - ta))"
}

# --- inventory ----------------------------------------------------------------

write_inventory() {
	local n=$1 i etcd cps
	mkdir -p "$INV/group_vars"
	etcd=$(((n >= 3) ? LAB_ETCD_MEMBERS : 1))
	((etcd <= n)) || etcd=$n
	cps=$((LAB_CONTROL_PLANES < n ? LAB_CONTROL_PLANES : n))
	{
		echo "# The metalk8s VM lab ($n nodes), written by test/lab/lab.sh up: rewritten"
		echo "# at every up. SSH goes through QEMU's forwards on 127.0.0.1; ip= is each"
		echo "# node's address on the lab bridge, where the nodes talk to each other."
		echo "[all]"
		for ((i = 1; i <= n; i++)); do
			echo "node$i ansible_host=127.0.0.1 ansible_port=$(ssh_port "$i") ansible_user=root ansible_ssh_private_key_file=$CLIENT_KEY ip=$(node_addr "$i")"
		done
		# After the seed's quickstart, every node a worker (LAB_CONTROL_PLANE_WORKERS=0:
		# every node but the control planes) and the first three
		# etcd members; the first LAB_CONTROL_PLANES (2) are control planes,
		# so the last node reaches the API through its apiserver proxy. Three
		# apiservers and three etcd members outrun two emulated cores.
		printf '\n[kube-master]\n'
		for ((i = 1; i <= cps; i++)); do echo "node$i"; done
		printf '\n[etcd]\n'
		for ((i = 1; i <= etcd; i++)); do echo "node$i"; done
		printf '\n[kube-node]\n'
		if [[ -n ${LAB_KUBE_NODES:-} ]]; then
			for i in $LAB_KUBE_NODES; do
				[[ $i =~ ^[1-9][0-9]*$ ]] && ((i <= n)) || die "LAB_KUBE_NODES: $i is not a node of 1..$n"
				echo "node$i"
			done
		else
			for ((i = LAB_CONTROL_PLANE_WORKERS == 0 ? cps + 1 : 1; i <= n; i++)); do echo "node$i"; done
		fi
		printf '\n[k8s-cluster:children]\nkube-master\nkube-node\n'
	} >"$INV/hosts.ini"
	cat >"$INV/group_vars/all.yml" <<-'EOF'
		# The metalk8s VM lab, written by test/lab/lab.sh up.
		# The nodes are small VMs on emulated CPUs (QEMU TCG, LAB_CPUS vCPUs,
		# 3 GiB), where guest code runs 10-80x slower than on the host.
		metalk8s_min_cpus: 1
		metalk8s_min_memory_mb: 1024

		# An SSH handshake with a busy emulated node (a running cluster) took
		# over the 15 s default: a minute, Ansible's own variable.
		ansible_ssh_timeout: 60

		# Blank data disks (80 GiB each, sparse on the host): /dev/vdb for the
		# metalk8s volume group, with MetalK8s's default volumes (metalk8s_lv01
		# 52G, metalk8s_lv02 5G, metalk8s_lv03 11G); /dev/vdc left free, a second drive for tests of
		# storage changes.
		metalk8s_lvm_drives_vg_metalk8s: ['/dev/vdb']

		# Timings for slow CPUs: etcd's defaults (100 ms / 1000 ms) give
		# spurious leader elections under emulation.
		etcd_heartbeat_interval: 500
		etcd_election_timeout: 5000

		# kube-proxy rewrites every rule each 30 s by default, seconds of
		# emulated CPU per node while nothing changed; a change still applies
		# within 2 s.
		kube_proxy_sync_period: 5m
		kube_proxy_min_sync_period: 2s

		# metrics-server's probes answer in seconds on a busy emulated node:
		# with the chart's 1 s timeout its liveness probe restarted it. The
		# kubelets' /metrics/resource took over metrics-server's 10 s
		# request timeout: 40 s, and a resolution whose 90% exceeds it.
		metalk8s_metrics_server_values:
		  probes: {periodSeconds: 30, timeoutSeconds: 10, failureThreshold: 10}
		  metricResolution: 60s
		  extraArgs: [--kubelet-request-timeout=40s]

		# Traefik's probes, as metrics-server's: a busy emulated node answers
		# /ping in seconds.
		metalk8s_traefik_values:
		  probes: {periodSeconds: 30, timeoutSeconds: 10, failureThreshold: 10}

		# The Gateway API's CRDs: the apiserver checks each CRD it stores
		# (its schemas and their CEL rules, for every version) within a
		# write's fixed 34 s (k8s.io/apiserver requestTimeoutUpperBound),
		# and on this lab's loaded control plane it could not store
		# httproutes' within that, four tries in a row, in three `up`s. The
		# unit tests apply them to a real kube-apiserver; Traefik runs here
		# without its Gateway API objects (it follows this addon).
		metalk8s_gateway_api_enabled: false

		# Headlamp's image is published on ghcr.io only, which the lab cannot
		# reach, nor build (not on the Go proxy): the lab test checks its
		# chart's objects with a server-side dry run instead.
		metalk8s_headlamp_enabled: false

		# The monitoring and logging addons are off in the demo, whose
		# emulated CPUs they would load for minutes more: make
		# lab-monitoring turns them on and checks them (Grafana and
		# kube-state-metrics off, their images cannot be built here). The
		# node-exporter services, which follow monitoring by default, are
		# kept on every node: the lab test checks them.
		metalk8s_monitoring_enabled: false
		metalk8s_node_exporter_enabled: true
		metalk8s_logging_enabled: false

		# flanneld checks its iptables rules every 5 s by default: a dozen
		# iptables runs, a quarter of a second of emulated CPU each; with
		# the resync, flannel used as much of a lab node's CPU as its
		# apiserver (per-cgroup CPU, this lab).
		flannel_iptables_resync: 5m

		# kubeadm wants 2 CPUs on a control plane; the lab's may have one.
		kubeadm_ignore_preflight_errors: [NumCPU]

		# TLS handshakes are a large part of the apiservers' CPU under
		# emulation (pprof: RSA-2048 signatures); an ECDSA P-256 key signs
		# tens of times cheaper. kubeadm's certificates, the CAs and sa.key.
		kube_asymmetric_encryption_algorithm: ECDSA-P256

		# kubeadm's liveness probes restart a control-plane component after
		# 80 s without an answer (8 x 10 s); an emulated apiserver busy with
		# joins can be that slow, and restarting it only adds load. 5 minutes
		# (10 x 30 s).
		# Each probe is a new TLS handshake on both sides (kube-controller-
		# manager's and kube-scheduler's self-signed certificates are RSA),
		# and the apiserver's readiness probe (every second by default) an
		# etcd read too: probes were a tenth of the kubelet's and the
		# apiserver's CPU in the lab, and handshakes still a seventh of an
		# idle kubelet's at one probe per 10 s (pprof). Every 30 s.
		# /livez and /readyz fail when etcd takes over 2 s to answer, which a
		# busy emulated etcd does: the liveness probe then restarted a joining
		# apiserver every 5 minutes, each time from scratch. 30 s.
		kubeadm_patches:
		  - {target: kube-apiserver, patch: {spec: {containers: [{name: kube-apiserver, livenessProbe: {periodSeconds: 30, failureThreshold: 10, timeoutSeconds: 30}, readinessProbe: {periodSeconds: 30, timeoutSeconds: 30}}]}}}
		  - target: kube-apiserver
		    type: json
		    patch:
		      - {op: add, path: /spec/containers/0/command/-, value: --etcd-healthcheck-timeout=30s}
		      - {op: add, path: /spec/containers/0/command/-, value: --etcd-readycheck-timeout=30s}
		  - {target: kube-controller-manager, patch: {spec: {containers: [{name: kube-controller-manager, livenessProbe: {periodSeconds: 30, failureThreshold: 10, timeoutSeconds: 30}}]}}}
		  - {target: kube-scheduler, patch: {spec: {containers: [{name: kube-scheduler, livenessProbe: {periodSeconds: 30, failureThreshold: 10, timeoutSeconds: 30}}]}}}
		  # CoreDNS's own health answer took 1-2 s on a busy lab node and
		  # its liveness probe (5 s) restarted it over and over.
		  - {target: corednsdeployment, patch: {spec: {template: {spec: {containers: [{name: coredns, livenessProbe: {periodSeconds: 30, failureThreshold: 10, timeoutSeconds: 30}, readinessProbe: {periodSeconds: 30, timeoutSeconds: 30}}]}}}}}
		  # Leader election: the leader renews its Lease every 2 s and the
		  # others retry as often, by default: with two such components on
		  # three nodes, most of an idle cluster's etcd writes. Every 10 s,
		  # a lease of 60 s (a new leader within a minute of losing one).
		  - target: kube-controller-manager
		    type: json
		    patch:
		      - {op: add, path: /spec/containers/0/command/-, value: --leader-elect-lease-duration=60s}
		      - {op: add, path: /spec/containers/0/command/-, value: --leader-elect-renew-deadline=40s}
		      - {op: add, path: /spec/containers/0/command/-, value: --leader-elect-retry-period=10s}
		  - target: kube-scheduler
		    type: json
		    patch:
		      - {op: add, path: /spec/containers/0/command/-, value: --leader-elect-lease-duration=60s}
		      - {op: add, path: /spec/containers/0/command/-, value: --leader-elect-renew-deadline=40s}
		      - {op: add, path: /spec/containers/0/command/-, value: --leader-elect-retry-period=10s}
	EOF
	# admin.conf points at node1's apiserver through QEMU's forward.
	printf '\n# artifacts/admin.conf reaches node1 through its forward on this machine.\nmetalk8s_admin_api_address: "127.0.0.1:%d"\n' "$((LAB_API_PORT + 1))" >>"$INV/group_vars/all.yml"
	{
		for ((i = 1; i <= n; i++)); do
			local key
			key=$(cut -d' ' -f1,2 "$KEYS/node$i/ssh_host_ed25519_key.pub")
			echo "[127.0.0.1]:$(ssh_port "$i") $key"
			echo "$(node_addr "$i") $key"
		done
	} >"$KNOWN_HOSTS"
	{
		echo "# ssh -F $LAB_DIR/ssh_config node1"
		for ((i = 1; i <= n; i++)); do
			printf 'Host node%s\n  HostName 127.0.0.1\n  Port %s\n  User root\n  IdentityFile %s\n  IdentitiesOnly yes\n  UserKnownHostsFile %s\n  StrictHostKeyChecking yes\n\n' \
				"$i" "$(ssh_port "$i")" "$CLIENT_KEY" "$KNOWN_HOSTS"
		done
	} >"$LAB_DIR/ssh_config"
}

# --- up / down ------------------------------------------------------------------

load_state() { # what `up` started: N and the settings of that lab
	LAB_N=0
	if [[ -f $LAB_DIR/lab.env ]]; then
		# shellcheck disable=SC1091
		source "$LAB_DIR/lab.env"
	fi
}

lock_lab() {
	exec 9>"/run/lock/metalk8s-lab-$LAB_NAME.lock"
	flock -w 300 9 || die "another lab.sh holds /run/lock/metalk8s-lab-$LAB_NAME.lock"
}

cmd_up() {
	local n=${1:-3} i
	[[ $n =~ ^[1-9]$ ]] && ((n <= MAX_NODES)) || die "N must be 1..$MAX_NODES"
	need_root
	cmd_deps
	lock_lab
	# Leftovers of an earlier lab in this LAB_DIR (whatever its name was) and
	# of this name (crashed or not).
	if [[ -f $LAB_DIR/lab.env ]]; then (load_state && teardown quiet); fi
	teardown quiet
	for ((i = 1; i <= n; i++)); do
		for p in "$(ssh_port "$i")" "$(api_port "$i")"; do
			[[ -z $(ss -Hltn "sport = :$p") ]] || die "port $p is taken on this machine (set LAB_SSH_PORT / LAB_API_PORT)"
		done
	done
	cmd_build
	local img
	img=$(image_dir)
	make_keys "$n"
	rm -rf "$RUN"
	mkdir -p "$RUN"
	cat >"$LAB_DIR/lab.env" <<-EOF
		LAB_N=$n
		LAB_NAME=$LAB_NAME
		LAB_SSH_PORT=$LAB_SSH_PORT
		LAB_API_PORT=$LAB_API_PORT
	EOF
	write_inventory "$n"

	# From here on, a failure or an interrupt takes the VMs down again.
	trap 'up_failed' EXIT
	trap 'exit 130' INT TERM
	local t0=$EPOCHREALTIME
	net_up
	for ((i = 1; i <= n; i++)); do start_vm "$i" "$n" "$img"; done
	log "started $n VMs (TCG, $LAB_CPUS vCPU, $LAB_MEM MiB each) in $(elapsed "$t0")s; waiting for SSH"
	local deadline=$((${EPOCHREALTIME%.*} + LAB_BOOT_TIMEOUT)) pids=() rc=0 skew rtt
	for ((i = 1; i <= n; i++)); do
		wait_ssh "$i" "$deadline" 9>&- &
		pids+=($!)
	done
	for ((i = 1; i <= n; i++)); do
		wait "${pids[i - 1]}" && continue
		rc=1
		log "node$i: $(cat "$RUN/node$i/failed" 2>/dev/null)"
		console_tail "$i" >&2
	done
	((rc == 0)) || die "not every node answered SSH"
	pids=()
	for ((i = 1; i <= n; i++)); do
		sync_clock "$i" >"$RUN/node$i/clock" 2>&1 9>&- &
		pids+=($!)
	done
	for ((i = 1; i <= n; i++)); do
		wait "${pids[i - 1]}" || die "node$i: could not set its clock: $(<"$RUN/node$i/clock")"
		read -r skew rtt <"$RUN/node$i/clock"
		log "node$i: clock set from this machine's: $((skew / 1000)) ms off, +-$((rtt / 2000)) ms"
	done
	trap - EXIT INT TERM
	log "lab up: $n nodes in $(elapsed "$t0")s after the image was ready ($(elapsed "$T0")s in all)"
	local p
	for ((i = 1; i <= n; i++)); do
		p=$(vm_pid "$i")
		log "node$i: $(node_addr "$i"), ssh 127.0.0.1:$(ssh_port "$i"), api 127.0.0.1:$(api_port "$i"), qemu pid $p, RSS $(awk '/VmRSS/ {printf "%d MiB", $2 / 1024}' "/proc/$p/status")"
	done
	cat >&2 <<-EOF
		inventory:   $INV/hosts.ini
		known_hosts: $KNOWN_HOSTS
		try:         ./bin/metalk8s exec -i $INV/hosts.ini --known-hosts $KNOWN_HOSTS -- hostname
	EOF
}

up_failed() {
	local rc=$?
	((rc == 0)) && return
	local bg
	mapfile -t bg < <(jobs -p)
	((${#bg[@]} == 0)) || kill "${bg[@]}" 2>/dev/null || true
	if [[ ${LAB_KEEP:-} == 1 ]]; then
		log "up failed; LAB_KEEP=1: leaving the VMs running (lab.sh down stops them)"
	else
		log "up failed; taking the lab down (LAB_KEEP=1 keeps it for debugging)"
		teardown quiet
		mark_down
	fi
	exit "$rc"
}

# wait_gone SECONDS PID...: until every PID has exited (1 if one has not).
# A zombie counts as gone: whoever reaps it is not ours to wait for.
wait_gone() {
	local n=$(($1 * 10)) p alive state
	shift
	while :; do
		alive=0
		for p in "$@"; do
			state=$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null) || continue
			[[ $state == Z ]] || alive=1
		done
		((alive)) || return 0
		((n-- > 0)) || return 1
		sleep 0.1
	done
}

# teardown [quiet]: stop every VM of this lab, found by pid file and by the
# marker in QEMU's command line, then remove the netns and any tap left.
teardown() {
	local quiet=${1:-} pids=() p i f
	for f in "$RUN"/node*/qemu.pid; do
		[[ -f $f ]] || continue
		i=${f%/qemu.pid}
		i=${i##*/node}
		p=$(vm_pid "$i")
		[[ -n $p ]] && pids+=("$p")
	done
	# the marker catches VMs whose pid file is gone (a crash, another LAB_DIR)
	while read -r p; do [[ -n $p ]] && pids+=("$p"); done < <(pgrep -f "^qemu-system-x86_64 -name guest=metalk8s-lab:$LAB_NAME:node[0-9]+," || true)
	mapfile -t pids < <(printf '%s\n' "${pids[@]}" | sort -un | sed '/^$/d')
	if ((${#pids[@]})); then
		[[ -n $quiet ]] || log "stopping QEMU ${pids[*]}"
		kill -TERM "${pids[@]}" 2>/dev/null || true
		wait_gone 5 "${pids[@]}" || kill -KILL "${pids[@]}" 2>/dev/null || true
		wait_gone 5 "${pids[@]}" || die "QEMU ${pids[*]} survived SIGKILL"
	fi
	if ip netns list | awk '{print $1}' | grep -qxF "$LAB_NAME"; then
		[[ -n $quiet ]] || log "removing netns $LAB_NAME"
		ip netns delete "$LAB_NAME"
	fi
	local t
	for t in /sys/class/net/"${LAB_NAME}"t*; do
		[[ -e $t ]] || continue
		t=${t##*/}
		[[ $t =~ ^${LAB_NAME}t[0-9]+$ ]] || continue
		[[ -n $quiet ]] || log "removing tap $t"
		ip link delete "$t" 2>/dev/null || true
	done
	rm -f "$RUN"/node*/*.qcow2 "$RUN"/node*/qemu.pid "$RUN"/node*/qmp.sock "$RUN"/node*/fw/host_key
}

cmd_down() {
	need_root
	lock_lab
	load_state
	teardown
	mark_down
	log "lab $LAB_NAME is down"
}

mark_down() { if [[ -f $LAB_DIR/lab.env ]]; then sed -i 's/^LAB_N=.*/LAB_N=0/' "$LAB_DIR/lab.env"; fi; }

# leftovers: what of this lab still exists (for tests and `status`)
leftovers() {
	pgrep -af "^qemu-system-x86_64 -name guest=metalk8s-lab:$LAB_NAME:" | awk '{print "qemu " $1 " " $4}' | sed 's/,process=.*//' || true
	ip netns list | awk '{print $1}' | grep -xF "$LAB_NAME" | sed 's/^/netns /' || true
	ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -E "^${LAB_NAME}t[0-9]+$" | sed 's/^/tap /' || true
}

cmd_status() {
	load_state
	local i p bad=0 opts
	if ((LAB_N == 0)); then
		echo "lab $LAB_NAME: down"
		local left
		left=$(leftovers)
		[[ -z $left ]] || { printf 'leftovers:\n%s\n' "$left"; return 1; }
		return 0
	fi
	for ((i = 1; i <= LAB_N; i++)); do
		p=$(vm_pid "$i")
		local state=down
		if [[ -n $p ]]; then
			mapfile -t opts < <(lab_ssh_opts "$i")
			if timeout 20 ssh "${opts[@]}" root@127.0.0.1 true </dev/null 2>/dev/null; then state=up; else state="running, no ssh"; fi
		fi
		[[ $state == up ]] || bad=1
		# TCG's translated code thrown away because its buffer filled up:
		# each flush costs the node a burst of translation (README).
		local jit=""
		[[ -z $p ]] || jit=$(qmp "$i" human-monitor-command "info jit" 2>/dev/null | awk '/TB flush count/ {print ", " $4 " code flushes"}')
		printf 'node%s  %-15s ssh 127.0.0.1:%s  api 127.0.0.1:%s  qemu %-8s %s%s\n' "$i" "$(node_addr "$i")" \
			"$(ssh_port "$i")" "$(api_port "$i")" "${p:--}" "$state" "$jit"
	done
	return $bad
}

# qmp I CMD [HMP]: run a QMP command on node I's QEMU and print its answer;
# with CMD human-monitor-command, HMP is the monitor's command line.
qmp() {
	python3 - "$RUN/node$1/qmp.sock" "$2" "${3:-}" <<-'PY'
		import json, socket, sys
		s = socket.socket(socket.AF_UNIX)
		s.settimeout(20)
		s.connect(sys.argv[1])
		f = s.makefile("rw")
		f.readline()
		args = {"command-line": sys.argv[3]} if sys.argv[3] else None
		for cmd in ("qmp_capabilities", sys.argv[2]):
		    msg = {"execute": cmd}
		    if cmd != "qmp_capabilities" and args:
		        msg["arguments"] = args
		    f.write(json.dumps(msg) + "\n"); f.flush()
		    while "return" not in (r := json.loads(f.readline())):
		        if "error" in r: sys.exit(r["error"]["desc"])
		print(r["return"] if isinstance(r["return"], str) else json.dumps(r["return"]))
	PY
}

# cmd_clock [check]: set (or only measure) every node's clock.
cmd_clock() {
	load_state
	((LAB_N > 0)) || die "the lab is down"
	local i skew rtt
	for ((i = 1; i <= LAB_N; i++)); do
		sync_clock "$i" "${1:-}" >"$RUN/node$i/clock" 2>&1 || die "node$i: $(<"$RUN/node$i/clock")"
		read -r skew rtt <"$RUN/node$i/clock"
		printf 'node%s: clock %s ms off, +-%s ms\n' "$i" "$((skew / 1000))" "$((rtt / 2000))"
	done
}

# poweroff I: an orderly ACPI power-off of node I (QMP system_powerdown),
# as an operator pressing the button; its disks are kept for poweron.
cmd_poweroff() {
	local i=${1:-} p t0=$EPOCHREALTIME
	[[ $i =~ ^[1-9]$ ]] || die "usage: lab.sh poweroff I"
	load_state
	p=$(vm_pid "$i")
	[[ -n $p ]] || die "node$i is not running"
	qmp "$i" system_powerdown >/dev/null || die "node$i: QMP system_powerdown failed"
	while [[ -d /proc/$p ]]; do
		if (($(elapsed "$t0" | cut -d. -f1) > 180)); then kill -9 "$p"; log "node$i: no power-off after 180 s: killed"; fi
		sleep 1
	done
	ip -n "$LAB_NAME" link del "$(tap_name "$i")" 2>/dev/null || true
	log "node$i: powered off in $(elapsed "$t0")s"
}

# poweron I: boot node I again on the disks it had, wait for SSH, set its clock.
cmd_poweron() {
	local i=${1:-} t0=$EPOCHREALTIME skew rtt
	[[ $i =~ ^[1-9]$ ]] || die "usage: lab.sh poweron I"
	need_root
	load_state
	((i <= LAB_N)) || die "node$i is not part of the lab (lab.sh up)"
	[[ -z $(vm_pid "$i") ]] || die "node$i is running"
	launch_vm "$i" "$LAB_N" "$(image_dir)"
	wait_ssh "$i" $((${EPOCHREALTIME%.*} + LAB_BOOT_TIMEOUT)) || die "node$i: $(cat "$RUN/node$i/failed" 2>/dev/null)"
	sync_clock "$i" >"$RUN/node$i/clock" 2>&1 || die "node$i: could not set its clock: $(<"$RUN/node$i/clock")"
	read -r skew rtt <"$RUN/node$i/clock"
	log "node$i: powered on in $(elapsed "$t0")s, clock $((skew / 1000)) ms off"
}

cmd_ssh() {
	local i=${1:-}
	[[ $i =~ ^[1-9]$ ]] || die "usage: lab.sh ssh I [CMD...]"
	shift
	load_state
	((i <= LAB_N)) || die "node$i is not up (lab.sh up)"
	local opts
	mapfile -t opts < <(lab_ssh_opts "$i")
	if (($# == 0)) && [[ -t 0 ]]; then opts+=(-t); fi
	exec ssh "${opts[@]}" root@127.0.0.1 "$@"
}

case ${1:-} in
deps) cmd_deps ;;
build) cmd_build ;;
up) cmd_up "${2:-3}" ;;
down) cmd_down ;;
ssh) shift && cmd_ssh "$@" ;;
poweroff) cmd_poweroff "${2:-}" ;;
poweron) cmd_poweron "${2:-}" ;;
status) cmd_status ;;
clock) cmd_clock "${2:-}" ;;
leftovers) leftovers ;;
key) image_key ;;
*) usage ;;
esac
