#!/bin/bash
# Serves what build.sh made, on loopback only: the release-site mirror over
# HTTP and the images from a local OCI registry (one process, serve/).
#
# Usage: test/lab/artifacts/serve.sh start|stop|restart|status|urls
#   ARTIFACTS_MIRROR_ADDR    default 127.0.0.1:8480
#   ARTIFACTS_REGISTRY_ADDR  default 127.0.0.1:5000
#   ARTIFACTS_CACHE          as for build.sh
# status exits 0 when running, 3 when not.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.sh
. "$HERE/versions.sh"
export PATH=/usr/local/go/bin:$PATH GOTOOLCHAIN=local GOFLAGS=-buildvcs=false CGO_ENABLED=0

C=$ARTIFACTS_CACHE
RUN=$C/run
BIN=$C/tools/artifacts-serve
PIDFILE=$RUN/serve.pid
LOGFILE=$RUN/serve.log

say() { printf '%s\n' "$*"; }

# the pid in the pid file, if that process is our server
running_pid() {
	local pid
	[[ -f $PIDFILE ]] || return 1
	pid=$(cat "$PIDFILE")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	[[ $(readlink "/proc/$pid/exe" 2>/dev/null) == "$BIN"* ]] || return 1
	echo "$pid"
}

build_server() {
	local key
	key="$(cd "$HERE/serve" && cat go.mod go.sum ./*.go | sha256sum | cut -c1-16) $(go env GOVERSION)"
	if [[ -x $BIN && -f $BIN.key && $(cat "$BIN.key") == "$key" ]]; then
		return 0
	fi
	mkdir -p "$(dirname "$BIN")"
	(cd "$HERE/serve" && go build -trimpath -o "$BIN.tmp" .)
	mv "$BIN.tmp" "$BIN"
	printf '%s' "$key" >"$BIN.key"
}

urls() {
	say "mirror:   http://$ARTIFACTS_MIRROR_ADDR/   (e.g. http://$ARTIFACTS_MIRROR_ADDR/dl.k8s.io/release/$KUBE_VERSION/bin/linux/$ARCH/kubeadm)"
	say "registry: $ARTIFACTS_REGISTRY_ADDR   (plain HTTP; e.g. $ARTIFACTS_REGISTRY_ADDR/kube-apiserver:$KUBE_VERSION)"
}

wait_up() {
	local _
	for _ in $(seq 1 100); do
		if curl -fsS -o /dev/null "http://$ARTIFACTS_MIRROR_ADDR/" 2>/dev/null &&
			curl -fsS -o /dev/null "http://$ARTIFACTS_REGISTRY_ADDR/v2/" 2>/dev/null; then
			return 0
		fi
		running_pid >/dev/null || return 1
		sleep 0.1
	done
	return 1
}

start() {
	local pid
	if pid=$(running_pid); then
		say "already running (pid $pid)"
		urls
		return 0
	fi
	[[ -f $C/images/oci/index.json && -d $C/mirror/dl.k8s.io ]] ||
		{ say "nothing to serve in $C: run test/lab/artifacts/build.sh first" >&2; return 1; }
	build_server
	mkdir -p "$RUN"
	rm -rf "$RUN/uploads"
	setsid "$BIN" -mirror "$C/mirror" -http "$ARTIFACTS_MIRROR_ADDR" \
		-oci "$C/images/oci" -registry "$ARTIFACTS_REGISTRY_ADDR" -uploads "$RUN/uploads" \
		</dev/null >>"$LOGFILE" 2>&1 &
	echo $! >"$PIDFILE"
	if ! wait_up; then
		say "server did not come up; last log lines:" >&2
		tail -n 20 "$LOGFILE" >&2
		stop >/dev/null || true
		return 1
	fi
	say "artifact server started (pid $(cat "$PIDFILE"), log $LOGFILE)"
	urls
}

stop() {
	local pid _
	if ! pid=$(running_pid); then
		rm -f "$PIDFILE"
		say "not running"
		return 0
	fi
	kill "$pid"
	for _ in $(seq 1 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; fi
	rm -f "$PIDFILE"
	say "artifact server stopped (pid $pid)"
}

status() {
	local pid
	if pid=$(running_pid); then
		say "running (pid $pid, cache $C)"
		urls
		say "catalog: $(curl -fsS "http://$ARTIFACTS_REGISTRY_ADDR/v2/_catalog" 2>/dev/null || echo '?')"
		return 0
	fi
	say "not running (cache $C)"
	return 3
}

case ${1:-} in
start) start ;;
stop) stop ;;
restart) stop && start ;;
status) status ;;
urls) urls ;;
*) say "usage: $0 start|stop|restart|status|urls" >&2; exit 2 ;;
esac
