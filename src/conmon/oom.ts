// Moved to sys/oom.ts (issue #14: /proc and cgroup files behind sys/); re-exported for the conmon
// branch's split of main.ts until it is merged.
export * from "../sys/oom.ts";
