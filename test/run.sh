#!/usr/bin/env bash
# The one test command (`npm test`): set up, check generated code, lint and types, build the
# binary, run the unit tests, then the e2e tests (as root, against dist/crio with real runc,
# CNI plugins and a registry on 127.0.0.1), several files at once. Ends with one summary line.
set -uo pipefail
cd "$(dirname "$0")/.."
bash test/setup.sh || { echo "setup failed"; exit 1; }
export PATH="$PWD/node_modules/.bin:$PATH"
export CRIO_TEST_TMP="${CRIO_TEST_TMP:-/var/tmp}"

step() { echo; echo "== $*"; }
step "generated code is current";  bun run check:gen || exit 1
step "lint and format (biome check)"; bun run check || exit 1
step "typecheck";                  tsc --noEmit -p . || exit 1
step "build dist/crio";            bun run build || exit 1

out=$(mktemp -d)
pass=0; fail=0
tally() {  # file with bun test output
  local p f
  p=$(grep -Eo '^ *[0-9]+ pass$' "$1" | tail -1 | tr -dc 0-9); f=$(grep -Eo '^ *[0-9]+ fail$' "$1" | tail -1 | tr -dc 0-9)
  pass=$((pass + ${p:-0})); fail=$((fail + ${f:-0}))
  if ! grep -Eq '^ *[0-9]+ pass$' "$1"; then fail=$((fail + 1)); echo "(no summary from $1: counted as a failure)"; fi
}

step "unit tests"
bun test --timeout 60000 test/unit 2>&1 | tee "$out/unit.log"
tally "$out/unit.log"

if [ "$(id -u)" != 0 ]; then
  echo "e2e tests need root (they run containers); skipped as a failure"; fail=$((fail + 1))
else
  step "e2e tests (${CRIO_E2E_JOBS:=3} at once)"
  mapfile -t files < <(ls test/e2e/*.test.ts test/regression/*.test.ts 2>/dev/null | sort)
  for f in "${files[@]}"; do
    ( bun test --timeout 180000 "$f" >"$out/e2e-$(basename "$f").log" 2>&1 ) &
    while [ "$(jobs -rp | wc -l)" -ge "$CRIO_E2E_JOBS" ]; do wait -n 2>/dev/null || true; done
  done
  wait
  for f in "${files[@]}"; do
    log="$out/e2e-$(basename "$f").log"
    echo "--- $f"
    if grep -Eq '^ *[1-9][0-9]* fail$' "$log" || ! grep -Eq '^ *[0-9]+ pass$' "$log"; then tail -n 150 "$log"
    else grep -E '^ *[0-9]+ (pass|fail)$' "$log"; fi
    tally "$log"
  done

  # crio.service under systemd with cgroup_manager = "systemd", in a systemd-nspawn node
  step "systemd lane (test/systemd-node: crio.service in a systemd node)"
  bash test/systemd-node/run.sh >"$out/systemd-lane.log" 2>&1; lane=$?
  if grep -Eq '^ *[1-9][0-9]* fail$' "$out/systemd-lane.log" || ! grep -Eq '^ *[0-9]+ pass$' "$out/systemd-lane.log"; then tail -n 200 "$out/systemd-lane.log"
  else grep -E '^ *[0-9]+ (pass|fail)$|^systemd lane' "$out/systemd-lane.log"; fi
  tally "$out/systemd-lane.log"
  if [ "$lane" != 0 ] && ! grep -Eq '^ *[1-9][0-9]* fail$' "$out/systemd-lane.log"; then echo "(the systemd lane exited $lane)"; fail=$((fail + 1)); fi
fi
rm -rf "$out"
echo
echo "tests: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
