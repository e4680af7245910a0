// Moved to sys/kill-tree.ts (issue #14: /proc behind sys/); re-exported for the conmon branch's
// split of main.ts until it is merged.
export * from "../sys/kill-tree.ts";
