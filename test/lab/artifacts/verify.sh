#!/bin/bash
# Checks what build.sh made and serve.sh serves: runs the binaries' version
# commands, fetches binaries and their checksums from the mirror and compares,
# lists the registry and fetches manifests and a blob. Starts the server if it
# is not running (and stops it again afterwards).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.sh
. "$HERE/versions.sh"
C=$ARTIFACTS_CACHE
M=http://$ARTIFACTS_MIRROR_ADDR
R=http://$ARTIFACTS_REGISTRY_ADDR
TMP=$(mktemp -d)
STARTED=0
cleanup() {
	rm -rf "$TMP"
	if ((STARTED)); then "$HERE/serve.sh" stop >/dev/null; fi
}
trap cleanup EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); printf 'ok    %s\n' "$*"; }
bad() { fail=$((fail + 1)); printf 'FAIL  %s\n' "$*"; }
check() { # check DESCRIPTION COMMAND...
	local d=$1; shift
	if out=$("$@" 2>&1); then ok "$d: $(head -n1 <<<"$out")"; else bad "$d: $(tail -n2 <<<"$out" | tr '\n' ' ')"; fi
}

if ! "$HERE/serve.sh" status >/dev/null; then
	"$HERE/serve.sh" start >/dev/null
	STARTED=1
fi

echo "== binaries in $C/bin"
check "kubeadm version says $KUBE_VERSION" bash -c "'$C/bin/kubeadm' version -o short | grep -Fx '$KUBE_VERSION'"
for b in kubelet kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do
	check "$b --version" bash -c "'$C/bin/$b' --version | grep -F 'Kubernetes $KUBE_VERSION'"
done
check "kubectl version --client" bash -c "'$C/bin/kubectl' version --client | grep -F '$KUBE_VERSION'"
check "etcd --version" bash -c "'$C/bin/etcd' --version | grep -F '${ETCD_VERSION#v}'"
check "etcdctl version" bash -c "'$C/bin/etcdctl' version | grep -F '${ETCD_VERSION#v}'"
check "etcdutl version" bash -c "'$C/bin/etcdutl' version | grep -F '${ETCD_VERSION#v}'"
check "coredns -version" bash -c "'$C/bin/coredns' -version | grep -F '${COREDNS_VERSION#v}'"
check "containerd --version" bash -c "'$C/bin/containerd' --version | grep -F '$CONTAINERD_VERSION'"
check "ctr --version" bash -c "'$C/bin/ctr' --version | grep -F '$CONTAINERD_VERSION'"
check "containerd-shim-runc-v2 -v" bash -c "'$C/bin/containerd-shim-runc-v2' -v | grep -F '$CONTAINERD_VERSION'"
if [[ -x $C/bin/runc ]]; then
	check "runc --version" bash -c "'$C/bin/runc' --version | grep -F '${RUNC_VERSION#v}' && '$C/bin/runc' --version | grep -F libseccomp"
else
	bad "runc was not built"
fi
check "crictl --version" bash -c "'$C/bin/crictl' --version | grep -F '$CRICTL_VERSION'"
check "CNI bridge VERSION" bash -c "CNI_COMMAND=VERSION '$C/bin/cni/bridge' </dev/null | grep -F cniVersion"
check "pause -v" bash -c "'$C/bin/pause' -v | grep -F '$PAUSE_VERSION'"
check "netpol (kube-network-policies) runs" bash -c "'$C/bin/netpol' --help 2>&1 | grep -F -- -hostname-override"
check "flanneld runs" bash -c "'$C/bin/flanneld' --help 2>&1 | head -n1"
check "helm version says $HELM_VERSION" bash -c "'$C/bin/helm' version --template '{{.Version}}' | grep -Fx '$HELM_VERSION'"
check "node_exporter --version says ${NODE_EXPORTER_VERSION#v}" bash -c "'$C/bin/node_exporter' --version 2>&1 | grep -Eq '^node_exporter, version ${NODE_EXPORTER_VERSION#v} '"
check "traefik version says $TRAEFIK_VERSION" bash -c "'$C/bin/traefik' version | grep -Eq '^Version: +$TRAEFIK_VERSION$'"
check "haproxy $HAPROXY_VERSION in its rootfs" bash -c "chroot '$C/work/haproxy-rootfs' /usr/sbin/haproxy -v | grep -F 'version $HAPROXY_VERSION'"

echo "== mirror $M"
get() { curl -fsS "$1" -o "$2"; }
verify_url() { # verify_url URL CHECKSUM-URL: the download matches the published hash
	local f want have
	f=$TMP/${1##*/}
	get "$1" "$f" && get "$2" "$TMP/sum" || return 1
	want=$(grep -F "$(basename "$1")" "$TMP/sum" | cut -d' ' -f1 || true)
	[[ -n $want ]] || want=$(cut -d' ' -f1 <"$TMP/sum")
	have=$(sha256sum "$f" | cut -d' ' -f1)
	[[ $want == "$have" ]] || { echo "want $want have $have"; return 1; }
	echo "sha256 $have ($(stat -c %s "$f") bytes)"
}
K=$M/dl.k8s.io/release/$KUBE_VERSION/bin/linux/$ARCH
for b in kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do
	check "dl.k8s.io $b" verify_url "$K/$b" "$K/$b.sha256"
done
check "dl.k8s.io kube-proxy.tar" verify_url "$K/kube-proxy.tar" "$K/kube-proxy.tar.sha256"
check "served kubeadm runs" bash -c "curl -fsS '$K/kubeadm' -o '$TMP/kubeadm-run' && chmod +x '$TMP/kubeadm-run' && '$TMP/kubeadm-run' version -o short | grep -Fx '$KUBE_VERSION'"
MINOR=${KUBE_VERSION#v}; MINOR=${MINOR%.*}
check "stable-$MINOR.txt" bash -c "curl -fsS '$M/dl.k8s.io/release/stable-$MINOR.txt' | grep -Fx '$KUBE_VERSION'"
G=$M/github.com
E=$G/etcd-io/etcd/releases/download/$ETCD_VERSION/etcd-$ETCD_VERSION-linux-$ARCH.tar.gz
check "etcd tarball (SHA256SUMS)" verify_url "$E" "$(dirname "$E")/SHA256SUMS"
check "etcd tarball (.sha256)" verify_url "$E" "$E.sha256"
check "etcd from tarball runs" bash -c "curl -fsS '$E' | tar -xzO etcd-$ETCD_VERSION-linux-$ARCH/etcd >'$TMP/etcd' && chmod +x '$TMP/etcd' && '$TMP/etcd' --version | head -n1"
T=$G/containerd/containerd/releases/download/$CONTAINERD_VERSION/containerd-${CONTAINERD_VERSION#v}-linux-$ARCH.tar.gz
check "containerd tarball (.sha256sum)" verify_url "$T" "$T.sha256sum"
check "containerd tarball lists bin/" bash -c "curl -fsS '$T' | tar -tz | tr '\n' ' ' | grep -F bin/containerd-shim-runc-v2"
if [[ -x $C/bin/runc ]]; then
	U=$G/opencontainers/runc/releases/download/$RUNC_VERSION
	check "runc.$ARCH (runc.sha256sum)" verify_url "$U/runc.$ARCH" "$U/runc.sha256sum"
fi
T=$G/kubernetes-sigs/cri-tools/releases/download/$CRICTL_VERSION/crictl-$CRICTL_VERSION-linux-$ARCH.tar.gz
check "crictl tarball" verify_url "$T" "$T.sha256"
T=$G/containernetworking/plugins/releases/download/$CNI_PLUGINS_VERSION/cni-plugins-linux-$ARCH-$CNI_PLUGINS_VERSION.tgz
check "CNI plugins tarball" verify_url "$T" "$T.sha256"
check "CNI tarball has bridge host-local loopback portmap" bash -c "curl -fsS '$T' | tar -tz | sort | tr '\n' ' ' | grep -E '\./bridge .*\./host-local .*\./loopback .*\./portmap'"
T=$G/coredns/coredns/releases/download/$COREDNS_VERSION/coredns_${COREDNS_VERSION#v}_linux_$ARCH.tgz
check "coredns tarball" verify_url "$T" "$T.sha256"
T=$M/get.helm.sh/helm-$HELM_VERSION-linux-$ARCH.tar.gz
check "helm tarball (.sha256sum)" verify_url "$T" "$T.sha256sum"
check "helm tarball (.sha256)" verify_url "$T" "$T.sha256"
check "helm from tarball runs" bash -c "curl -fsS '$T' | tar -xzO linux-$ARCH/helm >'$TMP/helm' && chmod +x '$TMP/helm' && '$TMP/helm' version --short"
T=$G/prometheus/node_exporter/releases/download/$NODE_EXPORTER_VERSION/node_exporter-${NODE_EXPORTER_VERSION#v}.linux-$ARCH.tar.gz
check "node_exporter tarball (sha256sums.txt)" verify_url "$T" "${T%/*}/sha256sums.txt"
check "node_exporter from tarball runs" bash -c "curl -fsS '$T' | tar -xzO node_exporter-${NODE_EXPORTER_VERSION#v}.linux-$ARCH/node_exporter >'$TMP/node_exporter' && chmod +x '$TMP/node_exporter' && '$TMP/node_exporter' --version 2>&1 | head -n1"
check "Host-header routing (as an HTTP proxy)" bash -c "curl -fsS -x '$M' http://dl.k8s.io/release/$KUBE_VERSION/bin/linux/$ARCH/kubeadm.sha256 | grep -E '^[0-9a-f]{64}$'"
check "missing file is 404" bash -c "test \"\$(curl -s -o /dev/null -w '%{http_code}' '$M/dl.k8s.io/release/v0.0.0/nothing')\" = 404"

echo "== registry $R"
check "GET /v2/" curl -fsS "$R/v2/"
check "catalog" curl -fsS "$R/v2/_catalog"
while read -r ref _; do
	repo=${ref%:*}; repo=${repo#*/}; tag=${ref##*:}   # the upstream path without its registry
	check "manifest $repo:$tag" bash -c "
		idx=\$(curl -fsS -H 'Accept: application/vnd.oci.image.index.v1+json' '$R/v2/$repo/manifests/$tag') &&
		man=\$(grep -o 'sha256:[0-9a-f]\{64\}' <<<\"\$idx\" | head -n1) &&
		curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' '$R/v2/$repo/manifests/'\$man -o '$TMP/m.json' &&
		cfg=\$(grep -o 'sha256:[0-9a-f]\{64\}' '$TMP/m.json' | head -n1) &&
		curl -fsS '$R/v2/$repo/blobs/'\$cfg -o '$TMP/cfg.json' &&
		test \"\$(sha256sum <'$TMP/cfg.json' | cut -d' ' -f1)\" = \"\${cfg#sha256:}\" &&
		echo \"linux/amd64 manifest \${man:7:12}…, config digest ok: \$(grep -o '\"architecture\":\"[a-z0-9]*\"' '$TMP/cfg.json')\""
done < <(cat "$C/images/kubeadm-images.txt" "$C/images/addon-images.txt")

echo
echo "$pass passed, $fail failed"
((fail == 0))
