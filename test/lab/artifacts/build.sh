#!/bin/bash
# Builds the upstream artifacts a kubeadm cluster needs, from source fetched
# through the Go module proxy (plus a few Debian packages), into a cache keyed
# by Kubernetes version, and lays them out like the upstream release sites.
# See README.md beside this file for the layout. Idempotent: a step whose
# inputs have not changed is skipped, so a second run takes seconds.
#
# Usage: test/lab/artifacts/build.sh [STEP...]
#   with no STEP, runs all of them in order; STEPs:
#   k8s agnhost etcd coredns containerd runc crictl cni pause kube-proxy-rootfs
#   netpol flannel metrics-server helm traefik node-exporter prometheus-operator
#   promtool prometheus alertmanager victoria-logs haproxy-rootfs images mirror
#
# Environment (see versions.sh for the versions):
#   ARTIFACTS_CACHE       output folder (default <repo>/.cache/artifacts/<KUBE_VERSION>)
#   ARTIFACTS_WAIT_QUIET  seconds with no qemu-system-x86_64 running to wait for
#                         before compiling (default 0: do not wait); gives up after
#                         ARTIFACTS_WAIT_MAX seconds (default 2400)
#   ARTIFACTS_FORCE=1     ignore the stamps and redo every step asked for
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF=$HERE/$(basename "${BASH_SOURCE[0]}")
# shellcheck source=versions.sh
. "$HERE/versions.sh"

export PATH=/usr/local/go/bin:$PATH
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false CGO_ENABLED=0
unset GOOS GOARCH GOBIN

C=$ARTIFACTS_CACHE
mkdir -p "$C"/{bin,bin/cni,work,logs,stamps,tools,images,mirror}
GO_VERSION=$(go env GOVERSION)
NICE=(nice -n 10)
WAIT_QUIET=${ARTIFACTS_WAIT_QUIET:-0}
WAIT_MAX=${ARTIFACTS_WAIT_MAX:-2400}
MAJOR_MINOR=${KUBE_VERSION#v}; MAJOR_MINOR=${MAJOR_MINOR%.*}   # 1.34

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { log "ERROR: $*" >&2; exit 1; }

# --- waiting for a quiet CPU ---------------------------------------------------
qemu_running() {
	local e
	for e in /proc/[0-9]*/exe; do
		[[ $(readlink "$e" 2>/dev/null) == */qemu-system-x86_64 ]] && return 0
	done
	return 1
}
WAITED=0
wait_quiet() {
	((WAIT_QUIET > 0 && WAITED == 0)) || return 0
	WAITED=1
	local start=$SECONDS since=-1
	while :; do
		if qemu_running; then since=-1; elif ((since < 0)); then since=$SECONDS; fi
		((since >= 0 && SECONDS - since >= WAIT_QUIET)) && break
		if ((SECONDS - start >= WAIT_MAX)); then
			log "waited $((SECONDS - start))s for QEMU to stop; going ahead anyway"
			return 0
		fi
		log "waiting for a quiet CPU (qemu-system-x86_64 $( ((since < 0)) && echo running || echo "gone for $((SECONDS - since))s"))"
		sleep 30
	done
	log "CPU quiet after waiting $((SECONDS - start))s"
}

# need_debs PACKAGE...: install the missing Debian packages (when root)
need_debs() {
	local p missing=()
	for p in "$@"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || missing+=("$p")
	done
	((${#missing[@]})) || return 0
	((EUID == 0)) || die "missing Debian packages: ${missing[*]} (apt-get install them)"
	log "installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; }
}

# --- steps and stamps -------------------------------------------------------------
# step NAME KEY OUTPUT... -- FUNCTION [ARGS]
# Runs FUNCTION (output to logs/NAME.log) unless stamps/NAME holds KEY and every
# OUTPUT exists. HEAVY=1 in the environment of the call makes it wait for a
# quiet CPU first.
declare -A TIMES
step() {
	local name=$1 key=$2; shift 2
	local outs=() o ok=1
	while [[ $1 != -- ]]; do outs+=("$1"); shift; done
	shift
	for o in "${outs[@]}"; do [[ -e $o ]] || ok=0; done
	if [[ ${ARTIFACTS_FORCE:-} != 1 && $ok == 1 && -f $C/stamps/$name && "$(cat "$C/stamps/$name")" == "$key" ]]; then
		log "$name: cached"
		TIMES[$name]=cached
		return 0
	fi
	[[ ${HEAVY:-0} == 1 ]] && wait_quiet
	log "$name: building (log: $C/logs/$name.log)"
	local t0=$SECONDS
	rm -f "$C/stamps/$name"
	printf 'step %s, key: %s\n' "$name" "$key" >"$C/logs/$name.log"
	if ! ("$@") >>"$C/logs/$name.log" 2>&1; then
		tail -n 40 "$C/logs/$name.log" >&2
		die "$name failed after $((SECONDS - t0))s (full log: $C/logs/$name.log)"
	fi
	printf '%s' "$key" >"$C/stamps/$name"
	TIMES[$name]="$((SECONDS - t0))s"
	log "$name: done in $((SECONDS - t0))s"
}

# fingerprint FILE...: size and mtime of each file, as a cache key part
fingerprint() { stat -c '%n %s %Y' "$@" | sha256sum | cut -c1-16; }
# srchash DIR: content of a source folder
srchash() { (cd "$1" && find . -type f ! -name '*~' -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16); }

# modinfo MODULE@VERSION FIELD: a field of `go mod download -json`
modinfo() { go mod download -json "$1" | sed -n "s/^[[:space:]]*\"$2\": \"\(.*\)\",\{0,1\}\$/\1/p" | head -n1; }
# modtime MODULE@VERSION: the module's publication time (RFC 3339)
modtime() { go list -m -json "$1" | sed -n 's/^[[:space:]]*"Time": "\(.*\)",\{0,1\}$/\1/p' | head -n1; }
# modcommit MODULE@VERSION: the commit the proxy knows for it, if any
modcommit() { go mod download -json "$1" | sed -n 's/^[[:space:]]*"Hash": "\([0-9a-f]\{40\}\)".*/\1/p' | head -n1; }

# One fixed time for every file in tarballs and images: Kubernetes' release time.
KUBE_TIME=$(cd /tmp && modtime "k8s.io/kubernetes@$KUBE_VERSION")
[[ -n $KUBE_TIME ]] || die "cannot find the release time of k8s.io/kubernetes@$KUBE_VERSION"
EPOCH=$(date -u -d "$KUBE_TIME" +%s)

# --- Kubernetes -------------------------------------------------------------------
K8S_BINS=(kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy)
K8S_TAGS=selinux,notest,grpcnotrace   # as hack/lib/golang.sh for release builds
k8s_ldflags() {
	local p date
	date=$(date -u -d "@$EPOCH" +%Y-%m-%dT%H:%M:%SZ)
	printf '%s' "-s -w"
	for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
		printf ' -X %s.gitVersion=%s -X %s.gitMajor=%s -X %s.gitMinor=%s -X %s.gitTreeState=clean -X %s.buildDate=%s' \
			"$p" "$KUBE_VERSION" "$p" "${MAJOR_MINOR%%.*}" "$p" "${MAJOR_MINOR#*.}" "$p" "$p" "$date"
	done
}

# The k8s.io/kubernetes module points its 29-odd staging modules at ./staging,
# which a dependency cannot use: a wrapper module requires it and replaces
# each staging module with its published v0.<minor>.<patch>.
build_k8s() {
	local d=$C/work/k8s mod sv=v0.${KUBE_VERSION#v1.} b
	mkdir -p "$d"
	cd "$d"
	mod=$(modinfo "k8s.io/kubernetes@$KUBE_VERSION" GoMod)
	{
		printf 'module example.invalid/k8sbins\n\ngo %s\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' \
			"$(awk '$1 == "go" {print $2; exit}' "$mod")" "$KUBE_VERSION"
		awk '$2 == "=>" && $3 ~ /^\.\/staging\// {printf "\t%s => %s '"$sv"'\n", $1, $1}' "$mod"
		printf ')\n'
	} >go.mod
	printf '//go:build tools\n\npackage tools\n\nimport (\n' >tools.go
	for b in "${K8S_BINS[@]}"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$b" >>tools.go; done
	printf ')\n' >>tools.go
	echo "staging replaces: $(grep -c ' => ' go.mod)"
	go mod tidy
	local pkgs=()
	for b in "${K8S_BINS[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
	"${NICE[@]}" go build -trimpath -tags "$K8S_TAGS" -ldflags "$(k8s_ldflags)" -o "$C/bin/" "${pkgs[@]}"
	"$C/bin/kubeadm" version -o short
	"$C/bin/kubelet" --version
}

# --- agnhost ---------------------------------------------------------------------------
# Kubernetes' e2e test image, built from the same module as the binaries
# above (test/images/agnhost), in a wrapper module of its own so the k8s
# step's stamp is untouched; the Go build cache shares their packages.
build_agnhost() {
	local d=$C/work/agnhost sv=v0.${KUBE_VERSION#v1.} mod
	mkdir -p "$d"
	cd "$d"
	mod=$(modinfo "k8s.io/kubernetes@$KUBE_VERSION" GoMod)
	{
		printf 'module example.invalid/agnhost\n\ngo %s\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' \
			"$(awk '$1 == "go" {print $2; exit}' "$mod")" "$KUBE_VERSION"
		awk '$2 == "=>" && $3 ~ /^\.\/staging\// {printf "\t%s => %s '"$sv"'\n", $1, $1}' "$mod"
		printf ')\n'
	} >go.mod
	printf '//go:build tools\n\npackage tools\n\nimport _ "k8s.io/kubernetes/test/images/agnhost"\n' >tools.go
	go mod tidy
	CGO_ENABLED=0 "${NICE[@]}" go build -trimpath -ldflags "-s -w" -o "$C/bin/agnhost" k8s.io/kubernetes/test/images/agnhost
	"$C/bin/agnhost" --version 2>/dev/null || "$C/bin/agnhost" --help | head -3
}

# --- etcd ---------------------------------------------------------------------------
# etcd's modules replace each other with ../ paths, so `go install` refuses
# them; a wrapper module requires server, etcdctl and etcdutl at one version
# and a three-line main calls etcdmain.Main like etcd's own main does.
build_etcd() {
	local d=$C/work/etcd v=$ETCD_VERSION ld
	mkdir -p "$d"
	cd "$d"
	cat >go.mod <<-EOF
	module example.invalid/etcdbins

	go 1.24

	require (
		go.etcd.io/etcd/server/v3 $v
		go.etcd.io/etcd/etcdctl/v3 $v
		go.etcd.io/etcd/etcdutl/v3 $v
	)
	EOF
	cat >main.go <<-'EOF'
	package main

	import (
		"os"

		"go.etcd.io/etcd/server/v3/etcdmain"
	)

	func main() { etcdmain.Main(os.Args) }
	EOF
	printf '//go:build tools\n\npackage main\n\nimport (\n\t_ "go.etcd.io/etcd/etcdctl/v3"\n\t_ "go.etcd.io/etcd/etcdutl/v3"\n)\n' >tools.go
	go mod tidy
	ld="-s -w"
	"${NICE[@]}" go build -trimpath -ldflags "$ld" -o "$C/bin/etcd" .
	"${NICE[@]}" go build -trimpath -ldflags "$ld" -o "$C/bin/etcdctl" go.etcd.io/etcd/etcdctl/v3
	"${NICE[@]}" go build -trimpath -ldflags "$ld" -o "$C/bin/etcdutl" go.etcd.io/etcd/etcdutl/v3
	"$C/bin/etcd" --version
	"$C/bin/etcdctl" version
	"$C/bin/etcdutl" version
}

# --- CoreDNS, crictl, CNI plugins, runc: plain `go install MODULE@VERSION` -------------
build_coredns() {
	local commit
	commit=$(cd /tmp && modcommit "github.com/coredns/coredns@$COREDNS_VERSION")
	GOBIN=$C/bin "${NICE[@]}" go install -trimpath \
		-ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=${commit:0:7}" \
		"github.com/coredns/coredns@$COREDNS_VERSION"
	"$C/bin/coredns" -version
}

build_crictl() {
	GOBIN=$C/bin "${NICE[@]}" go install -trimpath \
		-ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION" \
		"sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION"
	"$C/bin/crictl" --version
}

CNI_PLUGINS=(main/bridge main/dummy main/host-device main/ipvlan main/loopback main/macvlan main/ptp main/tap main/vlan
	ipam/dhcp ipam/host-local ipam/static meta/bandwidth meta/firewall meta/portmap meta/sbr meta/tuning meta/vrf)
build_cni() {
	local p pkgs=()
	for p in "${CNI_PLUGINS[@]}"; do pkgs+=("github.com/containernetworking/plugins/plugins/$p@$CNI_PLUGINS_VERSION"); done
	GOBIN=$C/bin/cni "${NICE[@]}" go install -trimpath \
		-ldflags "-s -w -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=$CNI_PLUGINS_VERSION" \
		"${pkgs[@]}"
	ls -l "$C/bin/cni"
	# a CNI plugin prints its version when CNI_COMMAND=VERSION
	CNI_COMMAND=VERSION "$C/bin/cni/bridge" </dev/null || true
	"$C/bin/cni/bridge" --version 2>&1 || true
}

# runc needs cgo and libseccomp; built like its Makefile's `static` target.
build_runc() {
	need_debs gcc libc6-dev libseccomp-dev pkg-config
	GOBIN=$C/bin CGO_ENABLED=1 "${NICE[@]}" go install -trimpath -buildmode=pie \
		-tags "seccomp urfave_cli_no_docs netgo osusergo" \
		-ldflags "-s -w -linkmode external -extldflags -static-pie" \
		"github.com/opencontainers/runc@$RUNC_VERSION"
	"$C/bin/runc" --version
	file "$C/bin/runc" 2>/dev/null || true
}

# --- containerd ---------------------------------------------------------------------
# containerd v2's go.mod has exclude directives, which `go install` refuses:
# a wrapper module copies them.
build_containerd() {
	local d=$C/work/containerd m=github.com/containerd/containerd/v2 mod
	mkdir -p "$d"
	cd "$d"
	mod=$(modinfo "$m@$CONTAINERD_VERSION" GoMod)
	{
		printf 'module example.invalid/containerdbins\n\ngo %s\n\nrequire %s %s\n\n' \
			"$(awk '$1 == "go" {print $2; exit}' "$mod")" "$m" "$CONTAINERD_VERSION"
		sed -n '/^exclude (/,/^)/p; /^exclude [^(]/p' "$mod"
	} >go.mod
	printf '//go:build tools\n\npackage tools\n\nimport (\n\t_ "%s/cmd/containerd"\n\t_ "%s/cmd/containerd-shim-runc-v2"\n\t_ "%s/cmd/ctr"\n)\n' "$m" "$m" "$m" >tools.go
	go mod tidy
	"${NICE[@]}" go build -trimpath -tags "no_btrfs urfave_cli_no_docs" \
		-ldflags "-s -w -X $m/version.Version=$CONTAINERD_VERSION -X $m/version.Package=$m" \
		-o "$C/bin/" "$m/cmd/containerd" "$m/cmd/containerd-shim-runc-v2" "$m/cmd/ctr"
	"$C/bin/containerd" --version
	"$C/bin/ctr" --version
}

# --- pause ----------------------------------------------------------------------------
# pause.c ships in the k8s.io/kubernetes module (build/pause/linux).
build_pause() {
	local src
	need_debs gcc libc6-dev
	src=$(cd /tmp && modinfo "k8s.io/kubernetes@$KUBE_VERSION" Dir)/build/pause/linux/pause.c
	gcc -Os -Wall -Werror -static -DVERSION="v$PAUSE_VERSION" -o "$C/bin/pause" "$src"
	strip "$C/bin/pause"
	"$C/bin/pause" -v
}

# --- kube-proxy's userland: iptables, ipset, conntrack, nft from Debian -----------------
KP_PACKAGES=(iptables ipset conntrack nftables)
kp_closure() {
	apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
		--no-replaces --no-enhances "${KP_PACKAGES[@]}" | grep -E '^[a-z0-9]' | sort -u
}
build_kp_rootfs() {
	local debs=$C/work/debs r=$C/work/kube-proxy-rootfs pkgs f t
	mkdir -p "$debs"
	pkgs=$(kp_closure)
	[[ -n $pkgs ]] || { apt-get update; pkgs=$(kp_closure); }
	# shellcheck disable=SC2086
	(cd "$debs" && rm -f ./*.deb && { apt-get download $pkgs || { apt-get update && apt-get download $pkgs; }; })
	rm -rf "$r"
	mkdir -p "$r"
	for f in "$debs"/*.deb; do dpkg-deb -x "$f" "$r"; done
	# what update-alternatives would do; Debian 12 defaults to the nft backend
	for t in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
		ln -sfn "xtables-nft-multi" "$r/usr/sbin/$t"
	done
	rm -rf "$r"/usr/share/{doc,man,info,locale,lintian,bug} "$r"/etc/init.d "$r"/lib/systemd "$r"/usr/lib/systemd
	mkdir -p "$r/run" "$r/var/lib" "$r/lib/modules"
	ls "$debs"
	chroot "$r" /usr/sbin/iptables --version 2>/dev/null || echo "(no chroot check)"
	du -sh "$r"
}

# wrapper_module DIR MODULE VERSION GO PACKAGE...: a module in DIR (made
# and entered) requiring MODULE at VERSION, with each PACKAGE (a main
# package) imported under a build tag, tidied: `go build PACKAGE` then
# builds it with the module's own requirements.
wrapper_module() {
	local dir=$1 m=$2 v=$3 gover=$4 p
	shift 4
	mkdir -p "$dir"
	cd "$dir"
	printf 'module example.invalid/%sbin\n\ngo %s\n\nrequire %s %s\n' "$(basename "$dir" | tr -d _-)" "$gover" "$m" "$v" >go.mod
	{
		printf '//go:build tools\n\npackage tools\n\nimport (\n'
		for p in "$@"; do printf '\t_ "%s"\n' "$p"; done
		printf ')\n'
	} >tools.go
	go mod tidy
}

# --- the add-ons' programs: kube-network-policies, metrics-server and flannel -----------
# kube-network-policies' main is the package ./cmd (its Dockerfile builds it
# as /bin/netpol); a wrapper module builds it under that name.
build_netpol() {
	local m=sigs.k8s.io/kube-network-policies
	wrapper_module "$C/work/netpol" "$m" "$KUBE_NETWORK_POLICIES_VERSION" 1.24 "$m/cmd"
	"${NICE[@]}" go build -trimpath -ldflags "-s -w" -o "$C/bin/netpol" "$m/cmd"
	"$C/bin/netpol" --help 2>&1 | head -n 5 || true
}

# metrics-server (assets/charts/metrics-server), built as its Makefile
# does (the version into client-go's version package) through a wrapper
# module, as netpol.
build_metrics_server() {
	local m=sigs.k8s.io/metrics-server
	wrapper_module "$C/work/metrics-server" "$m" "$METRICS_SERVER_VERSION" 1.24 "$m/cmd/metrics-server"
	"${NICE[@]}" go build -trimpath -ldflags "-s -w -X k8s.io/client-go/pkg/version.gitVersion=$METRICS_SERVER_VERSION" \
		-o "$C/bin/metrics-server" "$m/cmd/metrics-server"
	"$C/bin/metrics-server" --help 2>&1 | head -n 3 || true
}

# helm, the CLI the bundle carries beside kubectl (bin/helm): the Helm SDK
# module metalk8s links, built as its Makefile does (CGO off, the version
# into internal/version), through a wrapper module as metrics-server.
build_helm() {
	local m=helm.sh/helm/v4 commit
	wrapper_module "$C/work/helm" "$m" "$HELM_VERSION" 1.26 "$m/cmd/helm"
	commit=$(modcommit "$m@$HELM_VERSION")
	CGO_ENABLED=0 "${NICE[@]}" go build -trimpath -ldflags "-s -w -X $m/internal/version.version=$HELM_VERSION \
		-X $m/internal/version.metadata= -X $m/internal/version.gitCommit=$commit -X $m/internal/version.gitTreeState=clean" \
		-o "$C/bin/helm" "$m/cmd/helm"
	"$C/bin/helm" version
}

# node_exporter, the node-exporter service monitoring runs on every node
# (pkg/node): its module built as promu builds releases (CGO off, the
# version into prometheus/common/version), through a wrapper module.
build_node_exporter() {
	local m=github.com/prometheus/node_exporter v=github.com/prometheus/common/version commit date
	wrapper_module "$C/work/node_exporter" "$m" "$NODE_EXPORTER_VERSION" 1.26 "$m"
	commit=$(modcommit "$m@$NODE_EXPORTER_VERSION")
	date=$(date -u -d "$(modtime "$m@$NODE_EXPORTER_VERSION")" +%Y%m%d-%H:%M:%S)
	CGO_ENABLED=0 "${NICE[@]}" go build -trimpath -ldflags "-s -w -X $v.Version=${NODE_EXPORTER_VERSION#v} -X $v.Revision=$commit \
		-X $v.Branch=HEAD -X $v.BuildUser=metalk8s-lab -X $v.BuildDate=$date" -o "$C/bin/node_exporter" "$m"
	"$C/bin/node_exporter" --version
}

# prometheus-operator and its config reloader (assets/charts/monitoring),
# built as its Makefile does (CGO off, the version into
# prometheus/common/version), through a wrapper module.
build_prometheus_operator() {
	local m=github.com/prometheus-operator/prometheus-operator v=github.com/prometheus/common/version commit date b
	wrapper_module "$C/work/prometheus-operator" "$m" "$PROMETHEUS_OPERATOR_VERSION" 1.24 "$m/cmd/operator" "$m/cmd/prometheus-config-reloader"
	commit=$(modcommit "$m@$PROMETHEUS_OPERATOR_VERSION")
	date=$(date -u -d "$(modtime "$m@$PROMETHEUS_OPERATOR_VERSION")" +%Y%m%d-%H:%M:%S)
	for b in operator prometheus-config-reloader; do
		CGO_ENABLED=0 "${NICE[@]}" go build -trimpath -ldflags "-s -w -X $v.Version=${PROMETHEUS_OPERATOR_VERSION#v} -X $v.Revision=$commit \
			-X $v.Branch=HEAD -X $v.BuildUser=metalk8s-lab -X $v.BuildDate=$date" -o "$C/bin/$b" "$m/cmd/$b"
		"$C/bin/$b" --version
	done
}

# promtool, Prometheus's checker (the unit tests judge the configuration
# prometheus-operator generates with it), and Prometheus itself, without
# its web UI (built from npm; the unit tests that run its queries and
# rules use its API): from the module of the Prometheus version the
# monitoring addon runs (v3.5.1 is the module's v0.305.1), built as promu
# does (tag netgo, the version ldflags).
build_prometheus_cmd() {
	local cmd=$1 m=github.com/prometheus/prometheus v=github.com/prometheus/common/version mv date
	mv=$(prometheus_module_version "$PROMETHEUS_VERSION")
	wrapper_module "$C/work/$cmd" "$m" "$mv" 1.24 "$m/cmd/$cmd"
	date=$(date -u -d "$(modtime "$m@$mv")" +%Y%m%d-%H:%M:%S)
	CGO_ENABLED=0 "${NICE[@]}" go build -trimpath -tags netgo -ldflags "-s -w -X $v.Version=${PROMETHEUS_VERSION#v} \
		-X $v.Branch=HEAD -X $v.BuildUser=metalk8s-lab -X $v.BuildDate=$date" -o "$C/bin/$cmd" "$m/cmd/$cmd"
	"$C/bin/$cmd" --version
}
# Alertmanager (assets/charts/monitoring), built as promu does (CGO off,
# the version into prometheus/common/version; its web UI is inside the
# module), through a wrapper module.
build_alertmanager() {
	local m=github.com/prometheus/alertmanager v=github.com/prometheus/common/version commit date
	wrapper_module "$C/work/alertmanager" "$m" "$ALERTMANAGER_VERSION" 1.24 "$m/cmd/alertmanager"
	commit=$(modcommit "$m@$ALERTMANAGER_VERSION")
	date=$(date -u -d "$(modtime "$m@$ALERTMANAGER_VERSION")" +%Y%m%d-%H:%M:%S)
	CGO_ENABLED=0 "${NICE[@]}" go build -trimpath -tags netgo -ldflags "-s -w -X $v.Version=${ALERTMANAGER_VERSION#v} -X $v.Revision=$commit \
		-X $v.Branch=HEAD -X $v.BuildUser=metalk8s-lab -X $v.BuildDate=$date" -o "$C/bin/alertmanager" "$m/cmd/alertmanager"
	"$C/bin/alertmanager" --version
}
# VictoriaLogs and vlagent (assets/charts/logging), built as its Makefile
# does (CGO off, the version into VictoriaMetrics' lib/buildinfo; the web
# UI is inside the module), through a wrapper module.
build_victoria_logs() {
	local m=github.com/VictoriaMetrics/VictoriaLogs b date
	wrapper_module "$C/work/victoria-logs" "$m" "$VICTORIA_LOGS_VERSION" 1.26 "$m/app/victoria-logs" "$m/app/vlagent"
	date=$(date -u -d "$(modtime "$m@$VICTORIA_LOGS_VERSION")" +%Y%m%d-%H%M%S)
	for b in victoria-logs vlagent; do
		CGO_ENABLED=0 "${NICE[@]}" go build -trimpath -ldflags "-s -w \
			-X 'github.com/VictoriaMetrics/VictoriaMetrics/lib/buildinfo.Version=$b-$date-tags-$VICTORIA_LOGS_VERSION-0-g0'" \
			-o "$C/bin/$b" "$m/app/$b"
		"$C/bin/$b" -version
	done
}

# prometheus_module_version v3.5.1: v0.305.1, the Go module version of a
# Prometheus 3 release (3.MINOR.PATCH is v0.3MM.PATCH, MM two digits).
prometheus_module_version() {
	local minor patch
	IFS=. read -r _ minor patch <<<"${1#v}"
	printf 'v0.3%02d.%s\n' "$minor" "$patch"
}

# Traefik (assets/charts/traefik), through a wrapper module holding
# Traefik's own requirements, replaces and exclude. The Go module proxy
# refuses 16 modules of its graph, so this build only (README.md):
#   - github.com/traefik/traefik/dynamic/ext, a nested module of Traefik's
#     repository the proxy does not serve: traefik/ext, two empty types;
#   - the go-http-auth fork Traefik replaces to (a 2026 commit): its 2020
#     commit, which the proxy serves and which has what Traefik calls;
#   - 14 DNS providers' SDKs that lego (ACME) imports: lego is built from
#     a copy of its module with its providers table replaced by
#     traefik/lego-dns-providers.go.in (DNS-01 challenges refused), so no
#     provider package, and none of those SDKs, is compiled.
# The web dashboard is not built (the module has no built web UI); the
# chart does not turn it on.
TRAEFIK_SRC=$HERE/traefik
TRAEFIK_CODENAME=langres   # v3.7's, as its release notes name it
build_traefik() {
	local d=$C/work/traefik m=github.com/traefik/traefik/v3 lego=github.com/go-acme/lego/v5 tdir lver ldir
	rm -rf "$d"
	mkdir -p "$d"
	cd "$d"
	cp -r "$TRAEFIK_SRC/ext" ext
	tdir=$(cd /tmp && modinfo "$m@$TRAEFIK_VERSION" Dir)   # outside any module
	[[ -d $tdir ]] || die "cannot download $m@$TRAEFIK_VERSION"
	lver=$(awk -v l="$lego" '$1 == l {print $2; exit}' "$tdir/go.mod")
	ldir=$(cd /tmp && modinfo "$lego@$lver" Dir)
	cp -r "$ldir" lego
	chmod -R u+w lego
	rm -f lego/providers/dns/*_test.go
	cp "$TRAEFIK_SRC/lego-dns-providers.go.in" lego/providers/dns/zz_gen_dns_providers.go
	{
		printf 'module example.invalid/traefikbin\n\ngo %s\n\nrequire %s %s\n\n' \
			"$(awk '$1 == "go" {print $2; exit}' "$tdir/go.mod")" "$m" "$TRAEFIK_VERSION"
		awk '/^require \(/ {f = 1; print; next} f && /^\)/ {f = 0; print; next} f {print}' "$tdir/go.mod"
		# Traefik's replaces (in a block or on a line) but the two the
		# proxy refuses, then ours
		printf '\nreplace (\n'
		awk -v a=github.com/abbot/go-http-auth -v e=github.com/traefik/traefik/dynamic/ext '
			/^replace \(/ {f = 1; next}
			f && /^\)/ {f = 0; next}
			/^replace [^(]/ {sub(/^replace /, ""); if ($1 != a && $1 != e) print "\t" $0; next}
			f && $1 != a && $1 != e {print}' "$tdir/go.mod"
		printf '\tgithub.com/abbot/go-http-auth => github.com/containous/go-http-auth v0.4.1-0.20200324110947-a37a7636d23e\n'
		printf '\tgithub.com/traefik/traefik/dynamic/ext => ./ext\n\t%s => ./lego\n)\n\n' "$lego"
		grep '^exclude ' "$tdir/go.mod" || true
	} >go.mod
	printf '//go:build tools\n\npackage tools\n\nimport _ "%s/cmd/traefik"\n' "$m" >tools.go
	sed -n '/^replace (/,$p' go.mod
	# -mod=mod writes go.sum here; Traefik's require block is complete,
	# so it pins every version.
	local date
	date=$(date -u -d "@$EPOCH" +%Y-%m-%dT%H:%M:%SZ)
	"${NICE[@]}" go build -mod=mod -trimpath -ldflags "-s -w -X $m/pkg/version.Version=$TRAEFIK_VERSION \
		-X $m/pkg/version.Codename=$TRAEFIK_CODENAME -X $m/pkg/version.BuildDate=$date" \
		-o "$C/bin/traefik" "$m/cmd/traefik"
	"$C/bin/traefik" version
}

# The lab's flanneld is our own VXLAN-only main (test/lab/artifacts/flannel,
# a module requiring github.com/flannel-io/flannel), not upstream's binary.
FLANNEL_SRC=$HERE/flannel
build_flannel() {
	[[ -f $FLANNEL_SRC/go.mod ]] || die "no $FLANNEL_SRC/go.mod: the lab's flanneld source is missing"
	cd "$FLANNEL_SRC"
	"${NICE[@]}" go build -trimpath -ldflags "-s -w" -o "$C/bin/flanneld" .
	"$C/bin/flanneld" --help 2>&1 | head -n 5 || true
}

# --- HAProxy from Debian 12's package and its libraries --------------------------------
# The apiserver load balancer's image: haproxy and the lib* packages of its
# dependency closure (not dpkg, adduser and the like, which only its
# maintainer scripts use), following lib* dependencies only.
haproxy_closure() {
	local todo=(haproxy) p d
	local -A seen=()
	while ((${#todo[@]})); do
		p=${todo[0]}; todo=("${todo[@]:1}")
		[[ -z ${seen[$p]:-} ]] || continue
		seen[$p]=1
		echo "$p"
		for d in $(apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces \
			--no-enhances --no-pre-depends "$p" | sed -n 's/^ *|\{0,1\}Depends: \(lib[a-z0-9.+-]*\)$/\1/p'); do
			todo+=("$d")
		done
	done | sort
}
build_haproxy_rootfs() {
	local debs=$C/work/haproxy-debs r=$C/work/haproxy-rootfs pkgs f have
	have=$(apt-cache policy haproxy | sed -n 's/^ *Candidate: \([0-9.]*\).*/\1/p')
	[[ $have == "$HAPROXY_VERSION" ]] || { apt-get update; have=$(apt-cache policy haproxy | sed -n 's/^ *Candidate: \([0-9.]*\).*/\1/p'); }
	[[ $have == "$HAPROXY_VERSION" ]] || die "Debian's haproxy is $have, HAPROXY_VERSION is $HAPROXY_VERSION"
	mkdir -p "$debs"
	pkgs=$(haproxy_closure)
	# shellcheck disable=SC2086
	(cd "$debs" && rm -f ./*.deb && apt-get download $pkgs)
	rm -rf "$r"
	mkdir -p "$r"
	for f in "$debs"/*.deb; do dpkg-deb -x "$f" "$r"; done
	rm -rf "$r"/usr/share/{doc,man,info,locale,lintian,bug,vim} "$r"/etc/init.d "$r"/etc/default "$r"/etc/logrotate.d \
		"$r"/etc/rsyslog.d "$r"/lib/systemd "$r"/usr/lib/systemd
	mkdir -p "$r/run/haproxy" "$r/var/lib/haproxy" "$r/usr/local/etc/haproxy"
	ls "$debs"
	chroot "$r" /usr/sbin/haproxy -v 2>/dev/null | sed -n 1p || echo "(no chroot check)"
	du -sh "$r"
}

# --- a tiny common base for every image ---------------------------------------------------
make_base_rootfs() {
	local b=$C/work/base-rootfs
	rm -rf "$b"
	mkdir -p "$b/etc/ssl/certs" "$b/tmp" "$b/var/run" "$b/root" "$b/home/nonroot"
	chmod 1777 "$b/tmp"
	chmod 700 "$b/root"
	printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$b/etc/passwd"
	printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' >"$b/etc/group"
	printf 'hosts: files dns\n' >"$b/etc/nsswitch.conf"
	cp /etc/ssl/certs/ca-certificates.crt "$b/etc/ssl/certs/ca-certificates.crt"
	# mtimes are normalised by mkimage
}

# --- images ---------------------------------------------------------------------------------
build_tool() { # build_tool NAME: builds test/lab/artifacts/NAME into tools/
	(cd "$HERE/$1" && go build -trimpath -o "$C/tools/$1" .)
}

images_spec() {
	local ref repo tag b=$C/bin base=$C/work/base-rootfs
	while read -r ref; do
		[[ -n $ref ]] || continue
		repo=${ref%:*}; repo=${repo#registry.k8s.io/}; tag=${ref##*:}
		case $repo in
		kube-apiserver | kube-controller-manager | kube-scheduler | kube-proxy)
			# dl.k8s.io publishes these four as docker-archives next to the
			# binaries, tagged <name>-amd64 (build/lib/release.sh); the registry
			# has both names, as registry.k8s.io does
			echo "image $ref registry.k8s.io/$repo-$ARCH:$tag"
			echo "archive $C/work/image-tars/$repo.tar registry.k8s.io/$repo-$ARCH:$tag"
			echo "layer"; echo "tree $base"
			if [[ $repo == kube-proxy ]]; then echo "layer"; echo "tree $C/work/kube-proxy-rootfs"; fi
			echo "layer"; echo "file $b/$repo /usr/local/bin/$repo"
			;;
		etcd)
			echo "image $ref"
			echo "layer"; echo "tree $base"
			echo "layer"
			echo "file $b/etcd /usr/local/bin/etcd"
			echo "file $b/etcdctl /usr/local/bin/etcdctl"
			echo "file $b/etcdutl /usr/local/bin/etcdutl"
			echo "dir /var/lib/etcd 0700"
			;;
		coredns/coredns)
			echo "image $ref"
			echo "entrypoint /coredns"
			echo "layer"; echo "tree $base"
			echo "layer"; echo "file $b/coredns /coredns"
			;;
		pause)
			echo "image $ref"
			echo "entrypoint /pause"
			echo "user 65535:65535"
			echo "layer"; echo "file $b/pause /pause"
			;;
		*) die "kubeadm wants an image this script cannot build: $ref" ;;
		esac
	done <"$C/images/kubeadm-images.txt"
	# the add-ons' images (pkg/bundle's AddonImages)
	local kp=$C/work/kube-proxy-rootfs
	echo "image ghcr.io/flannel-io/flannel:$FLANNEL_VERSION"
	echo "entrypoint /opt/bin/flanneld"
	echo "layer"; echo "tree $base"
	echo "layer"; echo "tree $kp"   # iptables (nft backend), the same layer as kube-proxy's
	echo "layer"; echo "file $b/flanneld /opt/bin/flanneld"
	echo "image registry.k8s.io/networking/kube-network-policies:$KUBE_NETWORK_POLICIES_VERSION"
	echo "cmd /bin/netpol"
	echo "layer"; echo "tree $base"
	echo "layer"; echo "tree $kp"   # nft, which sigs.k8s.io/knftables runs
	echo "layer"; echo "file $b/netpol /bin/netpol"
	echo "image registry.k8s.io/metrics-server/metrics-server:$METRICS_SERVER_VERSION"
	echo "entrypoint /metrics-server"
	echo "user 65534"
	echo "layer"; echo "tree $base"
	echo "layer"; echo "file $b/metrics-server /metrics-server"
	echo "image docker.io/library/traefik:$TRAEFIK_VERSION"
	echo "entrypoint /traefik"
	echo "user 65532:65532"
	echo "layer"; echo "tree $base"
	echo "layer"; echo "file $b/traefik /traefik"
	echo "image registry.k8s.io/e2e-test-images/agnhost:$AGNHOST_VERSION"
	echo "entrypoint /agnhost"
	echo "layer"; echo "tree $base"
	echo "layer"; echo "file $b/agnhost /agnhost"
	# the monitoring and logging addons' (assets/charts/monitoring, logging),
	# laid out as their upstream images: the operator and its pods pass
	# only args, so the entrypoints must be upstream's
	echo "image quay.io/prometheus-operator/prometheus-operator:$PROMETHEUS_OPERATOR_VERSION"
	echo "entrypoint /bin/operator"
	echo "user 65534"
	echo "layer"; echo "tree $base"
	echo "layer"; echo "file $b/operator /bin/operator"
	echo "image quay.io/prometheus-operator/prometheus-config-reloader:$PROMETHEUS_OPERATOR_VERSION"
	echo "entrypoint /bin/prometheus-config-reloader"
	echo "user 65534"
	echo "layer"; echo "tree $base"
	echo "layer"; echo "file $b/prometheus-config-reloader /bin/prometheus-config-reloader"
	echo "image quay.io/prometheus/prometheus:$PROMETHEUS_VERSION"
	echo "entrypoint /bin/prometheus"
	echo "cmd --config.file=/etc/prometheus/prometheus.yml --storage.tsdb.path=/prometheus"
	echo "user 65534"
	echo "layer"; echo "tree $base"
	echo "layer"
	echo "file $b/prometheus /bin/prometheus"
	echo "file $b/promtool /bin/promtool"
	echo "dir /etc/prometheus"
	echo "dir /prometheus 0777"
	echo "image quay.io/prometheus/alertmanager:$ALERTMANAGER_VERSION"
	echo "entrypoint /bin/alertmanager"
	echo "cmd --config.file=/etc/alertmanager/alertmanager.yml --storage.path=/alertmanager"
	echo "user 65534"
	echo "layer"; echo "tree $base"
	echo "layer"
	echo "file $b/alertmanager /bin/alertmanager"
	echo "dir /etc/alertmanager"
	echo "dir /alertmanager 0777"
	echo "image docker.io/victoriametrics/victoria-logs:$VICTORIA_LOGS_VERSION"
	echo "entrypoint /victoria-logs-prod"
	echo "layer"; echo "tree $base"
	echo "layer"; echo "file $b/victoria-logs /victoria-logs-prod"
	echo "image docker.io/victoriametrics/vlagent:$VICTORIA_LOGS_VERSION"
	echo "entrypoint /vlagent-prod"
	echo "layer"; echo "tree $base"
	echo "layer"; echo "file $b/vlagent /vlagent-prod"
	echo "image docker.io/library/haproxy:$HAPROXY_VERSION"
	echo "entrypoint /usr/sbin/haproxy"
	echo "cmd -f /usr/local/etc/haproxy/haproxy.cfg"
	echo "layer"; echo "tree $base"
	echo "layer"; echo "tree $C/work/haproxy-rootfs"
}

build_images() {
	build_tool mkimage
	"$C/bin/kubeadm" config images list --kubernetes-version "$KUBE_VERSION" | tee "$C/images/kubeadm-images.txt"
	printf '%s\n' "ghcr.io/flannel-io/flannel:$FLANNEL_VERSION" \
		"registry.k8s.io/networking/kube-network-policies:$KUBE_NETWORK_POLICIES_VERSION" \
		"docker.io/library/haproxy:$HAPROXY_VERSION" \
		"registry.k8s.io/metrics-server/metrics-server:$METRICS_SERVER_VERSION" \
		"docker.io/library/traefik:$TRAEFIK_VERSION" \
		"registry.k8s.io/e2e-test-images/agnhost:$AGNHOST_VERSION" \
		"quay.io/prometheus-operator/prometheus-operator:$PROMETHEUS_OPERATOR_VERSION" \
		"quay.io/prometheus-operator/prometheus-config-reloader:$PROMETHEUS_OPERATOR_VERSION" \
		"quay.io/prometheus/prometheus:$PROMETHEUS_VERSION" \
		"quay.io/prometheus/alertmanager:$ALERTMANAGER_VERSION" \
		"docker.io/victoriametrics/victoria-logs:$VICTORIA_LOGS_VERSION" \
		"docker.io/victoriametrics/vlagent:$VICTORIA_LOGS_VERSION" | tee "$C/images/addon-images.txt"
	make_base_rootfs
	mkdir -p "$C/work/image-tars"
	images_spec >"$C/images/images.spec"
	cat "$C/images/images.spec"
	"${NICE[@]}" "$C/tools/mkimage" -spec "$C/images/images.spec" -epoch "$EPOCH" \
		-oci "$C/images/oci" -archive "$C/images/k8s-images-$KUBE_VERSION.tar" -list "$C/images/images.txt"
	du -sh "$C/images/oci" "$C/images/k8s-images-$KUBE_VERSION.tar"
}

# --- the release-site mirror -------------------------------------------------------------
sha256_only() { sha256sum "$1" | cut -d' ' -f1 >"$1.sha256"; }                    # dl.k8s.io style
sha256_named() { (cd "$(dirname "$1")" && sha256sum "$(basename "$1")") >"$1.${2:-sha256}"; } # sha256sum -c style
# reproducible .tar.gz: mk_tgz OUT DIR PATH...
mk_tgz() {
	local out=$1 dir=$2; shift 2
	tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$EPOCH" --format=gnu -C "$dir" -cf - "$@" |
		"${NICE[@]}" gzip -n -6 >"$out.tmp"
	mv "$out.tmp" "$out"
}
place() { ln -f "$1" "$2" 2>/dev/null || cp -f "$1" "$2"; }

build_mirror() {
	local m=$C/mirror gh=$C/mirror/github.com d b stage=$C/work/stage
	rm -rf "$m" "$stage"
	mkdir -p "$m" "$stage"

	# dl.k8s.io: bare binaries, .sha256 holding the bare hash
	d=$m/dl.k8s.io/release/$KUBE_VERSION/bin/linux/$ARCH
	mkdir -p "$d"
	for b in "${K8S_BINS[@]}"; do place "$C/bin/$b" "$d/$b"; sha256_only "$d/$b"; done
	for b in kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do
		place "$C/work/image-tars/$b.tar" "$d/$b.tar"; sha256_only "$d/$b.tar"
		printf '%s\n' "$KUBE_VERSION" >"$d/$b.docker_tag"
	done
	printf '%s\n' "$KUBE_VERSION" >"$m/dl.k8s.io/release/stable-$MAJOR_MINOR.txt"
	printf '%s\n' "$KUBE_VERSION" >"$m/dl.k8s.io/release/latest-$MAJOR_MINOR.txt"

	# etcd: etcd-vX-linux-amd64.tar.gz with a top folder, SHA256SUMS for the release
	d=$gh/etcd-io/etcd/releases/download/$ETCD_VERSION
	local e=etcd-$ETCD_VERSION-linux-$ARCH
	mkdir -p "$d" "$stage/$e"
	for b in etcd etcdctl etcdutl; do cp "$C/bin/$b" "$stage/$e/"; done
	mk_tgz "$d/$e.tar.gz" "$stage" "$e"
	sha256_named "$d/$e.tar.gz"
	(cd "$d" && sha256sum "$e.tar.gz" >SHA256SUMS)

	# containerd: containerd-X.Y.Z-linux-amd64.tar.gz with bin/, .sha256sum
	d=$gh/containerd/containerd/releases/download/$CONTAINERD_VERSION
	local c=containerd-${CONTAINERD_VERSION#v}-linux-$ARCH
	mkdir -p "$d" "$stage/containerd/bin"
	for b in containerd containerd-shim-runc-v2 ctr; do cp "$C/bin/$b" "$stage/containerd/bin/"; done
	mk_tgz "$d/$c.tar.gz" "$stage/containerd" bin
	sha256_named "$d/$c.tar.gz" sha256sum
	sha256_named "$d/$c.tar.gz"

	# runc: a bare runc.amd64 and runc.sha256sum for the release
	if [[ -x $C/bin/runc ]]; then
		d=$gh/opencontainers/runc/releases/download/$RUNC_VERSION
		mkdir -p "$d"
		place "$C/bin/runc" "$d/runc.$ARCH"
		(cd "$d" && sha256sum "runc.$ARCH" >runc.sha256sum)
		sha256_named "$d/runc.$ARCH"
	fi

	# crictl: crictl-vX-linux-amd64.tar.gz holding ./crictl
	d=$gh/kubernetes-sigs/cri-tools/releases/download/$CRICTL_VERSION
	mkdir -p "$d"
	mk_tgz "$d/crictl-$CRICTL_VERSION-linux-$ARCH.tar.gz" "$C/bin" crictl
	sha256_named "$d/crictl-$CRICTL_VERSION-linux-$ARCH.tar.gz"

	# CNI plugins: cni-plugins-linux-amd64-vX.tgz holding ./<plugin>, LICENSE, README.md
	d=$gh/containernetworking/plugins/releases/download/$CNI_PLUGINS_VERSION
	mkdir -p "$d" "$stage/cni"
	cp "$C/bin/cni/"* "$stage/cni/"
	local src
	src=$(cd /tmp && modinfo "github.com/containernetworking/plugins@$CNI_PLUGINS_VERSION" Dir)
	cp "$src/LICENSE" "$src/README.md" "$stage/cni/"
	chmod 644 "$stage/cni/LICENSE" "$stage/cni/README.md"
	local entries=()
	for b in "$stage/cni"/*; do entries+=("./${b##*/}"); done
	mk_tgz "$d/cni-plugins-linux-$ARCH-$CNI_PLUGINS_VERSION.tgz" "$stage/cni" "${entries[@]}"
	sha256_named "$d/cni-plugins-linux-$ARCH-$CNI_PLUGINS_VERSION.tgz"

	# CoreDNS: coredns_X.Y.Z_linux_amd64.tgz holding ./coredns
	d=$gh/coredns/coredns/releases/download/$COREDNS_VERSION
	mkdir -p "$d"
	mk_tgz "$d/coredns_${COREDNS_VERSION#v}_linux_$ARCH.tgz" "$C/bin" coredns
	sha256_named "$d/coredns_${COREDNS_VERSION#v}_linux_$ARCH.tgz"

	# helm: get.helm.sh/helm-vX-linux-amd64.tar.gz holding linux-amd64/{helm,LICENSE,README.md},
	# .sha256sum ("HASH  file") and .sha256 (the bare hash) beside it
	[[ -x $C/bin/helm ]] || die "no $C/bin/helm: run build.sh helm (the bundle needs get.helm.sh's archive)"
	d=$m/get.helm.sh
	mkdir -p "$d" "$stage/helm/linux-$ARCH"
	cp "$C/bin/helm" "$stage/helm/linux-$ARCH/"
	src=$(cd /tmp && modinfo "helm.sh/helm/v4@$HELM_VERSION" Dir)
	cp "$src/LICENSE" "$src/README.md" "$stage/helm/linux-$ARCH/"
	chmod 644 "$stage/helm/linux-$ARCH/LICENSE" "$stage/helm/linux-$ARCH/README.md"
	mk_tgz "$d/helm-$HELM_VERSION-linux-$ARCH.tar.gz" "$stage/helm" "linux-$ARCH"
	sha256_named "$d/helm-$HELM_VERSION-linux-$ARCH.tar.gz" sha256sum
	sha256_only "$d/helm-$HELM_VERSION-linux-$ARCH.tar.gz"

	# node_exporter: node_exporter-X.Y.Z.linux-amd64.tar.gz holding its folder
	# (node_exporter, LICENSE, NOTICE), one sha256sums.txt for the release
	[[ -x $C/bin/node_exporter ]] || die "no $C/bin/node_exporter: run build.sh node-exporter"
	d=$gh/prometheus/node_exporter/releases/download/$NODE_EXPORTER_VERSION
	local ne=node_exporter-${NODE_EXPORTER_VERSION#v}.linux-$ARCH
	mkdir -p "$d" "$stage/$ne"
	cp "$C/bin/node_exporter" "$stage/$ne/"
	src=$(cd /tmp && modinfo "github.com/prometheus/node_exporter@$NODE_EXPORTER_VERSION" Dir)
	cp "$src/LICENSE" "$src/NOTICE" "$stage/$ne/"
	chmod 644 "$stage/$ne/LICENSE" "$stage/$ne/NOTICE"
	mk_tgz "$d/$ne.tar.gz" "$stage" "$ne"
	(cd "$d" && sha256sum "$ne.tar.gz" >sha256sums.txt)

	rm -rf "$stage"
	# an index of everything, with hashes
	(cd "$m" && find . -type f ! -name '*.sha256' ! -name '*.sha256sum' ! -name SHA256SUMS ! -name '*.txt' ! -name '*.docker_tag' |
		sort | sed 's|^\./||' | xargs sha256sum) >"$C/MANIFEST.sha256"
	cat "$C/MANIFEST.sha256"
}

write_versions() {
	cat >"$C/versions.env" <<-EOF
	KUBE_VERSION=$KUBE_VERSION
	ETCD_VERSION=$ETCD_VERSION
	COREDNS_VERSION=$COREDNS_VERSION
	PAUSE_VERSION=$PAUSE_VERSION
	CONTAINERD_VERSION=$CONTAINERD_VERSION
	RUNC_VERSION=$(if [[ -x $C/bin/runc ]]; then echo "$RUNC_VERSION"; fi)
	CRICTL_VERSION=$CRICTL_VERSION
	CNI_PLUGINS_VERSION=$CNI_PLUGINS_VERSION
	FLANNEL_VERSION=$FLANNEL_VERSION
	KUBE_NETWORK_POLICIES_VERSION=$KUBE_NETWORK_POLICIES_VERSION
	HAPROXY_VERSION=$HAPROXY_VERSION
	METRICS_SERVER_VERSION=$METRICS_SERVER_VERSION
	HELM_VERSION=$HELM_VERSION
	TRAEFIK_VERSION=$TRAEFIK_VERSION
	NODE_EXPORTER_VERSION=$NODE_EXPORTER_VERSION
	PROMETHEUS_OPERATOR_VERSION=$PROMETHEUS_OPERATOR_VERSION
	GO_VERSION=$GO_VERSION
	EOF
}

# --- main ------------------------------------------------------------------------------------
ALL=(k8s agnhost etcd coredns containerd runc crictl cni pause kube-proxy-rootfs netpol flannel metrics-server helm traefik node-exporter prometheus-operator promtool prometheus alertmanager victoria-logs haproxy-rootfs images mirror)
STEPS=("$@")
((${#STEPS[@]})) || STEPS=("${ALL[@]}")
T0=$SECONDS
log "cache: $C ($KUBE_VERSION, $GO_VERSION)"
for s in "${STEPS[@]}"; do
	case $s in
	k8s)
		HEAVY=1 step k8s "$KUBE_VERSION $GO_VERSION $K8S_TAGS $(k8s_ldflags | sha256sum | cut -c1-12)" \
			"${K8S_BINS[@]/#/$C/bin/}" -- build_k8s ;;
	agnhost)
		HEAVY=1 step agnhost "$AGNHOST_VERSION $KUBE_VERSION $GO_VERSION $(declare -f build_agnhost | sha256sum | cut -c1-12)" \
			"$C/bin/agnhost" -- build_agnhost ;;
	etcd) HEAVY=1 step etcd "$ETCD_VERSION $GO_VERSION" "$C/bin/etcd" "$C/bin/etcdctl" "$C/bin/etcdutl" -- build_etcd ;;
	coredns) HEAVY=1 step coredns "$COREDNS_VERSION $GO_VERSION" "$C/bin/coredns" -- build_coredns ;;
	containerd)
		HEAVY=1 step containerd "$CONTAINERD_VERSION $GO_VERSION" \
			"$C/bin/containerd" "$C/bin/containerd-shim-runc-v2" "$C/bin/ctr" -- build_containerd ;;
	runc) HEAVY=1 step runc "$RUNC_VERSION $GO_VERSION static-pie seccomp" "$C/bin/runc" -- build_runc ;;
	crictl) HEAVY=1 step crictl "$CRICTL_VERSION $GO_VERSION" "$C/bin/crictl" -- build_crictl ;;
	cni) HEAVY=1 step cni "$CNI_PLUGINS_VERSION $GO_VERSION ${CNI_PLUGINS[*]}" "$C/bin/cni/bridge" "$C/bin/cni/portmap" -- build_cni ;;
	pause) step pause "$PAUSE_VERSION $KUBE_VERSION" "$C/bin/pause" -- build_pause ;;
	kube-proxy-rootfs)
		step kube-proxy-rootfs "${KP_PACKAGES[*]} $(. /etc/os-release && echo "$VERSION_ID")" \
			"$C/work/kube-proxy-rootfs/usr/sbin/ipset" -- build_kp_rootfs ;;
	netpol) HEAVY=1 step netpol "$KUBE_NETWORK_POLICIES_VERSION $GO_VERSION" "$C/bin/netpol" -- build_netpol ;;
	metrics-server) HEAVY=1 step metrics-server "$METRICS_SERVER_VERSION $GO_VERSION" "$C/bin/metrics-server" -- build_metrics_server ;;
	helm) HEAVY=1 step helm "$HELM_VERSION $GO_VERSION" "$C/bin/helm" -- build_helm ;;
	traefik)
		HEAVY=1 step traefik "$TRAEFIK_VERSION $GO_VERSION $(srchash "$TRAEFIK_SRC") $(declare -f build_traefik | sha256sum | cut -c1-12)" \
			"$C/bin/traefik" -- build_traefik ;;
	node-exporter)
		HEAVY=1 step node-exporter "$NODE_EXPORTER_VERSION $GO_VERSION $(declare -f build_node_exporter | sha256sum | cut -c1-12)" \
			"$C/bin/node_exporter" -- build_node_exporter ;;
	prometheus-operator)
		HEAVY=1 step prometheus-operator "$PROMETHEUS_OPERATOR_VERSION $GO_VERSION $(declare -f build_prometheus_operator | sha256sum | cut -c1-12)" \
			"$C/bin/operator" "$C/bin/prometheus-config-reloader" -- build_prometheus_operator ;;
	promtool)
		HEAVY=1 step promtool "$PROMETHEUS_VERSION $GO_VERSION $(declare -f build_prometheus_cmd prometheus_module_version | sha256sum | cut -c1-12)" \
			"$C/bin/promtool" -- build_prometheus_cmd promtool ;;
	prometheus)
		HEAVY=1 step prometheus "$PROMETHEUS_VERSION $GO_VERSION $(declare -f build_prometheus_cmd prometheus_module_version | sha256sum | cut -c1-12)" \
			"$C/bin/prometheus" -- build_prometheus_cmd prometheus ;;
	alertmanager)
		HEAVY=1 step alertmanager "$ALERTMANAGER_VERSION $GO_VERSION $(declare -f build_alertmanager | sha256sum | cut -c1-12)" \
			"$C/bin/alertmanager" -- build_alertmanager ;;
	victoria-logs)
		HEAVY=1 step victoria-logs "$VICTORIA_LOGS_VERSION $GO_VERSION $(declare -f build_victoria_logs | sha256sum | cut -c1-12)" \
			"$C/bin/victoria-logs" "$C/bin/vlagent" -- build_victoria_logs ;;
	flannel) HEAVY=1 step flannel "$(srchash "$FLANNEL_SRC" 2>/dev/null) $GO_VERSION" "$C/bin/flanneld" -- build_flannel ;;
	haproxy-rootfs)
		step haproxy-rootfs "$HAPROXY_VERSION $(. /etc/os-release && echo "$VERSION_ID") $(declare -f haproxy_closure build_haproxy_rootfs | sha256sum | cut -c1-12)" \
			"$C/work/haproxy-rootfs/usr/sbin/haproxy" -- build_haproxy_rootfs ;;
	images)
		step images "$(fingerprint "${K8S_BINS[@]/#/$C/bin/}" "$C/bin"/{etcd,etcdctl,etcdutl,coredns,pause,flanneld,netpol,metrics-server,traefik,agnhost,operator,prometheus-config-reloader,prometheus,promtool,alertmanager,victoria-logs,vlagent} \
			"$C/stamps/kube-proxy-rootfs" "$C/stamps/haproxy-rootfs") $(srchash "$HERE/mkimage") $(sha256sum "$SELF" | cut -c1-12) $EPOCH" \
			"$C/images/oci/index.json" "$C/images/k8s-images-$KUBE_VERSION.tar" -- build_images ;;
	mirror)
		step mirror "$(fingerprint "$C"/bin/* "$C"/bin/cni/* "$C"/work/image-tars/*.tar) $(sha256sum "$SELF" | cut -c1-12)" \
			"$C/MANIFEST.sha256" -- build_mirror ;;
	*) die "unknown step $s (steps: ${ALL[*]})" ;;
	esac
done
write_versions
# a running server keeps the old image manifests in memory: restart it
if [[ ${TIMES[images]:-cached} != cached ]] && "$HERE/serve.sh" status >/dev/null 2>&1; then
	log "images changed: restarting the server"
	"$HERE/serve.sh" restart
fi
log "timings:"
for s in "${STEPS[@]}"; do printf '  %-18s %s\n' "$s" "${TIMES[$s]:-?}"; done
log "total $((SECONDS - T0))s; cache $(du -sh "$C" | cut -f1) in $C"
