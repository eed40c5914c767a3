#!/usr/bin/env bash
# The Go that builds metalk8s: go.mod's `toolchain` (else `go`) version
# or newer.
#
#   tools/go.sh path     print the go command to use: the one on PATH when
#                        new enough, else $GO_ROOT/bin/go (even if absent)
#   tools/go.sh install  make sure one is there; if neither is new enough,
#                        install the official toolchain in $GO_ROOT
#
# GO_ROOT defaults to /usr/local/go, where the lab's artifact build looks.
# Debian 12 ships Go 1.19, too old to build metalk8s and to switch
# toolchains itself (GOTOOLCHAIN came with Go 1.21), but new enough to
# download the module golang.org/toolchain from the Go module proxy: the
# official release, as the go command fetches it when it switches, its
# hash checked against the checksum database. Debian's Go is unpacked in a
# temporary directory for that, not installed.
set -euo pipefail

cd "$(dirname "$0")/.."
GO_ROOT=${GO_ROOT:-/usr/local/go}

# want: go.mod's toolchain version, else its go version ("1.26.8").
want=$(sed -n 's/^toolchain go\([0-9.]*\)$/\1/p' go.mod)
[ -n "$want" ] || want=$(sed -n 's/^go \([0-9.]*\)$/\1/p' go.mod)
[ -n "$want" ] || { echo "tools/go.sh: no go version in go.mod" >&2; exit 1; }

# version GO: the version of that go command ("1.26.8"), empty if none.
version() {
	command -v "$1" >/dev/null 2>&1 || return 0
	(cd / && GOTOOLCHAIN=local GOFLAGS= "$1" env GOVERSION 2>/dev/null | sed -n 's/^go\([0-9.]*\).*/\1/p')
}

# enough V: V is want or newer.
enough() {
	[ -n "$1" ] && [ "$(printf '%s\n%s\n' "$want" "$1" | sort -V | head -1)" = "$want" ]
}

# found: the go command to use, empty if none is new enough.
found() {
	if enough "$(version go)"; then
		command -v go
	elif enough "$(version "$GO_ROOT/bin/go")"; then
		echo "$GO_ROOT/bin/go"
	fi
}

install() {
	local arch debgo dir old
	arch=$(dpkg --print-architecture 2>/dev/null || true)
	case "$arch" in
	amd64 | arm64) ;;
	*) echo "tools/go.sh: no Debian package architecture (dpkg) or not amd64/arm64 ($arch): install Go $want or newer in $GO_ROOT by hand" >&2; exit 1 ;;
	esac
	tmp=$(mktemp -d)
	trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
	echo "Go $want: fetching Debian's golang-go to download golang.org/toolchain@v0.0.1-go$want.linux-$arch"
	# Debian's Go (golang-go's dependencies: the compiler and its sources),
	# unpacked here only.
	local debs="golang-1.19-go golang-1.19-src"
	if ! (cd "$tmp" && apt-get download -qq $debs 2>/dev/null); then
		apt-get update -qq
		(cd "$tmp" && apt-get download -qq $debs)
	fi
	for d in "$tmp"/*.deb; do dpkg-deb -x "$d" "$tmp/deb"; done
	debgo="$tmp/deb/usr/lib/go-1.19/bin/go"
	mkdir -p "$tmp/mod" "$tmp/work"
	dir=$(cd "$tmp/work" && env GOMODCACHE="$tmp/mod" GOPATH="$tmp/gopath" GOFLAGS= GO111MODULE=on \
		"$debgo" mod download -json "golang.org/toolchain@v0.0.1-go$want.linux-$arch" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[ -x "$dir/bin/go" ] || [ -f "$dir/bin/go" ] || { echo "tools/go.sh: the toolchain module has no bin/go" >&2; exit 1; }
	# The module's zip keeps no file modes: the go command sets the
	# execute bits itself on first use; so do we.
	rm -rf "$GO_ROOT.new"
	mkdir -p "$(dirname "$GO_ROOT")"
	cp -R "$dir" "$GO_ROOT.new"
	chmod -R u+w,go-w "$GO_ROOT.new"
	chmod a+x "$GO_ROOT.new"/bin/* "$GO_ROOT.new"/pkg/tool/*/*
	enough "$(version "$GO_ROOT.new/bin/go")" || { echo "tools/go.sh: $GO_ROOT.new/bin/go does not run as Go $want" >&2; exit 1; }
	if [ -e "$GO_ROOT" ]; then
		old="$GO_ROOT-$(version "$GO_ROOT/bin/go")-old"
		echo "moving the older $GO_ROOT to $old"
		rm -rf "$old"
		mv "$GO_ROOT" "$old"
	fi
	mv "$GO_ROOT.new" "$GO_ROOT"
	echo "installed $("$GO_ROOT/bin/go" version) in $GO_ROOT"
}

case "${1:-}" in
path)
	go=$(found)
	echo "${go:-$GO_ROOT/bin/go}"
	;;
install)
	go=$(found)
	if [ -z "$go" ]; then
		install
		go="$GO_ROOT/bin/go"
	fi
	if [ "$(command -v go || true)" != "$go" ]; then
		echo "Go $want: $go (the Makefile finds it; put $(dirname "$go") first in your shell's PATH)"
	fi
	;;
*)
	echo "usage: tools/go.sh path|install" >&2
	exit 2
	;;
esac
