#!/usr/bin/env bash
# A systemd node for the test suite, booted the way kind boots one: systemd-nspawn --boot over
# an overlay whose lower layer is this machine's own `/` and whose upper layer is a tmpfs, in a
# private network namespace, from a cgroup of its own in every cgroup hierarchy. Nothing it does
# reaches this machine's /etc, its cgroups (other than the node's own, below this script's), or
# its network.
#
#   node.sh up   DIR   boot a node in DIR (a fresh dir); prints "pid <node's PID 1>" when
#                      `systemctl is-system-running` says running (or degraded, listed)
#   node.sh down DIR   poweroff (SIGKILL after 20 s), unmount, remove its cgroups and DIR;
#                      idempotent, and safe on a half-made DIR
#   node.sh sh   DIR CMD…   run CMD inside the node (all its namespaces, its root)
#
# The node's /var/lib/crio is DIR/var-lib-crio, a directory of this machine's disk: container
# root filesystems are overlays, and an overlay cannot have its upper layer on an overlay.
#
# DIR/pid holds the node's PID 1 (as seen here); from this side the node's files are under
# /proc/<pid>/root, so its CRI socket is /proc/<pid>/root/run/crio/crio.sock.
set -euo pipefail

NODE_UNITS_MASKED=(postgresql.service postgresql@.service containerd.service docker-registry.service
  console-getty.service getty@tty1.service e2scrub_reap.service systemd-timesyncd.service
  apt-daily.timer apt-daily-upgrade.timer man-db.timer e2scrub_all.timer fstrim.timer dpkg-db-backup.timer
  systemd-pstore.service)

die() { echo "node.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root"
cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || die "usage: node.sh up|down|sh DIR [CMD…]"
case "$dir" in /*) ;; *) die "DIR must be absolute: $dir" ;; esac

node_pid() { cat "$dir/pid" 2>/dev/null || true; }

# Every cgroup hierarchy this process is in, as "mountpoint<TAB>path" (v1 controllers,
# name=systemd and the v2 one); the node's cgroups are children of these.
cgroup_parents() {
  local hid ctrls path mnt
  while IFS=: read -r hid ctrls path; do
    if [ -z "$ctrls" ]; then
      mnt=$(findmnt -rn -t cgroup2 -o TARGET | head -n1)
    else
      mnt=$(findmnt -rn -t cgroup -o TARGET,OPTIONS | awk -v want="$ctrls" '
        { n = split($2, o, ","); split(want, w, ","); ok = 1
          for (i in w) { f = 0; for (j = 1; j <= n; j++) if (o[j] == w[i]) f = 1; if (!f) ok = 0 }
          if (ok) { print $1; exit } }')
    fi
    [ -n "$mnt" ] && printf '%s\t%s\n' "$mnt" "$path"
  done </proc/self/cgroup
}

up() {
  command -v systemd-nspawn >/dev/null || die "systemd-nspawn is missing: apt-get install systemd-container"
  [ ! -e "$dir/pid" ] || die "$dir already holds a node"
  mkdir -p "$dir/upper" "$dir/root" "$dir/var-lib-crio"
  : >"$dir/cgroups"
  # the overlay: host / below, a tmpfs above (the node's writes vanish with it)
  mount -t tmpfs -o mode=0755,size=4g tmpfs "$dir/upper"
  mkdir "$dir/upper/data" "$dir/upper/work"
  mount -t overlay overlay -o "lowerdir=/,upperdir=$dir/upper/data,workdir=$dir/upper/work" "$dir/root"
  local r=$dir/root
  # a clean node: no crio, CNI or image state of this machine's (whiteouts in the upper layer only)
  rm -rf "$r/etc/crio" "$r/etc/cni/net.d" "$r/var/lib/crio" "$r/var/lib/containers" "$r/var/log/pods" \
    "$r/var/lib/crio-install" "$r/usr/local/bin/crio" "$r/etc/systemd/system/crio.service" "$r/etc/default/crio"
  mkdir -p "$r/etc/systemd/system"
  for u in "${NODE_UNITS_MASKED[@]}"; do ln -sfn /dev/null "$r/etc/systemd/system/$u"; done
  echo "crio-node" >"$r/etc/hostname"
  rm -f "$r/etc/machine-id"
  : >"$r/etc/machine-id"

  # a cgroup of its own in every hierarchy, below this script's (never another process's)
  local name
  name="crio-node-$(basename "$dir")-$$"
  while IFS=$'\t' read -r mnt path; do
    local cg="$mnt${path%/}/$name"
    mkdir "$cg"
    echo "$cg" >>"$dir/cgroups"
    if [ -e "$cg/cpuset.cpus" ]; then
      cat "$(dirname "$cg")/cpuset.cpus" >"$cg/cpuset.cpus"
      cat "$(dirname "$cg")/cpuset.mems" >"$cg/cpuset.mems"
    fi
  done < <(cgroup_parents)

  # boot from those cgroups (the subshell moves itself in, then becomes nspawn)
  (
    while read -r cg; do echo "$BASHPID" >"$cg/cgroup.procs"; done <"$dir/cgroups"
    exec env SYSTEMD_SECCOMP=0 systemd-nspawn --quiet --boot --directory="$r" --machine="$name" \
      --private-network --capability=all --register=no --keep-unit \
      --bind="$dir/var-lib-crio:/var/lib/crio" \
      --resolv-conf=off --timezone=off --link-journal=no --console=read-only
  ) </dev/null >"$dir/nspawn.log" 2>&1 &
  echo $! >"$dir/nspawn.pid"

  # the node's PID 1: the child of nspawn that is pid 1 in its own pid namespace
  local pid="" i
  for i in $(seq 1 200); do
    for c in $(cat "/proc/$(cat "$dir/nspawn.pid")/task/"*/children 2>/dev/null); do
      if awk '/^NSpid:/ { exit !($NF == 1) }' "/proc/$c/status" 2>/dev/null; then pid=$c; fi
    done
    [ -n "$pid" ] && break
    kill -0 "$(cat "$dir/nspawn.pid")" 2>/dev/null || { cat "$dir/nspawn.log" >&2; die "systemd-nspawn exited"; }
    sleep 0.05
  done
  [ -n "$pid" ] || die "no PID 1 of the node after 10 s"
  echo "$pid" >"$dir/pid"

  # the node's systemd has started once PID 1 runs /usr/lib/systemd/systemd (nspawn's mounts are made)
  for i in $(seq 1 200); do
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = systemd ] && break
    sleep 0.05
  done
  # nspawn mounts the v1 controllers read-only: make them writable (runc and systemd inside
  # make the pods' and containers' cgroups there)
  local ns=(nsenter -t "$pid" -m -p -r -w)
  "${ns[@]}" sh -c 'for m in $(findmnt -rn -t cgroup -o TARGET); do mount -o remount,rw,bind "$m" || exit 1; done' ||
    die "cannot make the node's cgroup controllers writable"
  # wait for boot
  local state=""
  for i in $(seq 1 600); do
    state=$(in_node systemctl is-system-running 2>/dev/null || true)
    case "$state" in running | degraded) break ;; esac
    sleep 0.1
  done
  case "$state" in
    running) ;;
    degraded) echo "node.sh: node degraded; failed units: $(in_node systemctl --failed --no-legend --plain | awk '{print $1}' | tr '\n' ' ')" >&2 ;;
    *) die "node did not boot (is-system-running: ${state:-none}); see $dir/nspawn.log" ;;
  esac
  # nspawn mounts /proc/sys read-only too: the sysctls of the node's own namespaces (UTS, IPC,
  # mqueue) are made writable, so pods can get namespaces of their own with their sysctls;
  # machine-wide ones stay read-only. The IPC and mqueue sysctls are per-namespace files (looked
  # up in the writer's namespace), so a bind of one file would be the node's own namespace's
  # only: kernel/ and fs/ are made writable as directories, and every machine-wide entry of
  # theirs is bound read-only again on top.
  # (after boot: systemd reparses the mount table on every mount event)
  "${ns[@]}" sh -c '
    mount --make-rprivate /proc/sys || exit 1
    # DIR "ENTRY…": DIR writable, its entries but ENTRY… read-only again
    writable_but() {
      mount --rbind "$1" "$1" && mount -o remount,rw,bind "$1" || return 1
      for e in "$1"/*; do
        case " $2 " in *" ${e##*/} "*) continue ;; esac
        mount --rbind "$e" "$e" && mount -o remount,ro,bind "$e" || return 1
      done
    }
    writable_but /proc/sys/kernel "hostname domainname msgmax msgmnb msgmni sem shmall shmmax shmmni shm_rmid_forced auto_msgmni msg_next_id sem_next_id shm_next_id" &&
      writable_but /proc/sys/fs "mqueue"' ||
    die "cannot make the node's namespaced sysctls writable"

  # a loopback registry in the node's network namespace (127.0.0.1:5000 there), as a unit
  mkdir -p "$r/etc/crio-node-registry"
  cat >"$r/etc/crio-node-registry/config.yml" <<'YML'
version: 0.1
log: { level: error }
storage:
  filesystem: { rootdirectory: /var/lib/crio-node-registry }
  delete: { enabled: true }
http: { addr: "127.0.0.1:5000" }
YML
  in_node systemd-run --quiet --unit=crio-node-registry /usr/bin/docker-registry serve /etc/crio-node-registry/config.yml ||
    die "cannot start the node's registry"
  for i in $(seq 1 100); do
    in_node curl -fsS -o /dev/null http://127.0.0.1:5000/v2/ 2>/dev/null && break
    [ "$i" = 100 ] && die "the node's registry does not answer"
    sleep 0.1
  done
  echo "pid $pid"
}

in_node() {
  local pid
  pid=$(node_pid)
  [ -n "$pid" ] || die "no node in $dir"
  nsenter -t "$pid" -m -u -i -n -p -C -r -w -- "$@"
}

down() {
  local pid npid i bad=0
  pid=$(node_pid)
  npid=$(cat "$dir/nspawn.pid" 2>/dev/null || true)
  if [ -n "$npid" ] && kill -0 "$npid" 2>/dev/null; then
    # SIGRTMIN+4 to the node's systemd is poweroff; nspawn exits when it has
    [ -n "$pid" ] && kill -s RTMIN+4 "$pid" 2>/dev/null || true
    for i in $(seq 1 200); do kill -0 "$npid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$npid" 2>/dev/null; then
      echo "node.sh: the node did not power off in 20 s: killing it" >&2
      kill -KILL "$npid" 2>/dev/null || true
    fi
  fi
  # whatever is left in the node's cgroups (a killed node's processes) is killed; then the
  # cgroups go, children first
  if [ -s "$dir/cgroups" ]; then
    for i in $(seq 1 50); do
      local left=0
      while read -r cg; do
        [ -d "$cg" ] || continue
        while read -r p; do [ -n "$p" ] && { kill -KILL "$p" 2>/dev/null || true; left=1; }; done < <(find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null)
      done <"$dir/cgroups"
      [ "$left" = 0 ] && break
      sleep 0.1
    done
    while read -r cg; do
      [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
      if [ -d "$cg" ]; then echo "node.sh: could not remove cgroup $cg" >&2; bad=1; fi
    done <"$dir/cgroups"
  fi
  for m in "$dir/root" "$dir/upper"; do
    if mountpoint -q "$m" 2>/dev/null; then umount "$m" 2>/dev/null || umount -l "$m"; fi
  done
  # kept (with its list of cgroups) when a cgroup could not be removed: `down` again retries
  [ "$bad" = 0 ] || return 1
  rm -rf "$dir"
}

case "$cmd" in
  up) up ;;
  down) down ;;
  sh) shift 2; in_node "$@" ;;
  *) die "unknown command $cmd" ;;
esac
