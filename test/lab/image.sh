#!/usr/bin/env bash
# image.sh OUT: build the lab's Debian 12 VM image into the directory OUT.
#
# Writes OUT/root.img (raw ext4, the whole root filesystem, no partition
# table and no bootloader), OUT/vmlinuz and OUT/initrd.img (QEMU boots them
# directly) and OUT/manifest (the installed packages). Needs root.
#
# lab.sh calls it with a fresh OUT and caches the result under a key made of
# this file, the package list and guest/ (lab.sh: image_key): edit any of
# them and the next `lab.sh up` builds again.
#
# Environment:
#   LAB_SUITE        Debian suite (default bookworm)
#   LAB_APT_SOURCES  deb822 or one-line sources file to build from (default:
#                    the host's /etc/apt/sources.list.d/debian.sources when
#                    the host runs the same suite, else mmdebstrap's default)
#   LAB_DEB_CACHE    directory that keeps downloaded .debs between builds
#   LAB_ROOT_SIZE    root filesystem size, sparse (default 8G)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:?usage: image.sh OUT}
suite=${LAB_SUITE:-bookworm}
root_size=${LAB_ROOT_SIZE:-8G}
deb_cache=${LAB_DEB_CACHE:-}

log() { printf 'image: %s\n' "$*" >&2; }
die() { printf 'image: ERROR: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) == 0 ]] || die "needs root"
for c in mmdebstrap mkfs.ext4; do command -v "$c" >/dev/null || die "$c is missing (lab.sh deps)"; done

packages=$(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$here/packages" | tr -s ' \n' ',' | sed 's/,$//')

sources=()
if [[ -n ${LAB_APT_SOURCES:-} ]]; then
	sources=("$LAB_APT_SOURCES")
elif [[ -f /etc/apt/sources.list.d/debian.sources ]] &&
	grep -Eq "^Suites:.*\b$suite\b" /etc/apt/sources.list.d/debian.sources; then
	sources=(/etc/apt/sources.list.d/debian.sources)
fi

mkdir -p "$out"
tree=$out/tree
rm -rf "$tree"
trap 'rm -rf "$tree"' EXIT

cache_hooks=()
if [[ -n $deb_cache ]]; then
	mkdir -p "$deb_cache"
	cache_hooks=(
		--skip=download/empty --skip=essential/unlink
		--setup-hook="mkdir -p \"\$1/var/cache/apt/archives\" && find '$deb_cache' -maxdepth 1 -name '*.deb' -exec cp -t \"\$1/var/cache/apt/archives\" {} +"
		--customize-hook="find \"\$1/var/cache/apt/archives\" -maxdepth 1 -name '*.deb' -exec cp -n -t '$deb_cache' {} + && rm -f \"\$1\"/var/cache/apt/archives/*.deb"
	)
fi

# The initramfs only needs what mounts /dev/vda: build it from a fixed module
# list (MODULES=dep would look at the build host, not at the VM).
initramfs_hooks=(
	--setup-hook='mkdir -p "$1/etc/initramfs-tools/conf.d" "$1/usr/share/initramfs-tools/modules.d"'
	--setup-hook='echo MODULES=list >"$1/etc/initramfs-tools/conf.d/metalk8s-lab.conf"'
	--setup-hook='printf "%s\n" virtio_pci virtio_blk ext4 >"$1/usr/share/initramfs-tools/modules.d/metalk8s-lab"'
)

t0=$EPOCHREALTIME
log "mmdebstrap $suite (minbase + $packages)"
mmdebstrap --mode=root --variant=minbase --include="$packages" \
	--aptopt='Acquire::Languages "none"' \
	--dpkgopt='path-exclude=/usr/share/man/*' \
	--dpkgopt='path-exclude=/usr/share/doc/*' \
	--dpkgopt='path-exclude=/usr/share/info/*' \
	--dpkgopt='path-exclude=/usr/share/locale/*' \
	--dpkgopt='path-include=/usr/share/locale/locale.alias' \
	"${initramfs_hooks[@]}" "${cache_hooks[@]}" \
	"$suite" "$tree" "${sources[@]}" </dev/null >"$out/mmdebstrap.log" 2>&1 ||
	{ tail -n 40 "$out/mmdebstrap.log" >&2; die "mmdebstrap failed (log: $out/mmdebstrap.log)"; }
log "mmdebstrap: $(((${EPOCHREALTIME/./} - ${t0/./}) / 1000000)) s"

# --- make it a lab node -------------------------------------------------------
install -m 755 "$here/guest/lab-node-setup" "$tree/usr/local/sbin/lab-node-setup"
install -m 644 "$here/guest/lab-node-setup.service" "$tree/etc/systemd/system/lab-node-setup.service"
install -m 644 "$here/guest/sshd_config" "$tree/etc/ssh/sshd_config.d/metalk8s-lab.conf"
install -m 644 "$here/guest/modprobe.conf" "$tree/etc/modprobe.d/metalk8s-lab.conf"
install -m 644 "$here/guest/kubelet.default" "$tree/etc/default/kubelet"

# No host keys in the image: each VM gets its own from the host at boot.
rm -f "$tree"/etc/ssh/ssh_host_*
# An empty machine-id: systemd takes the one on the kernel command line.
: >"$tree/etc/machine-id"
rm -f "$tree/var/lib/dbus/machine-id"
echo localhost >"$tree/etc/hostname"
# The lab has no DNS server; a nameserver line keeps resolvers (and, later,
# CoreDNS) from failing on an empty file. 10.10.0.1 is the lab bridge, inside
# the lab's own network namespace, where nothing answers port 53.
echo "nameserver 10.10.0.1" >"$tree/etc/resolv.conf"
echo "/dev/vda / ext4 rw,noatime 0 0" >"$tree/etc/fstab"

systemctl --root="$tree" enable lab-node-setup.service systemd-networkd.service >/dev/null 2>&1
# Nothing periodic, nothing interactive, nothing that waits for a network
# that the lab does not have.
systemctl --root="$tree" mask \
	apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service \
	fstrim.timer systemd-firstboot.service modprobe@drm.service modprobe@efi_pstore.service \
	getty@tty1.service >/dev/null 2>&1

cp -L "$tree"/boot/vmlinuz-* "$out/vmlinuz"
cp -L "$tree"/boot/initrd.img-* "$out/initrd.img"
# QEMU boots the initrd copied above, never the one on /dev/vda, so package
# triggers (lvm2's) need not rebuild it: that takes minutes under TCG. Real
# machines keep Debian's default.
sed -i 's/^update_initramfs=.*/update_initramfs=no/' "$tree/etc/initramfs-tools/update-initramfs.conf"
chroot "$tree" dpkg-query -W -f '${Package} ${Version}\n' >"$out/manifest"

# Keep only the .debs of this image in the cache, not every version ever
# downloaded.
if [[ -n $deb_cache ]]; then
	declare -A keep=()
	while read -r pkg ver; do keep["${pkg}_${ver//:/%3a}"]=1; done <"$out/manifest"
	for f in "$deb_cache"/*.deb; do
		[[ -e $f ]] || continue
		b=${f##*/}
		[[ -n ${keep[${b%_*}]:-} ]] || rm -f "$f"
	done
fi

t1=$EPOCHREALTIME
rm -f "$out/root.img"
# Inode tables are initialised here, once, rather than by every VM's
# ext4lazyinit into its own overlay.
mkfs.ext4 -q -F -L lab-root -i 32768 -E lazy_itable_init=0,lazy_journal_init=0 \
	-d "$tree" "$out/root.img" "$root_size" >/dev/null
log "mkfs.ext4: $(((${EPOCHREALTIME/./} - ${t1/./}) / 1000000)) s, $(du -sh --apparent-size "$tree" | cut -f1) of files, $(wc -l <"$out/manifest") packages"
