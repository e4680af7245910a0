import type { MessageInitShape } from "@bufbuild/protobuf";
import { mkdirSync, writeFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import type { ContainerConfigSchema, PodSandboxConfigSchema } from "../../src/gen/runtime/v1/api_pb.ts";
import { NamespaceMode } from "../../src/gen/runtime/v1/api_pb.ts";
import { removeDaemonDirs, startDaemon, type DaemonOptions, type TestDaemon } from "../harness.ts";
import { pushImage, busyboxImage, pauseImage, imageRef } from "./images.ts";
import { startRegistry, type Registry } from "./registry.ts";

export type PodConfig = MessageInitShape<typeof PodSandboxConfigSchema>;
export type CtrConfig = MessageInitShape<typeof ContainerConfigSchema>;

/** A pod config with a unique uid; host network unless `cni` is set, pid namespace per container unless `sharedPid`. */
export function podConfig(
  name: string,
  dir: string,
  o: { hostNetwork?: boolean; sharedPid?: boolean; labels?: Record<string, string>; extra?: Partial<PodConfig> } = {},
): PodConfig {
  const uid = randomBytes(8).toString("hex");
  const logDirectory = join(dir, "pods", `${name}_${uid}`);
  return {
    metadata: { name, namespace: "default", uid, attempt: 0 },
    hostname: name,
    logDirectory,
    labels: o.labels ?? {},
    linux: {
      securityContext: {
        namespaceOptions: {
          network: (o.hostNetwork ?? true) ? NamespaceMode.NODE : NamespaceMode.POD,
          pid: o.sharedPid ? NamespaceMode.POD : NamespaceMode.CONTAINER,
          ipc: NamespaceMode.POD,
        },
      },
    },
    ...o.extra,
  } as PodConfig;
}

/**
 * A container config running `command` from `image`, logging to <name>.log. Like the kubelet, it
 * copies the pod's namespace options into the container's security context.
 */
export function ctrConfig(name: string, image: string, command: string[], extra: Partial<CtrConfig> = {}, pod?: PodConfig): CtrConfig {
  const ns = pod?.linux?.securityContext?.namespaceOptions;
  const linux = ns ? { ...extra.linux, securityContext: { namespaceOptions: ns, ...extra.linux?.securityContext } } : extra.linux;
  return { metadata: { name, attempt: 0 }, image: { image }, command, logPath: `${name}.log`, ...extra, ...(linux ? { linux } : {}) } as CtrConfig;
}

/** A daemon plus a loopback registry holding busybox and a pause look-alike, mirrored as insecure. */
export interface Env {
  d: TestDaemon;
  reg: Registry;
  busybox: string;
  pause: string;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Starts a registry with the test images and a daemon configured to pull from it. */
export async function startEnv(o: DaemonOptions & { cniConf?: string } = {}): Promise<Env> {
  const reg = await startRegistry();
  await pushImage(reg, await busyboxImage());
  await pushImage(reg, await pauseImage());
  const busybox = imageRef(reg, "busybox");
  const pause = imageRef(reg, "pause");
  const dir = o.dir ?? mkdtemp();
  writeFileSync(join(dir, "registries.conf"), `[[registry]]\nlocation = "${reg.host}"\ninsecure = true\n`);
  if (o.cniConf) {
    mkdirSync(join(dir, "cni", "net.d"), { recursive: true });
    writeFileSync(join(dir, "cni", "net.d", "10-test.conflist"), o.cniConf);
  }
  const config = `[crio.image]\npause_image = "${pause}"\npause_command = "/pause"\n${o.config ?? ""}`;
  const d = await startDaemon({ ...o, dir, config });
  return {
    d,
    reg,
    busybox,
    pause,
    async [Symbol.asyncDispose]() {
      await cleanupPods(d);
      await d[Symbol.asyncDispose]();
      await reg.stop();
      if (!o.dir && !process.env.CRIO_TEST_KEEP) removeDaemonDirs(dir, d.runroot);
    },
  };
}

/** Stops and removes every pod (so a failed test leaves no containers running). */
export async function cleanupPods(d: TestDaemon): Promise<void> {
  try {
    const { items } = await d.cri.listPodSandbox({}, { timeoutMs: 10_000 });
    for (const p of items) await d.cri.removePodSandbox({ podSandboxId: p.id }, { timeoutMs: 60_000 }).catch(() => {});
  } catch {}
}

/** Reads a CRI log file's lines. */
export function logLines(path: string): Array<{ time: string; stream: string; tag: string; text: string }> {
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => {
      const m = /^(\S+) (stdout|stderr) ([PF]) (.*)$/s.exec(l);
      if (!m) throw new Error(`not a CRI log line: ${JSON.stringify(l)}`);
      return { time: m[1]!, stream: m[2]!, tag: m[3]!, text: m[4]! };
    });
}

function mkdtemp(): string {
  const { mkdtempSync } = require("node:fs") as typeof import("node:fs");
  const { tmpdir } = require("node:os") as typeof import("node:os");
  return mkdtempSync(join(process.env.CRIO_TEST_TMP ?? tmpdir(), "crio-env-"));
}
