# shellcheck shell=bash disable=SC2034
# Versions of the upstream artifacts the lab builds, and where they go.
# Sourced by build.sh and serve.sh; every value can be overridden from the
# environment (e.g. KUBE_VERSION=v1.35.4 ./build.sh).
#
# The versions per Kubernetes minor are pkg/bundle's table (known in
# pkg/bundle/artifacts.go), copied here one line per minor; `go test
# ./pkg/bundle` sources this file for each minor and fails when they differ.
# build.sh asks the built kubeadm for its image list, so the kubeadm image
# tags always follow whatever kubeadm says.

: "${KUBE_VERSION:=v1.36.3}"
case ${KUBE_VERSION%.*} in
v1.35) _row=(ETCD=v3.6.16 COREDNS=v1.13.1 PAUSE=3.10.1 CONTAINERD=v2.3.7 RUNC=v1.5.2 CRICTL=v1.36.0 CNI_PLUGINS=v1.9.1 FLANNEL=v0.28.10 KUBE_NETWORK_POLICIES=v0.8.0 HAPROXY=2.6.12 METRICS_SERVER=v0.8.0 HELM=v4.2.4 TRAEFIK=v3.7.13 NODE_EXPORTER=v1.12.1 PROMETHEUS_OPERATOR=v0.85.0 PROMETHEUS=v3.5.1 ALERTMANAGER=v0.28.1 VICTORIA_LOGS=v1.52.2 AGNHOST=2.63.0) ;;
v1.36) _row=(ETCD=v3.6.16 COREDNS=v1.14.2 PAUSE=3.10.2 CONTAINERD=v2.3.7 RUNC=v1.5.2 CRICTL=v1.36.0 CNI_PLUGINS=v1.9.1 FLANNEL=v0.28.10 KUBE_NETWORK_POLICIES=v0.8.0 HAPROXY=2.6.12 METRICS_SERVER=v0.8.0 HELM=v4.2.4 TRAEFIK=v3.7.13 NODE_EXPORTER=v1.12.1 PROMETHEUS_OPERATOR=v0.85.0 PROMETHEUS=v3.5.1 ALERTMANAGER=v0.28.1 VICTORIA_LOGS=v1.52.2 AGNHOST=2.63.0) ;;
v1.37) _row=(ETCD=v3.6.16 COREDNS=v1.14.6 PAUSE=3.10.2 CONTAINERD=v2.3.7 RUNC=v1.5.2 CRICTL=v1.37.0 CNI_PLUGINS=v1.9.1 FLANNEL=v0.28.10 KUBE_NETWORK_POLICIES=v0.8.0 HAPROXY=2.6.12 METRICS_SERVER=v0.8.0 HELM=v4.2.4 TRAEFIK=v3.7.13 NODE_EXPORTER=v1.12.1 PROMETHEUS_OPERATOR=v0.85.0 PROMETHEUS=v3.5.1 ALERTMANAGER=v0.28.1 VICTORIA_LOGS=v1.52.2 AGNHOST=2.63.0) ;;
*)
	echo "versions.sh: KUBE_VERSION=$KUBE_VERSION is not supported (v1.35 to v1.37)" >&2
	return 1 2>/dev/null || exit 1
	;;
esac
# each NAME=VALUE sets NAME_VERSION unless the environment already did
for _kv in "${_row[@]}"; do
	_n=${_kv%%=*}_VERSION
	[[ -n ${!_n:-} ]] || printf -v "$_n" '%s' "${_kv#*=}"
done
unset _row _kv _n
# HAPROXY_VERSION is Debian 12's haproxy package (2.6.12-1+deb12u*), which
# build.sh unpacks into the image; it checks the candidate's upstream version.
: "${GGCR_VERSION:=v0.20.6}"          # go-containerregistry, for mkimage/ and serve/

# Where everything goes. .cache/ is git-ignored at the repo root.
ARTIFACTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$ARTIFACTS_DIR/../../.." && pwd)
: "${ARTIFACTS_ROOT:=$REPO_ROOT/.cache/artifacts}"
: "${ARTIFACTS_CACHE:=$ARTIFACTS_ROOT/$KUBE_VERSION}"

# Loopback addresses of the mirror and the registry (serve.sh).
: "${ARTIFACTS_MIRROR_ADDR:=127.0.0.1:8480}"
: "${ARTIFACTS_REGISTRY_ADDR:=127.0.0.1:5000}"

ARCH=amd64
