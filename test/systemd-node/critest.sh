#!/usr/bin/env bash
# critest v1.26.1 against crio.service in a systemd node (cgroup_manager = "systemd"): boots a
# node (node.sh), installs crio with install.sh, serves the conformance images of
# ../shared/conformance from a registry inside the node, runs the shared run-critest.sh inside
# the node (all its namespaces: host ports, host IPC/UTS and log paths are the node's), copies
# the results out to $ANCHORS/results/NAME and tears the node down. Not part of `npm test`.
#
#   test/systemd-node/critest.sh [extra critest/ginkgo flags…]
#
# Needs what conformance/run.sh needs (critest in $ANCHORS/bin, the conformance registry's
# storage under $ANCHORS/registry, made by ../shared/conformance/{registry,images}.sh), plus
# systemd-nspawn; holds /var/tmp/critest.lock while critest runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
SHARED=${CRIO_CONFORMANCE_SHARED:-$REPO/../shared/conformance}
[ -x "$SHARED/run-critest.sh" ] || { echo "critest.sh: $SHARED/run-critest.sh not found (set CRIO_CONFORMANCE_SHARED)"; exit 1; }
SHARED=$(cd "$SHARED" && pwd)
. "$SHARED/common.sh"
command -v critest >/dev/null || { echo "critest.sh: critest not found in PATH or $BIN"; exit 1; }
[ -d "$ANCHORS/registry/storage/docker" ] || { echo "critest.sh: no conformance images in $ANCHORS/registry (run $SHARED/registry.sh start and images.sh)"; exit 1; }
[ -x dist/crio ] || bun run build
NAME=${CRIO_CONFORMANCE_NAME:-crio-ts-systemd-node}

dir="${CRIO_TEST_TMP:-/var/tmp}/crio-sdnode-critest-$$"
trap 'bash test/systemd-node/node.sh down "$dir"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
bash test/systemd-node/node.sh up "$dir"
pid=$(cat "$dir/pid")
root=/proc/$pid/root
in_node() { bash test/systemd-node/node.sh sh "$dir" "$@"; }

# the node's registry serves the conformance images (a copy-on-write view of their storage)
in_node systemctl stop crio-node-registry
cat >"$root/etc/crio-node-registry/critest.yml" <<YML
version: 0.1
log: { level: error }
storage:
  filesystem: { rootdirectory: $ANCHORS/registry/storage }
  delete: { enabled: true }
http: { addr: "127.0.0.1:5000" }
YML
in_node systemd-run --quiet --unit=crio-critest-registry /usr/bin/docker-registry serve /etc/crio-node-registry/critest.yml
for i in $(seq 1 100); do in_node curl -fsS -o /dev/null http://127.0.0.1:5000/v2/ 2>/dev/null && break; sleep 0.1; done

# what conformance/run.sh gives the daemon, as drop-ins (the mirrors, the pause image)
mkdir -p "$root/etc/crio/crio.conf.d" "$root/etc/containers/registries.conf.d"
cat >"$root/etc/crio/crio.conf.d/50-critest.conf" <<'CONF'
[crio.image]
pause_image = "registry.k8s.io/pause:3.9"
pause_command = "/pause"
CONF
{
  for p in registry.k8s.io gcr.io public.ecr.aws docker.io; do
    printf '[[registry]]\nprefix = "%s"\nlocation = "127.0.0.1:5000"\ninsecure = true\n' "$p"
  done
} >"$root/etc/containers/registries.conf.d/50-critest.conf"
in_node env CRIO_BINARY="$REPO/dist/crio" sh "$REPO/install.sh" --no-packages
in_node crio status config | grep -E '^cgroup_manager'

rc=0
flock /var/tmp/critest.lock bash test/systemd-node/node.sh sh "$dir" bash "$SHARED/run-critest.sh" validate "$NAME" unix:///run/crio/crio.sock "$@" || rc=$?
rm -rf "${RESULTS:?}/$NAME"
cp -a "$root$RESULTS/$NAME" "$RESULTS/$NAME" 2>/dev/null || true
in_node journalctl -u crio.service --no-pager -o short-precise >"$RESULTS/$NAME/crio.journal" 2>/dev/null || true
echo "critest.sh: results in $RESULTS/$NAME"
exit "$rc"
