import type { ProfileSyscall, SeccompProfile } from "./seccomp-profile.ts";

/**
 * Our RuntimeDefault seccomp profile: an allow-list. Unknown syscalls fail with ENOSYS (so libc
 * falls back from newer calls), legacy and dangerous ones with EPERM. Syscalls that act on the
 * whole host are allowed only with the capability that makes them meaningful, and otherwise fail
 * with EPERM. Namespace creation is hardened as CRI-O does: without CAP_SYS_ADMIN, clone is allowed
 * only without CLONE_NEW* flags, clone3 returns ENOSYS (libc then uses clone) and unshare fails.
 */
export function defaultSeccompProfile(): SeccompProfile {
  cached ??= buildDefaultProfile();
  return cached;
}

/** The same profile as a value (built on first import of this module's data, below). */
// biome-ignore lint/style/useConst: assigned at the end of the module, once the tables it is built from exist
export let DEFAULT_SECCOMP_PROFILE: SeccompProfile;

// --- internal ---

let cached: SeccompProfile | undefined;

const EPERM = 1;
const EINVAL = 22;
const ENOSYS = 38;

const AF_NETLINK = 16;
const AF_VSOCK = 40;
const NETLINK_AUDIT = 9;

/** CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET */
const CLONE_NEW_FLAGS = [0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000];
const CLONE_NAMESPACE_FLAGS = CLONE_NEW_FLAGS.reduce((a, b) => a | b, 0);

/** Obsolete or host-affecting calls that answer EPERM rather than ENOSYS. */
// biome-ignore format: a packed table of names, one per line would be hundreds of lines
const DENIED = [
  "bdflush", "io_pgetevents", "io_pgetevents_time64", "kexec_file_load", "kexec_load", "migrate_pages",
  "move_pages", "nfsservctl", "nice", "oldfstat", "oldlstat", "oldolduname", "oldstat", "olduname",
  "pciconfig_iobase", "pciconfig_read", "pciconfig_write", "sgetmask", "ssetmask", "swapoff", "swapon",
  "syscall", "sysfs", "uselib", "userfaultfd", "ustat", "vm86", "vm86old",
];

/** Calls every container may make; the kernel still checks credentials where they matter. */
// biome-ignore format: a packed table of names, one per line would be hundreds of lines
const ALLOWED = [
  // files and directories
  "access", "chdir", "chmod", "chown", "chown32", "close", "close_range", "copy_file_range", "creat",
  "dup", "dup2", "dup3", "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate", "fchdir",
  "fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat", "fcntl", "fcntl64", "fdatasync",
  "flock", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate", "ftruncate64",
  "futimesat", "getcwd", "getdents", "getdents64", "lchown", "lchown32", "link", "linkat", "_llseek",
  "lseek", "lstat", "lstat64", "mkdir", "mkdirat", "mknod", "mknodat", "newfstatat", "open", "openat",
  "openat2", "pread64", "preadv", "preadv2", "pwrite64", "pwritev", "pwritev2", "read", "readahead",
  "readlink", "readlinkat", "readv", "rename", "renameat", "renameat2", "rmdir", "sendfile", "sendfile64",
  "splice", "stat", "stat64", "statfs", "statfs64", "statx", "symlink", "symlinkat", "sync",
  "sync_file_range", "syncfs", "tee", "truncate", "truncate64", "umask", "unlink", "unlinkat", "utime",
  "utimensat", "utimensat_time64", "utimes", "vmsplice", "write", "writev",
  // extended attributes
  "fgetxattr", "flistxattr", "fremovexattr", "fsetxattr", "getxattr", "lgetxattr", "listxattr",
  "llistxattr", "lremovexattr", "lsetxattr", "removexattr", "setxattr",
  // polling, events, asynchronous I/O
  "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait", "epoll_pwait2",
  "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "fanotify_mark", "inotify_add_watch",
  "inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel", "io_destroy", "io_getevents",
  "io_setup", "io_submit", "ioctl", "_newselect", "pause", "poll", "ppoll", "ppoll_time64", "pselect6",
  "pselect6_time64", "select", "signalfd", "signalfd4", "timerfd_create", "timerfd_gettime",
  "timerfd_gettime64", "timerfd_settime", "timerfd_settime64",
  // memory
  "brk", "get_mempolicy", "madvise", "mbind", "membarrier", "memfd_create", "memfd_secret", "mincore",
  "mlock", "mlock2", "mlockall", "mmap", "mmap2", "mprotect", "mremap", "msync", "munlock", "munlockall",
  "munmap", "pkey_alloc", "pkey_free", "pkey_mprotect", "remap_file_pages", "set_mempolicy",
  // processes, threads, signals
  "capget", "capset", "execve", "execveat", "exit", "exit_group", "fork", "futex", "futex_time64",
  "get_robust_list", "get_thread_area", "getcpu", "getpgid", "getpgrp", "getpid", "getppid",
  "getpriority", "getrlimit", "getrusage", "getsid", "gettid", "ioprio_get", "ioprio_set", "kill",
  "pidfd_open", "pidfd_send_signal", "prctl", "prlimit64", "process_mrelease", "ptrace",
  "process_vm_readv", "process_vm_writev", "pidfd_getfd", "restart_syscall", "rseq", "rt_sigaction",
  "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend",
  "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sched_get_priority_max",
  "sched_get_priority_min", "sched_getaffinity", "sched_getattr", "sched_getparam", "sched_getscheduler",
  "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr",
  "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "set_robust_list",
  "set_thread_area", "set_tid_address", "setpgid", "setpriority", "setrlimit", "setsid", "sigaltstack",
  "signal", "sigprocmask", "sigreturn", "tgkill", "tkill", "ugetrlimit", "vfork", "wait4", "waitid",
  "waitpid", "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "keyctl",
  // credentials
  "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32",
  "getresgid", "getresgid32", "getresuid", "getresuid32", "getuid", "getuid32", "setfsgid", "setfsgid32",
  "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32", "setregid", "setregid32",
  "setresgid", "setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32", "setuid", "setuid32",
  // time
  "adjtimex", "alarm", "clock_adjtime", "clock_adjtime64", "clock_getres", "clock_getres_time64",
  "clock_gettime", "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64", "getitimer",
  "gettimeofday", "nanosleep", "setitimer", "time", "timer_create", "timer_delete", "timer_getoverrun",
  "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64", "times",
  // IPC
  "ipc", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64",
  "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "msgctl", "msgget", "msgrcv", "msgsnd", "pipe",
  "pipe2", "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "shmat", "shmctl", "shmdt",
  "shmget",
  // sockets (socket itself is filtered below)
  "accept", "accept4", "bind", "connect", "getpeername", "getsockname", "getsockopt", "listen", "recv",
  "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "send", "sendmmsg", "sendmsg", "sendto",
  "setsockopt", "shutdown", "socketcall", "socketpair",
  // system information
  "getrandom", "sysinfo", "uname",
];

/** Calls allowed only with a capability (any one of the listed), otherwise EPERM. */
// biome-ignore format: a packed table of names, one per line would be hundreds of lines
const BY_CAPABILITY: Array<[caps: string[], names: string[]]> = [
  [["CAP_SYS_ADMIN"], [
    "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick", "lookup_dcookie", "mount", "mount_setattr",
    "move_mount", "open_tree", "pivot_root", "quotactl", "quotactl_fd", "setdomainname", "sethostname",
    "setns", "umount", "umount2", "add_key", "request_key",
  ]],
  [["CAP_SYS_ADMIN", "CAP_SYSLOG"], ["syslog"]],
  [["CAP_SYS_ADMIN", "CAP_BPF"], ["bpf"]],
  [["CAP_SYS_ADMIN", "CAP_PERFMON"], ["perf_event_open"]],
  [["CAP_DAC_READ_SEARCH"], ["open_by_handle_at", "name_to_handle_at"]],
  [["CAP_SYS_BOOT"], ["reboot"]],
  [["CAP_SYS_CHROOT"], ["chroot"]],
  [["CAP_SYS_MODULE"], ["delete_module", "init_module", "finit_module"]],
  [["CAP_SYS_PACCT"], ["acct"]],
  [["CAP_SYS_PTRACE"], ["kcmp", "process_madvise"]],
  [["CAP_SYS_RAWIO"], ["iopl", "ioperm"]],
  [["CAP_SYS_TIME"], ["settimeofday", "stime", "clock_settime", "clock_settime64"]],
  [["CAP_SYS_TTY_CONFIG"], ["vhangup"]],
];

/** Architecture-specific calls. */
const BY_ARCH: Array<[arches: string[], names: string[]]> = [
  [["amd64", "x32"], ["arch_prctl"]],
  [["amd64", "x32", "x86"], ["modify_ldt"]],
  [
    ["arm", "arm64"],
    ["arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush", "set_tls"],
  ],
  [["ppc64le"], ["sync_file_range2", "swapcontext"]],
  [
    ["s390", "s390x"],
    ["s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"],
  ],
  [["riscv64"], ["riscv_flush_icache"]],
];

function buildDefaultProfile(): SeccompProfile {
  const rules: ProfileSyscall[] = [
    { names: DENIED, action: "SCMP_ACT_ERRNO", errnoRet: EPERM },
    { names: ALLOWED, action: "SCMP_ACT_ALLOW" },
    // personality: only the harmless execution domains (Linux, 32-bit address space, query).
    ...[0x0, 0x8, 0x20000, 0x20008, 0xffffffff].map(
      (value): ProfileSyscall => ({
        names: ["personality"],
        action: "SCMP_ACT_ALLOW",
        args: [{ index: 0, value, op: "SCMP_CMP_EQ" }],
      }),
    ),
  ];
  for (const [arches, names] of BY_ARCH) rules.push({ names, action: "SCMP_ACT_ALLOW", includes: { arches } });
  for (const [caps, names] of BY_CAPABILITY) {
    for (const cap of caps) rules.push({ names, action: "SCMP_ACT_ALLOW", includes: { caps: [cap] } });
    rules.push({ names, action: "SCMP_ACT_ERRNO", errnoRet: EPERM, excludes: { caps } });
  }
  rules.push(...namespaceRules(), ...socketRules());
  return {
    defaultAction: "SCMP_ACT_ERRNO",
    defaultErrnoRet: ENOSYS,
    archMap: [
      { architecture: "SCMP_ARCH_X86_64", subArchitectures: ["SCMP_ARCH_X86", "SCMP_ARCH_X32"] },
      { architecture: "SCMP_ARCH_AARCH64", subArchitectures: ["SCMP_ARCH_ARM"] },
      { architecture: "SCMP_ARCH_PPC64LE", subArchitectures: [] },
      { architecture: "SCMP_ARCH_S390X", subArchitectures: ["SCMP_ARCH_S390"] },
      { architecture: "SCMP_ARCH_RISCV64", subArchitectures: [] },
    ],
    syscalls: rules,
  };
}

/** clone/clone3/unshare: free with CAP_SYS_ADMIN; without it no new namespaces. */
function namespaceRules(): ProfileSyscall[] {
  const admin = { caps: ["CAP_SYS_ADMIN"] };
  return [
    { names: ["clone", "clone3", "unshare"], action: "SCMP_ACT_ALLOW", includes: admin },
    // clone's flags are argument 0, except on s390 where the first two arguments are swapped.
    ...[0, 1].flatMap((index): ProfileSyscall[] => {
      const arches = { arches: ["s390", "s390x"] };
      const where = index === 0 ? { excludes: { caps: ["CAP_SYS_ADMIN"], ...arches } } : { excludes: admin, includes: arches };
      return [
        { names: ["clone"], action: "SCMP_ACT_ALLOW", ...where, args: [{ index, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: "SCMP_CMP_MASKED_EQ" }] },
        ...CLONE_NEW_FLAGS.map(
          (flag): ProfileSyscall => ({
            names: ["clone"],
            action: "SCMP_ACT_ERRNO",
            errnoRet: EPERM,
            ...where,
            args: [{ index, value: flag, valueTwo: flag, op: "SCMP_CMP_MASKED_EQ" }],
          }),
        ),
      ];
    }),
    // clone3 passes flags in memory seccomp cannot read: ENOSYS makes libc fall back to clone.
    { names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: ENOSYS, excludes: admin },
    { names: ["unshare"], action: "SCMP_ACT_ERRNO", errnoRet: EPERM, excludes: admin },
  ];
}

/** socket: no vsock; audit netlink sockets only with CAP_AUDIT_WRITE. */
function socketRules(): ProfileSyscall[] {
  const audit = { caps: ["CAP_AUDIT_WRITE"] };
  return [
    { names: ["socket"], action: "SCMP_ACT_ERRNO", errnoRet: EPERM, args: [{ index: 0, value: AF_VSOCK, op: "SCMP_CMP_EQ" }] },
    {
      names: ["socket"],
      action: "SCMP_ACT_ERRNO",
      errnoRet: EINVAL,
      excludes: audit,
      args: [
        { index: 0, value: AF_NETLINK, op: "SCMP_CMP_EQ" },
        { index: 2, value: NETLINK_AUDIT, op: "SCMP_CMP_EQ" },
      ],
    },
    {
      names: ["socket"],
      action: "SCMP_ACT_ALLOW",
      excludes: audit,
      args: [
        { index: 0, value: AF_NETLINK, op: "SCMP_CMP_EQ" },
        { index: 2, value: NETLINK_AUDIT, op: "SCMP_CMP_NE" },
      ],
    },
    { names: ["socket"], action: "SCMP_ACT_ALLOW", excludes: audit, args: [{ index: 0, value: AF_NETLINK, op: "SCMP_CMP_NE" }] },
    { names: ["socket"], action: "SCMP_ACT_ALLOW", includes: audit, args: [{ index: 0, value: AF_VSOCK, op: "SCMP_CMP_NE" }] },
  ];
}

DEFAULT_SECCOMP_PROFILE = defaultSeccompProfile();
