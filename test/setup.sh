#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian/Ubuntu machine (as root): the Debian
# packages of the real outside parts, and the npm packages from the lockfile. Idempotent: it
# only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(runc crun containernetworking-plugins iptables docker-registry skopeo umoci busybox-static
      zstd iproute2 util-linux openssl tar gzip ca-certificates procps psmisc strace nftables
      systemd-container gnupg)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# kubectl for the real-client streaming tests (test/e2e/streaming-kubectl.test.ts): Debian's
# kubernetes-client when none is installed; best effort, the tests skip without it
if ! command -v kubectl >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends kubernetes-client >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends kubernetes-client >/dev/null 2>&1; } ||
    echo "setup: kubectl not installed (kubernetes-client unavailable): the kubectl tests will be skipped"
fi

if [ ! -x node_modules/.bin/bun ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages from the lockfile"
  npm ci --no-audit --no-fund >/dev/null
fi
