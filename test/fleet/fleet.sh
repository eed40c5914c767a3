#!/usr/bin/env bash
# fleet.sh — a fleet of real OpenSSH servers, each in its own network, UTS
# and pid namespace, for tests and benchmarks of the agentless provisioner.
#
#   fleet.sh up DIR [N]    start N plain hosts (default 3) plus 5 variant hosts
#   fleet.sh down DIR      stop and delete everything of the fleet (idempotent)
#   fleet.sh status DIR    show the state of every host (exit 1 if one is down)
#
# Environment:
#   FLEET_PREFIX   prefix of netns/link names (default mk8sf; [a-z][a-z0-9]{0,8})
#   FLEET_NET      second octet of the fleet subnet 10.NET.0.0/16 (default 77)
#   FLEET_JOBS     parallel host preparation workers (default 2 x CPUs)
#   FLEET_TIMEOUT  seconds to wait for all sshds to accept TCP (default 60)
# `down` and `status` take PREFIX/NET from DIR/fleet.state unless set.
#
# Layout (NET=77): bridge ${PREFIX}br0 = 10.77.0.1/16 in the root netns.
#   plain host i: node-%03d, netns $PREFIX-i, 10.77.X.Y with X=(i-1)/200,
#                 Y=(i-1)%200+11 (node-001=10.77.0.11, node-201=10.77.1.11)
#   variants:     port=10.77.0.2 (sshd on 2222), bastion=10.77.0.3,
#                 rekeyed=10.77.0.4 (wrong key in known_hosts),
#                 sudopw=10.77.0.5 (login as mk8spw, sudo needs a password),
#                 hidden=10.77.255.2 on bridge br1 (10.77.255.1/24) inside the
#                 bastion's netns; the root netns has an "unreachable" route
#                 for 10.77.255.0/24, so only the bastion reaches it.
# Outputs in DIR: hosts.ini known_hosts known_hosts.hashed ssh_config
#   ansible.cfg fleet.env hosts.tsv id_ed25519 agent_key enc_key enc_key.pass
#   sudo_password agent.sock, and hosts/<name>/{sshd_config,sshd.log,...}.
# The hosts share this machine's filesystem and users (root, mk8s, mk8spw).
set -euo pipefail

PREFIX_DEFAULT=mk8sf
NET_DEFAULT=77
SUDO_PASSWORD='mk8s-fleet-sudo-pw'   # fixed test password of user mk8spw
ENC_PASSPHRASE='mk8s-fleet-enc-pass' # fixed passphrase of DIR/enc_key
USERS_LOCK=/run/lock/mk8s-fleet-users.lock
T0=$EPOCHREALTIME

log() { printf 'fleet: %s\n' "$*" >&2; }
die() { printf 'fleet: ERROR: %s\n' "$*" >&2; exit 1; }
# phase MSG: progress line with the time elapsed since the script started.
phase() { local now=$EPOCHREALTIME; log "$(((${now/./} - ${T0/./}) / 1000))ms $*"; }
usage() { awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$SELF" >&2; exit 2; }

# --- settings and host table ------------------------------------------------------

# load_settings DIR: PREFIX and NET from the environment, else from
# DIR/fleet.state (written at the start of `up`), else the defaults.
load_settings() {
	local dir=$1 sp='' sn='' key val
	if [[ -f $dir/fleet.state ]]; then
		while IFS='=' read -r key val; do
			case $key in PREFIX) sp=$val ;; NET) sn=$val ;; esac
		done <"$dir/fleet.state"
	fi
	PREFIX=${FLEET_PREFIX:-${sp:-$PREFIX_DEFAULT}}
	NET=${FLEET_NET:-${sn:-$NET_DEFAULT}}
	[[ $PREFIX =~ ^[a-z][a-z0-9]{0,8}$ ]] ||
		die "FLEET_PREFIX '$PREFIX' must match [a-z][a-z0-9]{0,8} (interface names <= 15 chars)"
	[[ $NET =~ ^[0-9]+$ ]] && ((NET >= 1 && NET <= 254)) || die "FLEET_NET '$NET' must be 1..254"
	BR=${PREFIX}br0
	SUBNET=10.$NET
	GW=$SUBNET.0.1
	HIDDEN_NET=$SUBNET.255 # a /24 that exists only inside the bastion netns
}

# build_hosts N: arrays indexed alike, bastion first (hidden needs its netns).
#   H_NAME H_ADDR H_PORT H_NS (netns) H_VETH (root-side veth) H_GROUP
build_hosts() {
	local n=$1 i name
	H_NAME=() H_ADDR=() H_PORT=() H_NS=() H_VETH=() H_GROUP=()
	add() { H_NAME+=("$1") H_ADDR+=("$2") H_PORT+=("$3") H_NS+=("$PREFIX-$4") H_VETH+=("$5") H_GROUP+=("$6"); }
	add bastion "$SUBNET.0.3" 22 bastion "${PREFIX}vbast" variants
	add hidden "$HIDDEN_NET.2" 22 hidden "" variants
	add port "$SUBNET.0.2" 2222 port "${PREFIX}vport" variants
	add rekeyed "$SUBNET.0.4" 22 rekeyed "${PREFIX}vrek" variants
	add sudopw "$SUBNET.0.5" 22 sudopw "${PREFIX}vsudo" variants
	for ((i = 1; i <= n; i++)); do
		printf -v name 'node-%03d' "$i"
		add "$name" "$SUBNET.$(((i - 1) / 200)).$(((i - 1) % 200 + 11))" 22 "$i" "${PREFIX}v$i" fleet
	done
}

addr_of() {
	local k
	for k in "${!H_NAME[@]}"; do
		if [[ ${H_NAME[k]} == "$1" ]]; then echo "${H_ADDR[k]}"; return; fi
	done
	return 1
}

# --- down ---------------------------------------------------------------------

# owned_pid PID DIR: true if PID is alive and is an sshd launcher, the
# ssh-agent or the supervisor of DIR (checked on its command line, as pids
# get recycled).
owned_pid() {
	local pid=$1 dir=$2 cmd a=()
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	mapfile -d '' -t a 2>/dev/null <"/proc/$pid/cmdline" || return 1
	cmd="${a[*]} "
	[[ $cmd == *sshd*"$dir/hosts/"* || $cmd == *ssh-agent*"$dir/agent.sock"* || $cmd == *"_supervise $dir " ]]
}

prefix_netns() { ip netns list 2>/dev/null | awk -v p="^$PREFIX-" '$1 ~ p {print $1}'; }
# prefix_links: root-netns links of PREFIX (veths and the bridge).
prefix_links() {
	ip -o link show 2>/dev/null | awk -F': ' '{sub(/@.*/, "", $2); print $2}' |
		grep -E "^${PREFIX}(v[a-z0-9]+|br0)\$" || true
}

# down_prefix DIR: kill and delete everything of PREFIX/NET started for DIR.
down_prefix() {
	local dir=$1 f pid p nss pids deadline
	# 1. launchers by pid file: each sshd is pid 1 of its own pid namespace
	#    and dies with its launcher (unshare --kill-child), taking all its
	#    sessions along. Then the agent and the supervisor.
	for f in "$dir"/hosts/*/launch.pid "$dir/agent.pid"; do
		[[ -f $f ]] || continue
		read -r pid <"$f" || true
		if owned_pid "$pid" "$dir"; then kill -KILL "$pid" 2>/dev/null || true; fi
	done
	# the supervisor exits once it has reaped them all; kill it if it lingers
	pid=
	[[ -f $dir/supervisor.pid ]] && { read -r pid <"$dir/supervisor.pid" || true; }
	deadline=$((SECONDS + 2))
	while owned_pid "$pid" "$dir" && ((SECONDS < deadline)); do sleep 0.05; done
	if owned_pid "$pid" "$dir"; then kill -KILL "$pid" 2>/dev/null || true; fi
	# 2. whatever still runs inside our namespaces, and stragglers naming DIR.
	nss=$(prefix_netns)
	if [[ -n $nss ]]; then
		pids=$(printf 'netns pids %s\n' $nss | ip -force -batch - 2>/dev/null || true)
		if [[ -n $pids ]]; then kill -KILL $pids 2>/dev/null || true; fi
	fi
	if [[ -d $dir ]]; then
		for p in /proc/[0-9]*; do
			if owned_pid "${p#/proc/}" "$dir"; then kill -KILL "${p#/proc/}" 2>/dev/null || true; fi
		done
	fi
	# 3. namespaces, links (veth peers vanish with their netns), bridge, route.
	if [[ -n $nss ]]; then
		printf 'netns del %s\n' $nss | ip -force -batch - >/dev/null 2>&1 || true
	fi
	rm -rf /etc/netns/"$PREFIX"-*
	p=$(prefix_links)
	if [[ -n $p ]]; then printf 'link del %s\n' $p | ip -force -batch - >/dev/null 2>&1 || true; fi
	# the hidden subnet route, unless someone else's interface lives in our
	# /16 (then it is not ours to remove)
	if ! ip -4 -o addr show 2>/dev/null | grep -q " inet $SUBNET\."; then
		ip route del unreachable "$HIDDEN_NET.0/24" 2>/dev/null || true
	fi
	rm -f "$dir/agent.sock"
	# 4. netns teardown is asynchronous in the kernel: wait until all is gone.
	deadline=$((SECONDS + 20))
	while [[ -n "$(prefix_netns)$(prefix_links)" ]]; do
		((SECONDS < deadline)) || die "down: leftovers for prefix $PREFIX: $(prefix_netns | xargs) $(prefix_links | xargs)"
		p=$(prefix_links)
		if [[ -n $p ]]; then printf 'link del %s\n' $p | ip -force -batch - >/dev/null 2>&1 || true; fi
		sleep 0.1
	done
}

cmd_down() {
	local dir
	[[ $# -eq 1 ]] || usage
	dir=$(realpath -m "$1")
	load_settings "$dir"
	down_prefix "$dir"
	log "down: nothing left of prefix $PREFIX"
}

# --- up: users, client keys ------------------------------------------------------

ensure_users() {
	local tmp
	exec 9>"$USERS_LOCK"
	flock 9 # concurrent fleets must not race on /etc/passwd
	if ! id mk8s >/dev/null 2>&1; then
		useradd --system --create-home --home-dir /home/mk8s --shell /bin/bash mk8s
	fi
	if ! id mk8spw >/dev/null 2>&1; then
		useradd --system --create-home --home-dir /home/mk8spw --shell /bin/bash mk8spw
	fi
	echo "mk8spw:$SUDO_PASSWORD" | chpasswd
	tmp=$(mktemp)
	printf '%s\n' '# managed by metalk8s test/fleet/fleet.sh' \
		'mk8s ALL=(ALL:ALL) NOPASSWD: ALL' \
		'# every sudo of mk8spw needs the password (no credential caching)' \
		'Defaults:mk8spw timestamp_timeout=0' \
		'mk8spw ALL=(ALL:ALL) ALL' >"$tmp"
	visudo -cqf "$tmp" || die "generated sudoers does not parse"
	install -m 0440 "$tmp" /etc/sudoers.d/mk8s-fleet
	rm -f "$tmp"
	exec 9>&-
}

client_keys() {
	local dir=$1 u
	rm -f "$dir"/id_ed25519* "$dir"/agent_key* "$dir"/enc_key*
	ssh-keygen -q -t ed25519 -N '' -C fleet-client -f "$dir/id_ed25519"
	ssh-keygen -q -t ed25519 -N '' -C fleet-agent -f "$dir/agent_key"
	ssh-keygen -q -t ed25519 -N "$ENC_PASSPHRASE" -C fleet-enc -f "$dir/enc_key"
	(umask 077 && printf '%s\n' "$ENC_PASSPHRASE" >"$dir/enc_key.pass")
	(umask 077 && printf '%s\n' "$SUDO_PASSWORD" >"$dir/sudo_password")
	# sshd reads authorized_keys as the target user: keep them world-readable.
	mkdir -p -m 0755 "$dir/authorized_keys"
	for u in root mk8s mk8spw; do
		cat "$dir/id_ed25519.pub" "$dir/agent_key.pub" "$dir/enc_key.pub" >"$dir/authorized_keys/$u"
		chmod 0644 "$dir/authorized_keys/$u"
	done
}

# --- up: hosts ------------------------------------------------------------------

# write_host_files K DIR: sshd_config of host K, and /etc/hosts + /etc/hostname
# as seen inside its netns (ip netns exec bind-mounts /etc/netns/NS/*).
write_host_files() {
	local k=$1 dir=$2 name=${H_NAME[k]} ns=${H_NS[k]}
	local hdir=$dir/hosts/$name
	# PidFile none: sshd is pid 1 of its own pid namespace (see supervise).
	printf '%s\n' "# generated by fleet.sh for $name ($ns)" \
		"Port ${H_PORT[k]}" \
		"ListenAddress ${H_ADDR[k]}" \
		"HostKey $hdir/ssh_host_ed25519_key" \
		"PidFile none" \
		"AuthorizedKeysFile $dir/authorized_keys/%u" \
		"StrictModes no" \
		"UsePAM yes" \
		"PasswordAuthentication no" \
		"KbdInteractiveAuthentication no" \
		"PubkeyAuthentication yes" \
		"PermitRootLogin prohibit-password" \
		"AllowTcpForwarding yes" \
		"AllowAgentForwarding yes" \
		"X11Forwarding no" \
		"PrintMotd no" \
		"MaxStartups 100:30:200" \
		"MaxSessions 64" \
		"LogLevel VERBOSE" \
		"Subsystem sftp /usr/lib/openssh/sftp-server" >"$hdir/sshd_config"
	printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n' "$name" >"/etc/netns/$ns/hosts"
	printf '%s\n' "$name" >"/etc/netns/$ns/hostname"
}

# netns_batch K: the `ip -n NS -batch` commands that configure host K's netns.
netns_batch() {
	local k=$1 plen=16
	[[ ${H_NAME[k]} == hidden ]] && plen=24
	# addrgenmode none: no IPv6 link-local address, so no DAD/RS/MLD
	# multicast flooding every bridge port (quadratic with many hosts)
	printf '%s\n' "link set lo up" "link set eth0 addrgenmode none" "addr add ${H_ADDR[k]}/$plen dev eth0" "link set eth0 up"
	if [[ ${H_NAME[k]} == bastion ]]; then
		# br1 + a veth whose peer becomes hidden's eth0
		printf '%s\n' "link add br1 type bridge" "link set br1 addrgenmode none" \
			"addr add $HIDDEN_NET.1/24 dev br1" "link set br1 up" \
			"link add vhid type veth peer name eth0 netns $PREFIX-hidden" "link set vhid addrgenmode none" \
			"link set vhid master br1 up"
	fi
}

# prep_worker W J DIR: host keys and netns config of hosts K >= 2 with
# K % J == W. A background job: on error it exits early (set -e), leaving its
# .failed marker behind.
prep_worker() {
	local w=$1 j=$2 dir=$3 k hdir
	touch "$dir/worker-$w.failed"
	exec 2>"$dir/worker-$w.log"
	for ((k = 2 + w; k < ${#H_NAME[@]}; k += j)); do
		hdir=$dir/hosts/${H_NAME[k]}
		ssh-keygen -q -t ed25519 -N '' -C "${H_NAME[k]}" -f "$hdir/ssh_host_ed25519_key"
		if [[ ${H_NAME[k]} == rekeyed ]]; then # the key that goes to known_hosts
			ssh-keygen -q -t ed25519 -N '' -C rekeyed-wrong -f "$hdir/wrong_host_key"
		fi
		netns_batch "$k" | ip -n "${H_NS[k]}" -batch -
	done
	rm -f "$dir/worker-$w.failed"
}

# cmd_supervise DIR: long-lived parent of every sshd and of the ssh-agent of
# the fleet, so that they get reaped even where PID 1 does not reap orphans.
# Each sshd runs in its netns, its own UTS namespace (hostname) and as pid 1
# of its own pid namespace (it reaps its sessions and takes them down with it).
cmd_supervise() {
	local dir=$1 name ns hdir
	echo $$ >"$dir/supervisor.pid"
	ssh-agent -D -a "$dir/agent.sock" </dev/null >"$dir/agent.log" 2>&1 &
	echo $! >"$dir/agent.pid"
	while IFS=$'\t' read -r name ns; do
		hdir=$dir/hosts/$name
		ip netns exec "$ns" unshare --uts --pid --fork --kill-child --mount-proc \
			sh -c 'hostname "$1" && exec /usr/sbin/sshd -D -f "$2" -E "$3"' \
			sh "$name" "$hdir/sshd_config" "$hdir/sshd.log" </dev/null >>"$hdir/sshd.out" 2>&1 &
		echo $! >"$hdir/launch.pid"
	done <"$dir/launch.list"
	wait
}

# probe K [fast]: does host K's sshd accept TCP? Connects from the root netns
# (hidden: from the bastion netns). "fast" uses bash's /dev/tcp without a
# fork; fine on the local bridge, where a connect is refused or accepted at once.
probe() {
	local k=$1 addr=${H_ADDR[$1]} port=${H_PORT[$1]}
	if [[ ${H_NAME[k]} == hidden ]]; then
		ip netns exec "$PREFIX-bastion" timeout 2 bash -c ': <>"/dev/tcp/$0/$1"' "$addr" "$port" 2>/dev/null
	elif [[ ${2:-} == fast ]]; then
		{ true <>"/dev/tcp/$addr/$port"; } 2>/dev/null
	else
		timeout 2 bash -c ': <>"/dev/tcp/$0/$1"' "$addr" "$port" 2>/dev/null
	fi
}

# wait_sshds DIR: poll until every sshd accepts TCP; die naming the hosts
# whose sshd exited or timed out, with the tail of their sshd.log.
wait_sshds() {
	local dir=$1 k pid hdir pending=("${!H_NAME[@]}") next bad=()
	local timeout=${FLEET_TIMEOUT:-60} deadline
	deadline=$((SECONDS + timeout))
	while ((${#pending[@]})); do
		next=()
		for k in "${pending[@]}"; do
			probe "$k" fast && continue
			hdir=$dir/hosts/${H_NAME[k]}
			pid=
			[[ -f $hdir/launch.pid ]] && { read -r pid <"$hdir/launch.pid" || true; }
			if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
				bad+=("$k:exited")
			elif ((SECONDS >= deadline)); then
				bad+=("$k:not accepting TCP after ${timeout}s")
			else
				next+=("$k")
			fi
		done
		pending=("${next[@]}")
		if ((${#pending[@]})); then sleep 0.05; fi
	done
	((${#bad[@]} == 0)) && return
	for k in "${bad[@]:0:5}"; do
		hdir=$dir/hosts/${H_NAME[${k%%:*}]}
		log "sshd of ${H_NAME[${k%%:*}]} (${H_ADDR[${k%%:*}]}:${H_PORT[${k%%:*}]}): ${k#*:}; tail of $hdir/sshd.log:"
		tail -n 15 "$hdir/sshd.log" "$hdir/sshd.out" 2>/dev/null | sed 's/^/    /' >&2 || true
	done
	die "${#bad[@]} sshd(s) failed"
}

# --- up: outputs ------------------------------------------------------------------

write_outputs() {
	local dir=$1 n=$2 k name key hostpat a b names=() addrs=()
	# known_hosts: [addr]:port unless 22; the wrong key for rekeyed
	for k in "${!H_NAME[@]}"; do
		name=${H_NAME[k]}
		key=$dir/hosts/$name/ssh_host_ed25519_key.pub
		[[ $name == rekeyed ]] && key=$dir/hosts/$name/wrong_host_key.pub
		hostpat=${H_ADDR[k]}
		[[ ${H_PORT[k]} == 22 ]] || hostpat="[${H_ADDR[k]}]:${H_PORT[k]}"
		read -r a b _ <"$key"
		echo "$hostpat $a $b"
	done >"$dir/known_hosts"
	cp "$dir/known_hosts" "$dir/known_hosts.hashed"
	ssh-keygen -q -H -f "$dir/known_hosts.hashed" >/dev/null 2>&1
	rm -f "$dir/known_hosts.hashed.old"

	# ssh client config for `ssh -F` (ssh passes -F on to ProxyJump hops)
	printf '%s\n' 'Host *' \
		"  UserKnownHostsFile $dir/known_hosts" \
		'  GlobalKnownHostsFile /dev/null' \
		'  StrictHostKeyChecking yes' \
		"  IdentityFile $dir/id_ed25519" \
		'  IdentitiesOnly yes' \
		'  BatchMode yes' \
		'  ConnectTimeout 10' \
		'  LogLevel ERROR' >"$dir/ssh_config"

	# Ansible inventory: every connection variable on each host line
	local vars="ansible_port=22 ansible_user=root ansible_ssh_private_key_file=$dir/id_ed25519"
	{
		echo "# generated by fleet.sh (prefix $PREFIX, $n plain hosts)"
		echo "[fleet]"
		for k in "${!H_NAME[@]}"; do
			if [[ ${H_GROUP[k]} == fleet ]]; then echo "${H_NAME[k]} ansible_host=${H_ADDR[k]} $vars"; fi
		done
		echo
		echo "[variants]"
		echo "port ansible_host=$(addr_of port) ansible_port=2222 ansible_user=root ansible_ssh_private_key_file=$dir/id_ed25519"
		# not named "bastion": kubespray (and metalk8s) would reach every
		# other host through a host of that name
		echo "jumphost ansible_host=$(addr_of bastion) $vars"
		echo "hidden ansible_host=$(addr_of hidden) $vars ansible_ssh_common_args='-o ProxyJump=root@$(addr_of bastion)'"
		echo "rekeyed ansible_host=$(addr_of rekeyed) $vars"
		echo "sudopw ansible_host=$(addr_of sudopw) ansible_port=22 ansible_user=mk8spw ansible_ssh_private_key_file=$dir/id_ed25519 ansible_become=true ansible_become_password=$SUDO_PASSWORD"
		printf '\n[kube-master]\nnode-001\n\n[etcd]\nnode-001\n\n[kube-node:children]\nfleet\n'
	} >"$dir/hosts.ini"

	# for real ansible: our known_hosts and key also for the ProxyJump hop
	printf '%s\n' '[defaults]' \
		"inventory = $dir/hosts.ini" \
		'host_key_checking = True' \
		'force_valid_group_names = ignore' \
		'interpreter_python = /usr/bin/python3' \
		'[ssh_connection]' \
		"ssh_args = -F $dir/ssh_config -o ControlMaster=auto -o ControlPersist=60s" >"$dir/ansible.cfg"

	# hosts.tsv: name addr port netns group (read by fleet.go)
	for k in "${!H_NAME[@]}"; do
		printf '%s\t%s\t%s\t%s\t%s\n' "${H_NAME[k]}" "${H_ADDR[k]}" "${H_PORT[k]}" "${H_NS[k]}" "${H_GROUP[k]}"
	done >"$dir/hosts.tsv"

	# fleet.env: shell-sourceable facts
	for k in "${!H_NAME[@]}"; do
		if [[ ${H_GROUP[k]} == fleet ]]; then names+=("${H_NAME[k]}") addrs+=("${H_ADDR[k]}"); fi
	done
	{
		kv() { printf '%s=%q\n' "$1" "$2"; }
		kv FLEET_DIR "$dir"
		kv FLEET_PREFIX "$PREFIX"
		kv FLEET_NET "$NET"
		kv FLEET_N "$n"
		kv FLEET_BRIDGE "$BR"
		kv FLEET_GATEWAY "$GW"
		kv FLEET_INVENTORY "$dir/hosts.ini"
		kv FLEET_ANSIBLE_CONFIG "$dir/ansible.cfg"
		kv FLEET_SSH_CONFIG "$dir/ssh_config"
		kv FLEET_KNOWN_HOSTS "$dir/known_hosts"
		kv FLEET_KNOWN_HOSTS_HASHED "$dir/known_hosts.hashed"
		kv FLEET_KEY "$dir/id_ed25519"
		kv FLEET_AGENT_KEY "$dir/agent_key"
		kv FLEET_ENC_KEY "$dir/enc_key"
		kv FLEET_ENC_KEY_PASS "$dir/enc_key.pass"
		kv FLEET_AGENT_SOCK "$dir/agent.sock"
		kv FLEET_AGENT_PID "$(<"$dir/agent.pid")"
		kv FLEET_NOPASSWD_USER mk8s
		kv FLEET_SUDO_USER mk8spw
		kv FLEET_SUDO_PASSWORD_FILE "$dir/sudo_password"
		kv FLEET_PORT_ADDR "$(addr_of port)"
		kv FLEET_PORT_PORT 2222
		kv FLEET_BASTION_ADDR "$(addr_of bastion)"
		kv FLEET_HIDDEN_ADDR "$(addr_of hidden)"
		kv FLEET_REKEYED_ADDR "$(addr_of rekeyed)"
		kv FLEET_SUDOPW_ADDR "$(addr_of sudopw)"
		kv FLEET_HOSTS "${names[*]}"
		kv FLEET_ADDRS "${addrs[*]}"
		for k in "${!H_NAME[@]}"; do kv "FLEET_ADDR_${H_NAME[k]//-/_}" "${H_ADDR[k]}"; done
	} >"$dir/fleet.env"
}

# check_inventory DIR WANT: ansible-inventory must parse hosts.ini as INI and
# see WANT hosts.
check_inventory() {
	local dir=$1 want=$2 got
	if ! command -v ansible-inventory >/dev/null; then
		log "ansible-inventory not installed: skipping the inventory check"
		return
	fi
	got=$(ANSIBLE_CONFIG=$dir/ansible.cfg ANSIBLE_INVENTORY_UNPARSED_FAILED=true ANSIBLE_INVENTORY_ENABLED=ini \
		ansible-inventory -i "$dir/hosts.ini" --list 2>"$dir/ansible-inventory.err" |
		/usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["_meta"]["hostvars"]))') ||
		die "ansible-inventory rejects $dir/hosts.ini: $(cat "$dir/ansible-inventory.err")"
	[[ $got == "$want" ]] || die "ansible-inventory sees $got hosts in $dir/hosts.ini, want $want"
}

# --- up ---------------------------------------------------------------------------

cmd_up() {
	local dir n k w jobs t
	[[ $# -ge 1 && $# -le 2 ]] || usage
	[[ $(id -u) == 0 ]] || die "fleet needs root"
	dir=$(realpath -m "$1")
	n=${2:-3}
	[[ $n =~ ^[0-9]+$ ]] && ((n >= 1 && n <= 9999)) || die "N must be 1..9999"
	((${#dir} <= 80)) || die "DIR too long for unix socket paths (<= 80 chars): $dir"
	jobs=${FLEET_JOBS:-$((2 * $(nproc)))}
	for t in /usr/sbin/sshd ssh-keygen ssh-agent ssh-add unshare setsid flock timeout; do
		command -v "$t" >/dev/null || die "missing $t"
	done
	mkdir -p "$dir"
	chmod 0755 "$dir" # users mk8s/mk8spw must reach DIR/authorized_keys

	# leftovers: of a previous fleet in DIR (maybe another prefix), then ours
	if [[ -f $dir/fleet.state ]]; then (unset FLEET_PREFIX FLEET_NET; load_settings "$dir"; down_prefix "$dir"); fi
	load_settings "$dir"
	down_prefix "$dir"
	rm -rf "$dir/hosts" "$dir"/worker-*
	printf 'PREFIX=%s\nNET=%s\n' "$PREFIX" "$NET" >"$dir/fleet.state"
	if ip -4 -o addr show | grep -q " inet $SUBNET\."; then
		die "subnet $SUBNET.0.0/16 is already used here ($(ip -4 -o addr show | awk -v s=" $SUBNET." 'index($0, s) {print $2}' | xargs)); set FLEET_NET"
	fi
	# from here on, a failure tears down what was started (logs stay in DIR)
	UP_DIR=$dir
	trap 'rc=$?; if ((rc)); then log "up failed (exit $rc), cleaning up; logs kept in $UP_DIR"; down_prefix "$UP_DIR" || true; fi' EXIT
	phase "leftovers cleaned"

	mkdir -p -m 0755 /run/sshd # privilege separation directory
	ensure_users
	client_keys "$dir"
	build_hosts "$n"
	mkdir -p "${H_NS[@]/#//etc/netns/}" "${H_NAME[@]/#/$dir/hosts/}"
	for k in "${!H_NAME[@]}"; do write_host_files "$k" "$dir"; done
	phase "users, client keys and configs ready"

	# root netns in one batch: bridge, hidden-subnet route, netns, veths
	{
		echo "link add $BR type bridge"
		echo "link set $BR addrgenmode none"
		echo "addr add $GW/16 dev $BR"
		echo "link set $BR up"
		echo "route add unreachable $HIDDEN_NET.0/24"
		printf 'netns add %s\n' "${H_NS[@]}"
		for k in "${!H_NAME[@]}"; do
			[[ -n ${H_VETH[k]} ]] || continue
			echo "link add ${H_VETH[k]} type veth peer name eth0 netns ${H_NS[k]}"
			echo "link set ${H_VETH[k]} addrgenmode none"
			echo "link set ${H_VETH[k]} master $BR up"
		done
	} | ip -batch - || die "network setup failed"
	phase "root netns batch done"
	# bastion, then hidden (its eth0 comes from the bastion), then the rest
	for k in 0 1; do
		ssh-keygen -q -t ed25519 -N '' -C "${H_NAME[k]}" -f "$dir/hosts/${H_NAME[k]}/ssh_host_ed25519_key"
		netns_batch "$k" | ip -n "${H_NS[k]}" -batch - || die "netns setup of ${H_NAME[k]} failed"
	done
	for ((w = 0; w < jobs; w++)); do prep_worker "$w" "$jobs" "$dir" & done
	wait
	for ((w = 0; w < jobs; w++)); do
		[[ ! -e $dir/worker-$w.failed ]] || die "host preparation failed: $(tail -n 20 "$dir/worker-$w.log")"
	done
	rm -f "$dir"/worker-*.log
	phase "host keys and namespaces ready"

	# the root netns must not reach hidden
	if ip route get "$HIDDEN_NET.2" >/dev/null 2>&1; then
		die "the root netns has a route to hidden: $(ip route get "$HIDDEN_NET.2")"
	fi

	# all sshds and the agent run under the supervisor; wait for them
	for k in "${!H_NAME[@]}"; do printf '%s\t%s\n' "${H_NAME[k]}" "${H_NS[k]}"; done >"$dir/launch.list"
	setsid -f "$BASH" "$SELF" _supervise "$dir" </dev/null >"$dir/supervisor.log" 2>&1
	phase "supervisor started"
	wait_sshds "$dir"
	phase "all sshds accept TCP"
	for ((t = 0; t < 100; t++)); do
		[[ -S $dir/agent.sock ]] && break
		sleep 0.05
	done
	SSH_AUTH_SOCK=$dir/agent.sock ssh-add -q "$dir/agent_key" </dev/null ||
		die "could not load agent_key into ssh-agent: $(cat "$dir/agent.log" "$dir/supervisor.log")"

	write_outputs "$dir" "$n"
	check_inventory "$dir" $((n + 5))
	trap - EXIT
	phase "up: $n plain hosts + 5 variants, prefix $PREFIX, subnet $SUBNET.0.0/16; facts in $dir/fleet.env"
}

# --- status -------------------------------------------------------------------------

cmd_status() {
	local dir name addr port ns group pid st bad=0 k=0
	[[ $# -eq 1 ]] || usage
	dir=$(realpath -m "$1")
	load_settings "$dir"
	echo "prefix=$PREFIX subnet=$SUBNET.0.0/16 bridge=$BR netns=$(prefix_netns | wc -l) links=$(prefix_links | wc -l)"
	pid=$(cat "$dir/agent.pid" 2>/dev/null || true)
	if owned_pid "$pid" "$dir"; then echo "agent: up (pid $pid, $dir/agent.sock)"; else echo "agent: DOWN"; bad=1; fi
	[[ -f $dir/hosts.tsv ]] || { echo "no $dir/hosts.tsv (fleet not up?)"; return 1; }
	H_NAME=() H_ADDR=() H_PORT=()
	while IFS=$'\t' read -r name addr port ns group; do
		H_NAME[k]=$name H_ADDR[k]=$addr H_PORT[k]=$port
		pid=$(cat "$dir/hosts/$name/launch.pid" 2>/dev/null || true)
		st=up
		if ! owned_pid "$pid" "$dir"; then
			st="DOWN (no sshd)"
		elif ! probe "$k"; then
			st="DOWN (no TCP)"
		fi
		[[ $st == up ]] || bad=1
		printf '%-10s %-8s %-15s %-5s %-14s %s\n' "$name" "$group" "$addr" "$port" "$ns" "$st"
		k=$((k + 1))
	done <"$dir/hosts.tsv"
	return $bad
}

SELF=$(realpath "${BASH_SOURCE[0]}")
case ${1:-} in
up) shift; cmd_up "$@" ;;
down) shift; cmd_down "$@" ;;
status) shift; cmd_status "$@" ;;
_supervise) shift; cmd_supervise "$@" ;;
*) usage ;;
esac
