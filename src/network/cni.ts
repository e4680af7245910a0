/**
 * Executing CNI plugins (CNI spec, sections 2 and 3): the derived per-plugin configuration on
 * stdin, the protocol parameters in CNI_* environment variables, the result or error JSON on stdout.
 * A list is run in order for ADD/CHECK/STATUS/GC and in reverse for DEL, as libcni does.
 */
import { RuntimeError, messageOf, type ErrorKind } from "../errors.ts";
import { runRaw } from "../sys/exec.ts";
import { dieWithParent } from "../sys/spawn.ts";
import { findPlugin, versionAtLeast, type NetworkList, type PluginConf } from "./conf.ts";

/** CNI operations this runtime issues. */
export type CniCommand = "ADD" | "DEL" | "CHECK" | "STATUS" | "GC";

/** Per-attachment parameters (absent for STATUS and GC). */
export interface Attachment {
  containerId: string;
  /** Path of the pinned network namespace; "" on DEL when it is already gone (allowed by the spec). */
  netns: string;
  ifName: string;
  /** CNI_ARGS, "K=V;K=V". */
  cniArgs: string;
  /** Capability arguments; each plugin receives the ones it declares in "capabilities". */
  runtimeConfig: Record<string, unknown>;
}

/** How to run plugins. */
export interface InvokeOptions {
  pluginDirs: readonly string[];
  signal?: AbortSignal;
  /** Per plugin execution; a hung plugin is killed (default 120 s). */
  timeoutMs?: number;
}

/** A plugin failed: names the plugin, the command, its exit code and the CNI error {code,msg,details}. */
export class CniPluginError extends RuntimeError {
  override name = "CniPluginError";
  constructor(
    kind: ErrorKind,
    message: string,
    readonly plugin: string,
    readonly command: CniCommand,
    readonly exitCode: number | null,
    readonly cniCode?: number,
    readonly cniMsg?: string,
    readonly details?: string,
  ) {
    super(kind, message);
  }
}

/** The request configuration for one plugin: name/cniVersion of the list, prevResult, runtimeConfig (libcni buildOneConfig). */
export function derivePluginConfig(
  list: NetworkList,
  plugin: PluginConf,
  extra: { prevResult?: unknown; runtimeConfig?: Record<string, unknown>; validAttachments?: Array<{ containerID: string; ifname: string }> },
): Record<string, unknown> {
  const conf: Record<string, unknown> = { ...plugin, name: list.name, cniVersion: list.cniVersion };
  if (extra.prevResult !== undefined && extra.prevResult !== null) conf.prevResult = extra.prevResult;
  if (extra.runtimeConfig) {
    const caps = (plugin.capabilities ?? {}) as Record<string, unknown>;
    const rc: Record<string, unknown> = {};
    for (const [cap, on] of Object.entries(caps)) if (on === true && extra.runtimeConfig[cap] !== undefined) rc[cap] = extra.runtimeConfig[cap];
    if (Object.keys(rc).length) conf.runtimeConfig = rc;
  }
  if (extra.validAttachments) conf["cni.dev/valid-attachments"] = extra.validAttachments;
  return conf;
}

/** Runs one plugin; returns its parsed stdout JSON (ADD) or undefined; throws CniPluginError. */
export async function invokePlugin(
  list: NetworkList,
  plugin: PluginConf,
  command: CniCommand,
  conf: Record<string, unknown>,
  att: Attachment | undefined,
  o: InvokeOptions,
): Promise<unknown> {
  const where = `cni plugin "${plugin.type}" (network "${list.name}", ${command})`;
  const path = findPlugin(plugin.type, o.pluginDirs);
  if (!path) throw new CniPluginError("failed-precondition", `${where}: not found in ${o.pluginDirs.join(", ")}`, plugin.type, command, null);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("CNI_")) env[k] = v;
  env.CNI_COMMAND = command;
  env.CNI_PATH = o.pluginDirs.join(":");
  if (att) {
    env.CNI_CONTAINERID = att.containerId;
    env.CNI_NETNS = att.netns;
    env.CNI_IFNAME = att.ifName;
    env.CNI_ARGS = att.cniArgs;
  }
  const canceled = () => new CniPluginError("canceled", `${where}: canceled: ${messageOf(o.signal?.reason)}`, plugin.type, command, null);
  if (o.signal?.aborted) throw canceled();
  // Plugins die with the daemon (dieWithParent: PR_SET_PDEATHSIG through util-linux setpriv): a plugin left running
  // after a kill -9 could finish its ADD after the restarted daemon cleaned the pod up, leaking the
  // veth, the address and the iptables rules. A plugin killed half-way is undone by the DEL at recovery.
  // A DEL is the exception: it runs to its end even if the daemon dies. Killed half-way it could not
  // be redone: the bridge plugin finds a pod's addresses only on its interface, so a DEL cut after
  // deleting the interface leaves the masquerade chain and rules forever (found by test/e2e/robust-crash).
  // A DEL that finishes after the restarted daemon's own DEL is harmless: DEL is idempotent.
  let r: Awaited<ReturnType<typeof runRaw>>;
  try {
    r = await runRaw(command === "DEL" ? [path] : dieWithParent([path]), {
      stdin: JSON.stringify(conf),
      env,
      signal: o.signal,
      timeoutMs: o.timeoutMs ?? 120_000,
    });
  } catch (e) {
    if (o.signal?.aborted) throw canceled();
    throw new CniPluginError("internal", `${where}: cannot run ${path}: ${messageOf(e)}`, plugin.type, command, null);
  }
  if (o.signal?.aborted && r.code !== 0) throw canceled();
  if (r.code === 0) {
    if (command !== "ADD") return undefined;
    try {
      return JSON.parse(r.stdout);
    } catch {
      throw new CniPluginError("internal", `${where}: unparsable result: ${r.stdout.trim().slice(0, 500) || "(empty)"}`, plugin.type, command, 0);
    }
  }
  throw pluginError(where, plugin.type, command, r);
}

/** ADD through the whole list; returns the final raw result, or throws with `partial` = the last good result. */
export async function addList(list: NetworkList, att: Attachment, o: InvokeOptions): Promise<unknown> {
  let prev: unknown;
  for (const p of list.plugins) {
    try {
      prev = await invokePlugin(list, p, "ADD", derivePluginConfig(list, p, { prevResult: prev, runtimeConfig: att.runtimeConfig }), att, o);
    } catch (e) {
      (e as { partial?: unknown }).partial = prev;
      throw e;
    }
  }
  return prev;
}

/** DEL through the list in reverse order, each plugin given the ADD result as prevResult (0.4.0+). */
export async function delList(list: NetworkList, att: Attachment, result: unknown, o: InvokeOptions): Promise<void> {
  const prevResult = versionAtLeast(list.cniVersion, "0.4.0") ? result : undefined;
  for (const p of [...list.plugins].reverse())
    await invokePlugin(list, p, "DEL", derivePluginConfig(list, p, { prevResult, runtimeConfig: att.runtimeConfig }), att, o);
}

/** CHECK through the list (0.4.0+, unless disableCheck); a no-op for older versions. */
export async function checkList(list: NetworkList, att: Attachment, result: unknown, o: InvokeOptions): Promise<void> {
  if (!versionAtLeast(list.cniVersion, "0.4.0") || list.disableCheck) return;
  for (const p of list.plugins)
    await invokePlugin(list, p, "CHECK", derivePluginConfig(list, p, { prevResult: result, runtimeConfig: att.runtimeConfig }), att, o);
}

/** STATUS of every plugin (1.1.0+); returns the first error, or undefined when all are ready. */
export async function statusList(list: NetworkList, o: InvokeOptions): Promise<CniPluginError | undefined> {
  if (!versionAtLeast(list.cniVersion, "1.1.0")) return undefined;
  for (const p of list.plugins) {
    try {
      await invokePlugin(list, p, "STATUS", derivePluginConfig(list, p, {}), undefined, o);
    } catch (e) {
      if (e instanceof CniPluginError) return e;
      throw e;
    }
  }
  return undefined;
}

/** GC through every plugin (1.1.0+, unless disableGC), continuing past errors; returns the errors. */
export async function gcList(list: NetworkList, valid: Array<{ containerID: string; ifname: string }>, o: InvokeOptions): Promise<Error[]> {
  if (!versionAtLeast(list.cniVersion, "1.1.0") || list.disableGC) return [];
  const errors: Error[] = [];
  for (const p of list.plugins) {
    try {
      await invokePlugin(list, p, "GC", derivePluginConfig(list, p, { validAttachments: valid }), undefined, o);
    } catch (e) {
      errors.push(e as Error);
    }
  }
  return errors;
}

// --- internal ---

function pluginError(where: string, type: string, command: CniCommand, r: { code: number | null; stdout: string; stderr: string }): CniPluginError {
  let cni: { code?: unknown; msg?: unknown; details?: unknown } | undefined;
  try {
    const j = JSON.parse(r.stdout);
    if (j && typeof j === "object") cni = j;
  } catch {
    // not a CNI error object
  }
  const code = typeof cni?.code === "number" ? cni.code : undefined;
  const msg = typeof cni?.msg === "string" ? cni.msg : undefined;
  const details = typeof cni?.details === "string" && cni.details ? cni.details : undefined;
  const exit = r.code === null ? "killed" : `exit ${r.code}`;
  let text: string;
  if (msg !== undefined || code !== undefined) text = `${msg ?? "error"}${details ? `: ${details}` : ""} (cni error code ${code ?? "?"})`;
  else text = r.stderr.trim().slice(-2000) || r.stdout.trim().slice(-2000) || "no output";
  // Code 11 is the spec's "try again later"; 50/51 are STATUS' "plugin not available".
  const kind: ErrorKind = code === 11 || code === 50 || code === 51 ? "unavailable" : "unknown";
  return new CniPluginError(kind, `${where} failed (${exit}): ${text}`, type, command, r.code, code, msg, details);
}
