#!/usr/bin/env bash
# Runs the CRI validation suite (critest v1.26.1) against the compiled daemon with real runc,
# the bridge CNI plugin and a loopback registry serving look-alikes of critest's images.
#
#   conformance/run.sh [validate|benchmark] [extra critest/ginkgo flags…]
#
# CRIO_CONFORMANCE_RUNROOT=/a/path/that/does/not/exist/yet sets the daemon's runroot (default
# /run/crio-critest-<pid>), e.g. one over 100 characters to check that deep paths work; it is
# created, and removed afterwards. CRIO_CONFORMANCE_NAME names the results folder.
#
# Needs: root; `critest` (and optionally `crictl`) on PATH or in $ANCHORS/bin (default
# /var/tmp/crio-conformance/bin) — this repository never builds or ships them; dist/crio
# (`bun run build`); the steering repo's shared/conformance scripts beside this checkout
# (registry.sh: Debian's docker-registry on 127.0.0.1:5000; images.sh: the look-alike images
# from busybox and tiny static C programs). Everything the daemon writes lives in a temp dir.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SHARED=${CRIO_CONFORMANCE_SHARED:-$REPO/../shared/conformance}
MODE=${1:-validate}; shift || true
[ -x "$SHARED/run-critest.sh" ] || { echo "conformance: $SHARED/run-critest.sh not found (set CRIO_CONFORMANCE_SHARED)"; exit 1; }
. "$SHARED/common.sh"
command -v critest >/dev/null || { echo "conformance: critest not found in PATH or $BIN"; exit 1; }
[ -x "$REPO/dist/crio" ] || (cd "$REPO" && bun run build)

for p in docker-registry skopeo gcc jq iproute2 iptables containernetworking-plugins runc; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || apt-get install -y -qq --no-install-recommends "$p" >/dev/null
done
bash "$SHARED/registry.sh" start
bash "$SHARED/images.sh" >/dev/null

D=$(mktemp -d /var/tmp/crio-critest.XXXXXX)
RR=${CRIO_CONFORMANCE_RUNROOT:-/run/crio-critest-$$}
case "$RR" in /*) ;; *) echo "conformance: CRIO_CONFORMANCE_RUNROOT must be an absolute path"; exit 1 ;; esac
[ ! -e "$RR" ] || { echo "conformance: runroot $RR already exists (give a new path: it is removed afterwards)"; exit 1; }
mkdir -p "$RR"
echo "runroot: $RR (${#RR} characters)"
mkdir -p "$D/cni/net.d" "$D/conf.d"
cat > "$D/registries.conf" <<CONF
unqualified-search-registries = ["docker.io"]
[[registry]]
prefix = "registry.k8s.io"
location = "$REGISTRY_ADDR"
insecure = true
[[registry]]
prefix = "gcr.io"
location = "$REGISTRY_ADDR"
insecure = true
[[registry]]
prefix = "public.ecr.aws"
location = "$REGISTRY_ADDR"
insecure = true
[[registry]]
prefix = "docker.io"
location = "$REGISTRY_ADDR"
insecure = true
CONF
echo '{"default":[{"type":"insecureAcceptAnything"}]}' > "$D/policy.json"
cat > "$D/cni/net.d/10-crio-critest.conflist" <<'CNI'
{
  "cniVersion": "1.0.0",
  "name": "crio",
  "plugins": [
    { "type": "bridge", "bridge": "crio-critest0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
      "ipam": { "type": "host-local", "routes": [{ "dst": "0.0.0.0/0" }], "ranges": [[{ "subnet": "10.88.0.0/16", "gateway": "10.88.0.1" }]] } },
    { "type": "portmap", "capabilities": { "portMappings": true }, "snat": true }
  ]
}
CNI
cat > "$D/crio.conf" <<CONF
[crio]
root = "$D/root"
runroot = "$RR"
log_dir = "$D/logs"
version_file = "$D/version"
[crio.api]
listen = "$D/crio.sock"
stream_address = "127.0.0.1"
[crio.runtime]
cgroup_manager = "cgroupfs"
log_level = "${CRIO_LOG_LEVEL:-info}"
[crio.runtime.runtimes.runc]
runtime_root = "$D/runc"
[crio.image]
pause_image = "registry.k8s.io/pause:3.9"
pause_command = "/pause"
signature_policy = "$D/policy.json"
registries_conf = "$D/registries.conf"
registries_conf_dir = "$D/registries.conf.d"
certs_dir = "$D/certs.d"
[crio.network]
network_dir = "$D/cni/net.d"
CONF
egress_guard_on
"$REPO/dist/crio" --config "$D/crio.conf" --config-dir "$D/conf.d" > "$D/crio.log" 2>&1 &
CRIO_PID=$!
cleanup() {
  kill -TERM "$CRIO_PID" 2>/dev/null || true
  wait "$CRIO_PID" 2>/dev/null || true
  # containers outlive a stopped daemon (as CRI-O's): tear down what the run left (pods,
  # containers and their monitors, mounts, pins, CNI) with the run's own config
  "$REPO/dist/crio" --config "$D/crio.conf" --config-dir "$D/conf.d" wipe -f > "$D/wipe.log" 2>&1 || echo "conformance: crio wipe failed (see $D/wipe.log)"
  unmount_under "$D"; unmount_under "$RR"
  ip link del crio-critest0 2>/dev/null || true
  egress_guard_off
  rm -rf "$RR"
  echo "daemon log: $D/crio.log"
}
trap cleanup EXIT
wait_for test -S "$D/crio.sock" || { echo "daemon did not start"; cat "$D/crio.log"; exit 1; }
bash "$SHARED/run-critest.sh" "$MODE" "${CRIO_CONFORMANCE_NAME:-crio-ts}" "unix://$D/crio.sock" "$@"
