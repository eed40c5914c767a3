#!/bin/bash
# Makes the lab's offline bundle: builds the upstream artifacts from the Go
# module proxy (test/lab/artifacts, cached by version), serves them on
# loopback as a release-site mirror and a registry, and runs
# `metalk8s bundle build` against them, as an operator would against the
# real sites. Debian packages come from Debian's mirror.
#
# Usage: test/lab/bundle.sh [METALK8S_BINARY]   (default bin/metalk8s)
#   LAB_BUNDLE     where the bundle goes (default .cache/bundle/$KUBE_VERSION)
#   LAB_INVENTORY  the lab's hosts.ini, whose addon values say which chart
#                  images the bundle needs (default .lab/inventory/hosts.ini;
#                  when missing, a stand-in with the lab's addon choices)
# Prints the bundle's directory on its last line. A server this script
# started is stopped again; one already running is left alone.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=artifacts/versions.sh
. "$HERE/artifacts/versions.sh"
BIN=${1:-$REPO_ROOT/bin/metalk8s}
: "${LAB_BUNDLE:=$REPO_ROOT/.cache/bundle/$KUBE_VERSION}"
: "${LAB_INVENTORY:=$REPO_ROOT/.lab/inventory/hosts.ini}"
started= stub=
stop() {
	[[ -z $started ]] || "$HERE/artifacts/serve.sh" stop >&2
	[[ -z $stub ]] || rm -rf "$stub"
}
trap stop EXIT
if [[ ! -f $LAB_INVENTORY ]]; then
	# No lab yet (make lab-up writes its inventory): a one-host stand-in
	# with the lab's addon choices, so that the bundle holds what the lab
	# runs (Headlamp's image, which the lab's registry cannot have, is not;
	# the monitoring and logging addons are off, as in lab.sh).
	stub=$(mktemp -d) # removed by stop()
	printf '[kube-master]\nlab\n[etcd]\nlab\n[kube-node]\nlab\n[k8s-cluster:children]\nkube-master\nkube-node\n' >"$stub/hosts.ini"
	mkdir "$stub/group_vars"
	printf 'metalk8s_headlamp_enabled: false\nmetalk8s_monitoring_enabled: false\nmetalk8s_node_exporter_enabled: true\nmetalk8s_logging_enabled: false\n' >"$stub/group_vars/all.yml"
	LAB_INVENTORY=$stub/hosts.ini
fi
INV=(-i "$LAB_INVENTORY")

[[ -x $BIN ]] || { echo "bundle.sh: no metalk8s binary at $BIN (make build)" >&2; exit 1; }

# What the bundle may hold (the registry has every image; the bundle takes
# those the inventory's addons run).
"$HERE/artifacts/build.sh" k8s agnhost etcd coredns containerd runc crictl cni pause kube-proxy-rootfs \
	netpol flannel metrics-server helm traefik node-exporter prometheus-operator promtool prometheus \
	alertmanager victoria-logs haproxy-rootfs images mirror >&2

if ! "$HERE/artifacts/serve.sh" status >/dev/null 2>&1; then
	"$HERE/artifacts/serve.sh" start >&2
	started=1
fi

"$BIN" bundle build -o "$LAB_BUNDLE" --kube-version "$KUBE_VERSION" "${INV[@]}" \
	--mirror "http://$ARTIFACTS_MIRROR_ADDR" \
	--registry "$ARTIFACTS_REGISTRY_ADDR" --insecure-registry >&2
"$BIN" bundle verify "${INV[@]}" "$LAB_BUNDLE" >&2
echo "$LAB_BUNDLE"
