# shellcheck shell=bash disable=SC2034
# Versions of the upstream artifacts the lab builds, and where they go.
# Sourced by build.sh and serve.sh; every value can be overridden from the
# environment (e.g. KUBE_VERSION=v1.34.5 ./build.sh).
#
# kubeadm v1.34.4 itself pins etcd 3.6.5-0, CoreDNS v1.12.1 and pause 3.10.1
# (cmd/kubeadm/app/constants); build.sh asks the built kubeadm for its image
# list, so the image tags always follow whatever kubeadm says.

: "${KUBE_VERSION:=v1.34.4}"
: "${ETCD_VERSION:=v3.6.5}"          # kubeadm 1.34 default etcd image is 3.6.5-0; must be >= 3.5.24
: "${COREDNS_VERSION:=v1.12.1}"
: "${PAUSE_VERSION:=3.10.1}"
: "${CONTAINERD_VERSION:=v2.1.9}"
: "${RUNC_VERSION:=v1.3.6}"
: "${CRICTL_VERSION:=v1.34.0}"
: "${CNI_PLUGINS_VERSION:=v1.7.1}"
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
