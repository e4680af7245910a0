#!/bin/sh
# Installs crio (a Kubernetes CRI runtime: CRI-O's job, in TypeScript on Bun, one executable)
# with what it needs from the distribution, its configuration, the CNI bridge network, a
# systemd unit and shell completions; `--uninstall` stops the service, removes every pod,
# container and image (`crio wipe -f`), then exactly what it installed.
#
#   curl -fsSL https://…/install.sh | sudo CRIO_RELEASE_URL=https://…/crio-linux-{arch} sh
#   sudo sh install.sh                 # from a source checkout: builds dist/crio with Bun from npm
#   sudo CRIO_BINARY=./dist/crio sh install.sh --no-packages
#   DESTDIR=/tmp/pkgroot PREFIX=/usr sh install.sh --no-packages   # packaging
#   sudo sh install.sh --uninstall
#
# Run `sh install.sh --help` for every option. POSIX sh; every failure names its step.
set -eu

usage() {
	cat <<'EOF'
Usage: install.sh [options]

Installs: the distribution's runc (or crun), containernetworking-plugins, iptables (or
nftables), conntrack and containers-common; the crio binary to $PREFIX/bin; /etc/crio/crio.conf
(from `crio config --default`, only when absent: an operator's file is never overwritten, the
new default goes to crio.conf.new beside it); the bridge CNI network when network_dir has no
configuration; crio.service (enabled and started when systemd runs); bash, zsh and fish
completions. What it installed is listed in $DESTDIR/var/lib/crio-install/manifest.

Options:
  --uninstall        stop crio.service, remove every pod, container and image (crio wipe -f),
                     then what install.sh installed (files an operator changed are kept)
  --purge-packages   with --uninstall: also remove the distribution packages install.sh added
  --no-packages      do not install distribution packages
  --no-start         do not enable or start crio.service
  --runtime NAME     runc (default) or crun; crun also sets default_runtime in a drop-in
  --crun             same as --runtime crun
  --nftables         install nftables instead of iptables
  --binary PATH      install this crio binary (same as CRIO_BINARY)
  --prefix DIR       installation prefix (default /usr/local; same as PREFIX)
  --destdir DIR      stage everything below DIR (same as DESTDIR); never touches systemd
  -h, --help         this help

Where the binary comes from, first match wins:
  CRIO_BINARY=PATH        an existing binary
  a source checkout       install.sh run from the repository: npm ci && bun run build (dist/crio)
  CRIO_RELEASE_URL=URL    downloaded with curl or wget; "{arch}" in the URL becomes x64 or
                          arm64; CRIO_RELEASE_SHA256 (optional) is checked

Other environment: PREFIX, DESTDIR, SYSTEMD_UNIT_DIR (default $PREFIX/lib/systemd/system for
/usr and /usr/local, /etc/systemd/system otherwise), CRIO_OS_RELEASE (default /etc/os-release).
EOF
}

STEP="arguments"
DIED=0
say() { printf 'install.sh: %s\n' "$*"; }
die() {
	DIED=1
	printf 'install.sh: step "%s" failed: %s\n' "$STEP" "$*" >&2
	exit 1
}
step() { STEP=$1; }
on_exit() {
	rc=$?
	[ -n "${WORK:-}" ] && rm -rf "$WORK"
	if [ "$rc" -ne 0 ] && [ "$DIED" -eq 0 ]; then
		printf 'install.sh: step "%s" failed: the last command exited with status %s (its output is above)\n' "$STEP" "$rc" >&2
	fi
	exit "$rc"
}

main() {
	trap on_exit EXIT
	ACTION=install
	PACKAGES=1
	START=1
	PURGE=0
	PREFIX=${PREFIX:-/usr/local}
	DESTDIR=${DESTDIR:-}
	CRIO_BINARY=${CRIO_BINARY:-}
	CRIO_RELEASE_URL=${CRIO_RELEASE_URL:-}
	CRIO_RELEASE_SHA256=${CRIO_RELEASE_SHA256:-}
	RUNTIME=${CRIO_RUNTIME:-runc}
	FIREWALL=iptables
	OS_RELEASE=${CRIO_OS_RELEASE:-/etc/os-release}
	while [ $# -gt 0 ]; do
		case $1 in
		--uninstall) ACTION=uninstall ;;
		--purge-packages) PURGE=1 ;;
		--no-packages) PACKAGES=0 ;;
		--no-start) START=0 ;;
		--crun) RUNTIME=crun ;;
		--nftables) FIREWALL=nftables ;;
		--runtime | --binary | --prefix | --destdir)
			[ $# -ge 2 ] || die "$1 needs a value"
			opt_value "$1" "$2"
			shift
			;;
		--runtime=* | --binary=* | --prefix=* | --destdir=*) opt_value "${1%%=*}" "${1#*=}" ;;
		-h | --help) usage; exit 0 ;;
		*) die "unknown option \"$1\" (see --help)" ;;
		esac
		shift
	done
	case $RUNTIME in runc | crun) ;; *) die "--runtime must be runc or crun, not \"$RUNTIME\"" ;; esac
	case $PREFIX in /*) ;; *) die "PREFIX must be an absolute path, not \"$PREFIX\"" ;; esac
	case $DESTDIR in "" | /*) ;; *) DESTDIR=$(pwd)/$DESTDIR ;; esac
	DESTDIR=${DESTDIR%/}
	if [ -z "$DESTDIR" ] && [ "$(id -u)" -ne 0 ]; then
		die "run as root (sudo sh install.sh), or stage into a directory with DESTDIR"
	fi
	BINDIR=$PREFIX/bin
	case $PREFIX in /usr | /usr/local) UNITDIR=${SYSTEMD_UNIT_DIR:-$PREFIX/lib/systemd/system} ;; *) UNITDIR=${SYSTEMD_UNIT_DIR:-/etc/systemd/system} ;; esac
	MANIFEST=/var/lib/crio-install/manifest
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/crio-install.XXXXXX")
	NEW=$WORK/manifest
	: >"$NEW"
	OLD=$WORK/old-manifest
	if [ -f "$DESTDIR$MANIFEST" ]; then cp "$DESTDIR$MANIFEST" "$OLD"; else : >"$OLD"; fi
	if [ "$ACTION" = uninstall ]; then uninstall; else install; fi
}

opt_value() {
	case $1 in
	--runtime) RUNTIME=$2 ;;
	--binary) CRIO_BINARY=$2 ;;
	--prefix) PREFIX=$2 ;;
	--destdir) DESTDIR=$2 ;;
	esac
}

# --- install ---

install() {
	step "prepare the manifest directory"
	ensure_dir "$(dirname "$MANIFEST")"

	step "find the crio binary"
	find_binary

	if [ "$PACKAGES" -eq 1 ]; then
		step "install distribution packages"
		detect_distro
		install_packages
	else
		carry pkg
	fi

	step "install the crio binary"
	install_file "$SRC_BIN" "$BINDIR/crio" 0755
	BIN_CHANGED=$CHANGED

	step "write /etc/crio/crio.conf"
	"$SRC_BIN" config --default >"$WORK/crio.conf" || die "\"$SRC_BIN config --default\" failed"
	install_config "$WORK/crio.conf" /etc/crio/crio.conf
	if [ "$RUNTIME" = crun ]; then
		printf '# Written by install.sh --runtime crun.\n[crio.runtime]\ndefault_runtime = "crun"\n' >"$WORK/runtime.conf"
		install_file "$WORK/runtime.conf" /etc/crio/crio.conf.d/10-runtime.conf 0644
	fi

	step "install the CNI network"
	install_cni

	step "install crio.service"
	unit_file >"$WORK/crio.service"
	sed "s|^ExecStart=/usr/local/bin/crio\$|ExecStart=$BINDIR/crio|" "$WORK/crio.service" >"$WORK/crio.service.out"
	install_file "$WORK/crio.service.out" "$UNITDIR/crio.service" 0644
	UNIT_CHANGED=$CHANGED

	step "install shell completions"
	"$SRC_BIN" completion bash >"$WORK/crio.bash" && "$SRC_BIN" completion zsh >"$WORK/_crio" && "$SRC_BIN" completion fish >"$WORK/crio.fish" ||
		die "\"$SRC_BIN completion\" failed"
	install_file "$WORK/crio.bash" "$PREFIX/share/bash-completion/completions/crio" 0644
	install_file "$WORK/_crio" "$PREFIX/share/zsh/site-functions/_crio" 0644
	install_file "$WORK/crio.fish" "$PREFIX/share/fish/vendor_completions.d/crio.fish" 0644

	step "remove files an older install left"
	drop_stale

	step "write the manifest"
	carry dir
	write_manifest

	step "start crio.service"
	start_service
	say "done: crio $("$DESTDIR$BINDIR/crio" version --json 2>/dev/null | sed -n 's/.*"version": "\(.*\)".*/\1/p') in $DESTDIR$BINDIR/crio"
}

detect_distro() {
	[ -r "$OS_RELEASE" ] || die "cannot read $OS_RELEASE to tell the distribution; rerun with --no-packages"
	ids=$(
		ID=
		ID_LIKE=
		# shellcheck disable=SC1090
		. "$OS_RELEASE"
		printf '%s %s' "$ID" "$ID_LIKE"
	)
	DISTRO=${ids%% *}
	PM=
	for id in $ids; do
		case $id in
		debian | ubuntu) PM=apt; break ;;
		fedora | rhel | centos | rocky | almalinux | ol | amzn) PM=dnf; break ;;
		esac
	done
	if [ "$PM" = dnf ] && ! command -v dnf >/dev/null 2>&1; then PM=yum; fi
}

find_binary() {
	SRC_BIN=
	if [ -n "$CRIO_BINARY" ]; then
		[ -f "$CRIO_BINARY" ] || die "CRIO_BINARY=\"$CRIO_BINARY\" is not a file"
		SRC_BIN=$CRIO_BINARY
	elif tree=$(source_tree) && [ -n "$tree" ]; then
		build_from "$tree"
		SRC_BIN=$tree/dist/crio
	elif [ -n "$CRIO_RELEASE_URL" ]; then
		download_release
		SRC_BIN=$WORK/crio
	else
		die "no crio binary: set CRIO_BINARY=/path/to/crio, run install.sh from a source checkout, or set CRIO_RELEASE_URL=https://…/crio-linux-{arch}"
	fi
	case $SRC_BIN in /*) ;; *) SRC_BIN=$(pwd)/$SRC_BIN ;; esac
	chmod +x "$SRC_BIN" 2>/dev/null || true
	"$SRC_BIN" version >/dev/null 2>&1 || die "\"$SRC_BIN version\" failed: the binary does not run on this machine ($(uname -m))"
}

# The checkout install.sh runs from, or nothing when it was piped into sh.
source_tree() {
	case $0 in */install.sh | install.sh) ;; *) return 0 ;; esac
	dir=$(cd "$(dirname "$0")" && pwd)
	if [ -f "$dir/package.json" ] && [ -f "$dir/src/main.ts" ] && grep -q '"name": "crio-ts"' "$dir/package.json"; then printf '%s' "$dir"; fi
}

build_from() {
	step "build crio from the checkout"
	if [ -x "$1/dist/crio" ] && [ -z "$(cd "$1" && find src build.ts package.json package-lock.json -newer dist/crio 2>/dev/null | head -n 1)" ]; then
		say "dist/crio is newer than the sources: not rebuilding"
		return 0
	fi
	if ! command -v npm >/dev/null 2>&1; then
		[ "$PACKAGES" -eq 1 ] || die "building needs npm (Node.js): install it, or set CRIO_BINARY"
		EXTRA_PKGS=npm
		detect_distro
		install_packages
		EXTRA_PKGS=
	fi
	say "building dist/crio (npm ci, bun run build)"
	(cd "$1" && npm ci --no-audit --no-fund </dev/null && ./node_modules/.bin/bun run build </dev/null) || die "building dist/crio in $1 failed (see above)"
	step "find the crio binary"
}

download_release() {
	step "download the crio binary"
	case $(uname -m) in x86_64 | amd64) arch=x64 ;; aarch64 | arm64) arch=arm64 ;; *) die "no release build for $(uname -m)" ;; esac
	url=$(printf '%s' "$CRIO_RELEASE_URL" | sed "s/{arch}/$arch/g")
	say "downloading $url"
	if command -v curl >/dev/null 2>&1; then
		curl -fsSL --retry 3 -o "$WORK/crio" "$url" || die "downloading $url failed"
	elif command -v wget >/dev/null 2>&1; then
		wget -q -O "$WORK/crio" "$url" || die "downloading $url failed"
	else
		die "neither curl nor wget is installed"
	fi
	if [ -n "$CRIO_RELEASE_SHA256" ]; then
		got=$(sha "$WORK/crio")
		[ "$got" = "$CRIO_RELEASE_SHA256" ] || die "$url has sha256 $got, not CRIO_RELEASE_SHA256=$CRIO_RELEASE_SHA256"
	fi
	step "find the crio binary"
}

install_packages() {
	case $FIREWALL in nftables) fw=nftables ;; *) fw=iptables ;; esac
	case $PM in
	apt) pkgs="$RUNTIME containernetworking-plugins $fw conntrack golang-github-containers-common" ;;
	dnf | yum) pkgs="$RUNTIME containernetworking-plugins $fw conntrack-tools containers-common" ;;
	*) die "unsupported distribution \"$DISTRO\" (from $OS_RELEASE): install $RUNTIME, containernetworking-plugins, $fw, conntrack and containers-common yourself, then rerun with --no-packages" ;;
	esac
	[ -n "${EXTRA_PKGS:-}" ] && pkgs=$EXTRA_PKGS
	missing=
	for p in $pkgs; do
		if ! pkg_installed "$p"; then missing="$missing $p"; fi
	done
	if [ -z "$missing" ]; then
		say "packages already installed: $pkgs"
	else
		say "installing packages:$missing"
		if [ "$PM" = apt ]; then
			DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null || die "apt-get update failed"
			# shellcheck disable=SC2086
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing </dev/null || die "apt-get install$missing failed"
		else
			# shellcheck disable=SC2086
			"$PM" install -y $missing </dev/null || die "$PM install$missing failed"
		fi
		for p in $missing; do record pkg - "$p"; done
	fi
	carry pkg
}

pkg_installed() {
	if [ "$PM" = apt ]; then
		dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
	else
		rpm -q "$1" >/dev/null 2>&1
	fi
}

# install_file SRC DEST MODE: copies SRC to $DESTDIR/DEST unless it is already identical;
# records DEST in the manifest; sets CHANGED=1 when the file was written.
install_file() {
	dst=$DESTDIR$2
	ensure_dir "$(dirname "$2")"
	CHANGED=0
	if [ -f "$dst" ] && cmp -s "$1" "$dst"; then
		[ "$(file_mode "$dst")" = "$3" ] || chmod "$3" "$dst"
	else
		cp "$1" "$dst.crio-install.tmp" || die "cannot write $dst"
		chmod "$3" "$dst.crio-install.tmp"
		mv -f "$dst.crio-install.tmp" "$dst" || die "cannot replace $dst"
		say "installed $2"
		CHANGED=1
	fi
	record file "$(sha "$dst")" "$2"
}

# install_config NEW DEST: DEST is written when absent, or replaced when it is still the file
# install.sh wrote (unmodified); an operator's file is kept and NEW goes to DEST.new.
install_config() {
	dst=$DESTDIR$2
	if [ ! -e "$dst" ] || { was=$(old_sum "$2") && [ -n "$was" ] && [ "$(sha "$dst")" = "$was" ]; }; then
		install_file "$1" "$2" 0644
	elif cmp -s "$1" "$dst"; then
		if [ -n "$(old_sum "$2")" ]; then record file "$(sha "$dst")" "$2"; fi
	else
		install_file "$1" "$2.new" 0644
		say "kept $2 (changed by an operator); the current default is in $2.new"
	fi
}

install_cni() {
	"$SRC_BIN" --config "$DESTDIR/etc/crio/crio.conf" --config-dir "$DESTDIR/etc/crio/crio.conf.d" config >"$WORK/effective.conf" 2>"$WORK/effective.err" ||
		die "the configuration in $DESTDIR/etc/crio does not load: $(cat "$WORK/effective.err")"
	netdir=$(sed -n 's/^network_dir = "\(.*\)"$/\1/p' "$WORK/effective.conf" | head -n 1)
	[ -n "$netdir" ] || die "no network_dir in the output of \"crio config\""
	netdir=${netdir%/}
	ours=$netdir/10-crio-bridge.conflist
	others=
	for f in "$DESTDIR$netdir"/*.conf "$DESTDIR$netdir"/*.conflist "$DESTDIR$netdir"/*.json; do
		[ -e "$f" ] || continue
		[ "$f" = "$DESTDIR$ours" ] && [ -n "$(old_sum "$ours")" ] && continue
		others="$others ${f#"$DESTDIR"}"
	done
	if [ -n "$others" ]; then
		say "CNI configuration present in $netdir:$others (the bridge network is not installed)"
		return 0
	fi
	cni_conflist >"$WORK/cni.conflist"
	install_file "$WORK/cni.conflist" "$ours" 0644
}

start_service() {
	if [ -n "$DESTDIR" ]; then
		say "not starting crio.service: DESTDIR is set"
		return 0
	elif [ "$START" -eq 0 ]; then
		say "not starting crio.service (--no-start): systemctl enable --now crio"
		return 0
	fi
	if [ ! -d /run/systemd/system ]; then
		say "systemd is not running: start crio in the foreground with: $BINDIR/crio"
		return 0
	fi
	systemctl daemon-reload || die "systemctl daemon-reload failed"
	systemctl enable crio.service || die "systemctl enable crio.service failed"
	if systemctl is-active --quiet crio.service; then
		if [ "$BIN_CHANGED" -eq 1 ] || [ "$UNIT_CHANGED" -eq 1 ]; then
			say "restarting crio.service (its containers keep running)"
			systemctl restart crio.service || die "systemctl restart crio.service failed: see journalctl -u crio"
		fi
	else
		systemctl start crio.service || die "systemctl start crio.service failed: see journalctl -u crio"
	fi
	say "crio.service is running: unix:///var/run/crio/crio.sock"
}

# --- uninstall ---

uninstall() {
	step "read the manifest"
	if [ ! -s "$OLD" ]; then
		say "nothing to uninstall: no manifest at $DESTDIR$MANIFEST"
		return 0
	fi
	step "stop crio.service"
	if [ -z "$DESTDIR" ] && [ -d /run/systemd/system ] && grep -q '/crio\.service$' "$OLD"; then
		systemctl disable --now crio.service || die "systemctl disable --now crio.service failed"
	fi
	step "remove pods, containers and images (crio wipe -f)"
	wipe_state
	step "remove files"
	grep '^file ' "$OLD" | while read -r _ sum path; do
		remove_if_ours "$path" "$sum"
	done
	rm -f "$DESTDIR$MANIFEST"
	step "remove directories"
	grep '^dir ' "$OLD" | cut -d' ' -f3- | awk '{ print length($0) " " $0 }' | sort -rn | cut -d' ' -f2- | while read -r d; do
		rmdir "$DESTDIR$d" 2>/dev/null || true
	done
	if [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
	step "packages"
	pkgs=$(grep '^pkg ' "$OLD" | cut -d' ' -f3- | tr '\n' ' ' | sed 's/ $//')
	if [ -n "$pkgs" ] && [ "$PURGE" -eq 1 ]; then
		detect_distro
		if [ "$PM" = apt ]; then
			# shellcheck disable=SC2086
			DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq $pkgs </dev/null || die "apt-get remove $pkgs failed"
		else
			# shellcheck disable=SC2086
			"$PM" remove -y $pkgs </dev/null || die "$PM remove $pkgs failed"
		fi
	elif [ -n "$pkgs" ]; then
		say "kept the packages install.sh added ($pkgs): --purge-packages removes them"
	fi
	say "uninstalled"
}

# What the daemon made goes before its binary: `crio wipe -f` with the installed binary and
# configuration (and the unit's environment files) stops and removes every pod and container
# (monitors and container processes, runtime state and cgroups, root filesystem mounts, pinned
# namespaces, CNI attachments: veths, iptables/nft rules and host-local leases) and every image,
# then releases the daemon's own mounts. It refuses while a daemon still answers on the socket
# (one not run by crio.service): nothing is removed then. With DESTDIR, the state is wiped only
# when the configuration keeps root and runroot inside DESTDIR: a staged tree never wipes the
# live node's /var/lib/crio.
wipe_state() {
	bin=$DESTDIR$BINDIR/crio
	if [ ! -x "$bin" ]; then
		say "no $BINDIR/crio to run \`crio wipe -f\` with: the daemon's pods, containers and images (if any) are left as they are"
		return 0
	fi
	crio_with_env config >"$WORK/effective.conf" 2>"$WORK/effective.err" ||
		die "the configuration in $DESTDIR/etc/crio does not load, so the daemon's state cannot be found: $(cat "$WORK/effective.err")"
	root=$(sed -n 's/^root = "\(.*\)"$/\1/p' "$WORK/effective.conf" | head -n 1)
	runroot=$(sed -n 's/^runroot = "\(.*\)"$/\1/p' "$WORK/effective.conf" | head -n 1)
	[ -n "$root" ] && [ -n "$runroot" ] || die "no root or runroot in the output of \"crio config\""
	if [ -n "$DESTDIR" ]; then
		case $root/ in "$DESTDIR"/*) inside=1 ;; *) inside=0 ;; esac
		case $runroot/ in "$DESTDIR"/*) ;; *) inside=0 ;; esac
		if [ "$inside" -eq 0 ]; then
			say "not wiping: DESTDIR is set and the daemon's root ($root) and runroot ($runroot) are not inside it"
			return 0
		fi
	fi
	crio_with_env wipe -f || die "\`crio wipe -f\` failed (its output is above); nothing was uninstalled"
}

# Runs the installed crio with the installed configuration and crio.service's environment files.
crio_with_env() (
	set -a
	for envfile in "$DESTDIR/etc/default/crio" "$DESTDIR/etc/sysconfig/crio"; do
		# shellcheck disable=SC1090
		if [ -r "$envfile" ]; then . "$envfile"; fi
	done
	set +a
	exec "$DESTDIR$BINDIR/crio" --config "$DESTDIR/etc/crio/crio.conf" --config-dir "$DESTDIR/etc/crio/crio.conf.d" "$@"
)

remove_if_ours() {
	f=$DESTDIR$1
	[ -e "$f" ] || return 0
	if [ "$(sha "$f")" = "$2" ]; then
		rm -f "$f"
		say "removed $1"
	else
		say "kept $1: it was changed after install"
	fi
}

# --- manifest ---
# Lines: "file <sha256> <path>", "dir - <path>", "pkg - <name>"; paths without DESTDIR.

record() { printf '%s %s %s\n' "$1" "$2" "$3" >>"$NEW"; }

# The sha256 the last install recorded for a path, or nothing.
old_sum() { awk -v p="$1" "$PATH_OF"' $1 == "file" && path() == p { print $2; exit }' "$OLD"; }

# True when this run recorded a path.
recorded() { awk -v p="$1" "$PATH_OF"' path() == p { found = 1 } END { exit !found }' "$NEW"; }

# awk: the path of a manifest line (everything after the second space).
PATH_OF='function path(  r) { r = substr($0, index($0, " ") + 1); return substr(r, index(r, " ") + 1) }' 

# Keeps the previous entries of a kind (dirs still there, packages).
carry() {
	grep "^$1 " "$OLD" | while read -r kind sum path; do
		if [ "$kind" = dir ] && [ ! -d "$DESTDIR$path" ]; then continue; fi
		record "$kind" "$sum" "$path"
	done || true
}

# Files the previous install wrote that this one did not: removed when unchanged.
drop_stale() {
	grep '^file ' "$OLD" | while read -r _ sum path; do
		if ! recorded "$path"; then remove_if_ours "$path" "$sum"; fi
	done || true
}

write_manifest() {
	LC_ALL=C sort -u "$NEW" >"$WORK/manifest.sorted"
	dst=$DESTDIR$MANIFEST
	if [ -f "$dst" ] && cmp -s "$WORK/manifest.sorted" "$dst"; then return 0; fi
	cp "$WORK/manifest.sorted" "$dst.tmp" && mv -f "$dst.tmp" "$dst" || die "cannot write $dst"
}

# mkdir -p that records each directory it creates.
ensure_dir() {
	[ -d "$DESTDIR$1" ] && return 0
	parent=$(dirname "$1")
	[ "$parent" != "$1" ] && ensure_dir "$parent"
	mkdir "$DESTDIR$1" 2>/dev/null || [ -d "$DESTDIR$1" ] || die "cannot create $DESTDIR$1"
	record dir - "$1"
}

sha() { sha256sum "$1" | cut -d' ' -f1; }
file_mode() { stat -c %a "$1" | sed 's/^/0/'; }

# --- embedded files (test/e2e/install.test.ts checks they equal contrib/) ---

unit_file() {
	cat <<'EOF'
[Unit]
Description=Container Runtime Interface for OCI (crio in TypeScript)
Documentation=https://github.com/cri-o/cri-o
Wants=network-online.target
Before=kubelet.service
After=network-online.target

[Service]
# The daemon sends READY=1 once state recovery is done and the CRI socket answers every RPC,
# STATUS= lines while starting, RELOADING=1/READY=1 around a SIGHUP reload, and STOPPING=1.
Type=notify
# Settings for the daemon, as CONTAINER_* variables (every flag has one: CONTAINER_LOG_LEVEL=debug).
EnvironmentFile=-/etc/default/crio
EnvironmentFile=-/etc/sysconfig/crio
ExecStart=/usr/local/bin/crio
ExecReload=/bin/kill -s HUP $MAINPID
# Recovery after a crash can take a while with many pods: no start timeout (as CRI-O's unit).
TimeoutStartSec=0
Restart=on-failure
RestartSec=10
# Containers do not live in this unit's cgroup (runc puts them under kubepods or their own
# systemd scopes), but each container's monitor (`crio conmon`) does: it is started in its own
# session and must outlive a stop, restart or upgrade of the daemon, as conmon outlives CRI-O.
# The default KillMode=control-group (and mixed) would kill every monitor with the daemon;
# KillMode=process signals the daemon alone. systemd logs the monitors as "left-over
# processes" when the unit starts again; the daemon adopts them during recovery.
KillMode=process
# Wait for a graceful stop (calls in flight finish) before SIGKILL.
TimeoutStopSec=30
# Watchdog: when set, the daemon pings every WatchdogSec/2 (WATCHDOG=1) and systemd restarts
# it if the event loop stalls. Off by default, as in CRI-O's unit.
#WatchdogSec=60
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
OOMScoreAdjust=-999
# The daemon creates no cgroups below its own unit (pods go under kubepods), so no Delegate=.

[Install]
WantedBy=multi-user.target
EOF
}

cni_conflist() {
	cat <<'EOF'
{
  "cniVersion": "1.0.0",
  "name": "crio",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "routes": [
          { "dst": "0.0.0.0/0" },
          { "dst": "::/0" }
        ],
        "ranges": [
          [{ "subnet": "10.85.0.0/16" }],
          [{ "subnet": "fd00:10:85::/64" }]
        ]
      }
    },
    {
      "type": "portmap",
      "capabilities": { "portMappings": true },
      "snat": true
    }
  ]
}
EOF
}

main "$@"
