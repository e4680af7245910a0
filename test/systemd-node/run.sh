#!/usr/bin/env bash
# The systemd lane: boots a systemd node (node.sh), runs test/systemd-node/*.test.ts against
# crio installed in it by install.sh and run by its systemd (cgroup_manager = "systemd"), and
# always powers the node off and removes it, also when a test fails or the run is interrupted.
# Needs root, systemd-nspawn (systemd-container) and dist/crio built. Prints bun's summary.
#   test/systemd-node/run.sh [bun test args…]   e.g. -t "restart"
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/node_modules/.bin:$PATH"
tmp="${CRIO_TEST_TMP:-/var/tmp}"
# nodes of runs that were SIGKILLed (their nspawn gone) are removed first
for old in "$tmp"/crio-sdnode-*; do
  [ -d "$old" ] || continue
  npid=$(cat "$old/nspawn.pid" 2>/dev/null || true)
  if [ -z "$npid" ] || ! kill -0 "$npid" 2>/dev/null; then bash test/systemd-node/node.sh down "$old" || true; fi
done
dir="$tmp/crio-sdnode-$$"
down() { bash test/systemd-node/node.sh down "$dir" || { echo "systemd lane: tearing the node down failed ($dir)"; exit 1; }; }
trap down EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
start=$(date +%s)
if ! bash test/systemd-node/node.sh up "$dir"; then
  echo "systemd lane: the node did not boot"
  exit 1
fi
echo "systemd lane: node booted in $(($(date +%s) - start)) s ($dir)"
SDNODE_DIR="$dir" bun test --timeout 300000 "$@" test/systemd-node/
rc=$?
if [ "$rc" != 0 ] && [ -n "${CRIO_LANE_JOURNAL:-1}" ]; then
  echo "--- crio.service journal (last 80 lines)"
  bash test/systemd-node/node.sh sh "$dir" journalctl -u crio.service --no-pager -n 80 -o short-precise 2>/dev/null || true
fi
echo "systemd lane: $(($(date +%s) - start)) s"
exit "$rc"
