// A fuzzer of the CRI surface (issue #17), shared by test/e2e/robust-fuzz.test.ts (a short run in
// CI) and bench/fuzz.ts (≥ 10,000 requests): requests generated from the protobuf descriptors of
// all 41 RPCs — random, mutated valid ones against a live pod and container, oversized fields,
// unknown enum values, concurrent duplicates of one name — with the invariant: every call gets a
// status within its deadline, the daemon stays up, its RSS after ≤ 1.1× before, its fds flat.
// Fields that name host paths, cgroup parents and host ports are drawn from safe sets: a fuzzer
// must not write to the machine's /etc or take a port critest uses.
import { create, ScalarType, type DescField, type DescMessage, type DescMethod } from "@bufbuild/protobuf";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { waitFor } from "../harness.ts";
import { join } from "node:path";
import { ImageService, RuntimeService } from "../../src/gen/runtime/v1/api_pb.ts";
import type { CriClient } from "./cri-client.ts";
import { ctrConfig, podConfig, type Env } from "./pods.ts";

export interface FuzzOptions {
  requests: number;
  /** Requests before the "before" RSS and fds are read (default requests/4, ≥ 300). */
  warmup?: number;
  concurrency?: number;
  /** Deadline of each call. */
  deadlineMs?: number;
  log?: (line: string) => void;
}

export interface FuzzResult {
  /** Every request sent, warm-up included. */
  requests: number;
  /** Requests sent between the two measures. */
  measured: number;
  /** gRPC status code name → count. */
  codes: Record<string, number>;
  /** RPCs exercised (of 41). */
  rpcs: number;
  /** Calls that got no status within deadline + 2 s (each a violation). */
  late: string[];
  rss: { before: number; after: number };
  /** The daemon's own figures after a forced full GC (its SIGUSR1 debug dump): anonymous memory (smaps_rollup) and JS heap, kB. */
  anon: { before: number; after: number };
  heap: { before: number; after: number };
  fds: { before: number; after: number };
  daemonAlive: boolean;
  seconds: number;
}

const METHODS: DescMethod[] = [...RuntimeService.methods, ...ImageService.methods];

/** Runs the fuzzer against `env`'s daemon. */
export async function fuzzCri(env: Env, o: FuzzOptions): Promise<FuzzResult> {
  const d = env.d;
  const cri = d.cri;
  const deadlineMs = o.deadlineMs ?? 10_000;
  const g = new Gen(env);
  await cri.pullImage({ image: { image: env.busybox } });
  const live = await g.live(cri);
  const res: FuzzResult = {
    requests: 0,
    measured: 0,
    codes: {},
    rpcs: 0,
    late: [],
    rss: { before: 0, after: 0 },
    anon: { before: 0, after: 0 },
    heap: { before: 0, after: 0 },
    fds: { before: 0, after: 0 },
    daemonAlive: true,
    seconds: 0,
  };
  const seen = new Set<string>();
  const one = async (m: DescMethod, req: unknown) => {
    seen.add(m.name);
    const t0 = performance.now();
    // a stream of events ends only at its deadline; a pull may reach for a registry that is not there
    const deadline = m.name === "GetContainerEvents" ? 500 : m.name === "PullImage" ? 3000 : deadlineMs;
    let code = "OK";
    const call = (cri as unknown as Record<string, (r: unknown, o: object) => unknown>)[m.localName]!;
    const work = (async () => {
      try {
        if (m.methodKind === "server_streaming") for await (const _ of call(req, { timeoutMs: deadline }) as AsyncIterable<unknown>);
        else await call(req, { timeoutMs: deadline });
      } catch (e) {
        code = codeName((e as { code?: number }).code);
      }
    })();
    const late = await Promise.race([work.then(() => false), Bun.sleep(deadline + 2000).then(() => true)]);
    if (late)
      res.late.push(
        `${m.name} ${JSON.stringify(req, (_k, v) => (typeof v === "bigint" ? String(v) : typeof v === "string" && v.length > 80 ? `${v.slice(0, 80)}…` : v)).slice(0, 300)}`,
      );
    res.codes[code] = (res.codes[code] ?? 0) + 1;
    res.requests++;
    return performance.now() - t0;
  };
  let next = 0;
  let end = 0;
  const worker = async () => {
    while (next < end) {
      const i = next++;
      if (i % 250 === 0) {
        live.ok = await g.stillLive(cri, live);
        if (i % 1000 === 0) o.log?.(`${i} requests, codes ${JSON.stringify(res.codes)}`);
      }
      if (i % 97 === 0) {
        // concurrent duplicates of one name
        const cfg = podConfig(`dup-${i}`, d.dir);
        await Promise.all([0, 1, 2, 3].map(() => one(RuntimeService.method.runPodSandbox, { config: cfg })));
        continue;
      }
      const m = METHODS[Math.floor(Math.random() * METHODS.length)]!;
      const r = Math.random();
      const req = r < 0.35 ? g.random(m.input, 0) : r < 0.85 ? g.mutate(m, live) : g.valid(m, live);
      await one(m, req);
    }
  };
  const run = async (n: number) => {
    end = next + n;
    await Promise.all(Array.from({ length: o.concurrency ?? 8 }, worker));
  };
  // Pods and containers the fuzz makes live until the clean-up: a round's peak holds them all, and
  // the allocator keeps the pages it grew to. So what is compared is two alike rounds, each
  // followed by the clean-up and an idle moment: the first (after a warm-up of its own) grows the
  // heap, JIT code and allocator pools to their working size; a leak grows the second too.
  const cleanUp = async () => {
    const { items } = await cri.listPodSandbox({});
    for (const p of items) await cri.removePodSandbox({ podSandboxId: p.id }, { timeoutMs: 60_000 }).catch(() => {});
    await Bun.sleep(3000);
  };
  for (const m of METHODS) await one(m, g.valid(m, live));
  await run(o.warmup ?? Math.max(300, Math.floor(o.requests / 4)));
  await run(o.requests);
  await cleanUp();
  res.rss.before = rssKb(d.proc.pid);
  ({ anon: res.anon.before, heap: res.heap.before } = await afterGc(d));
  res.fds.before = await settledFds(d.proc.pid);
  const counted = res.requests;
  const t0 = performance.now();
  await run(o.requests);
  res.seconds = (performance.now() - t0) / 1000;
  res.measured = res.requests - counted;
  res.rpcs = seen.size;
  res.daemonAlive = d.proc.exitCode === null && d.proc.signalCode === null;
  await cleanUp();
  res.rss.after = rssKb(d.proc.pid);
  ({ anon: res.anon.after, heap: res.heap.after } = await afterGc(d));
  res.fds.after = await settledFds(d.proc.pid);
  return res;
}

// --- generation ---

interface Live {
  pod: string;
  ctr: string;
  podCfg: ReturnType<typeof podConfig>;
  ok: boolean;
}

class Gen {
  constructor(readonly env: Env) {}

  /** A live pod (host network) with a running container. */
  async live(cri: CriClient): Promise<Live> {
    const podCfg = podConfig("fuzz-live", this.env.d.dir);
    const { podSandboxId } = await cri.runPodSandbox({ config: podCfg });
    const { containerId } = await cri.createContainer({
      podSandboxId,
      config: ctrConfig("live", this.env.busybox, ["sleep", "3600"], {}, podCfg),
      sandboxConfig: podCfg,
    });
    await cri.startContainer({ containerId });
    return { pod: podSandboxId, ctr: containerId, podCfg, ok: true };
  }

  /** Recreates the live pod and container when the fuzz removed them. */
  async stillLive(cri: CriClient, l: Live): Promise<boolean> {
    try {
      const st = (await cri.containerStatus({ containerId: l.ctr })).status;
      if (st?.state === 1) return true;
    } catch {}
    try {
      await cri.pullImage({ image: { image: this.env.busybox } });
      Object.assign(l, await this.live(cri));
      return true;
    } catch {
      return false;
    }
  }

  /** A valid request for `m` against the live objects. */
  valid(m: DescMethod, l: Live): Record<string, unknown> {
    const b = this.env.busybox;
    const v: Record<string, Record<string, unknown>> = {
      runPodSandbox: { config: podConfig(`fz-${rnd(1e9)}`, this.env.d.dir) },
      stopPodSandbox: { podSandboxId: l.pod },
      removePodSandbox: { podSandboxId: `${l.pod.slice(0, 2)}${hex(62)}` },
      podSandboxStatus: { podSandboxId: l.pod, verbose: true },
      listPodSandbox: { filter: { id: l.pod } },
      createContainer: {
        podSandboxId: l.pod,
        config: ctrConfig(`fc-${rnd(1e9)}`, b, ["sh", "-c", "echo fuzz; sleep 2"], {}, l.podCfg),
        sandboxConfig: l.podCfg,
      },
      startContainer: { containerId: l.ctr },
      stopContainer: { containerId: `${hex(64)}`, timeout: 0n },
      removeContainer: { containerId: hex(64) },
      listContainers: { filter: { podSandboxId: l.pod } },
      containerStatus: { containerId: l.ctr, verbose: true },
      updateContainerResources: { containerId: l.ctr, linux: { cpuShares: 512n } },
      reopenContainerLog: { containerId: l.ctr },
      execSync: { containerId: l.ctr, cmd: ["echo", "x"], timeout: 5n },
      exec: { containerId: l.ctr, cmd: ["sh"], stdin: true, stdout: true },
      attach: { containerId: l.ctr, stdout: true },
      portForward: { podSandboxId: l.pod, port: [80] },
      containerStats: { containerId: l.ctr },
      listContainerStats: {},
      podSandboxStats: { podSandboxId: l.pod },
      listPodSandboxStats: {},
      updateRuntimeConfig: { runtimeConfig: { networkConfig: { podCidr: "10.99.0.0/16" } } },
      status: { verbose: true },
      checkpointContainer: { containerId: l.ctr, location: join(this.env.d.dir, "ckpt.tar") },
      getContainerEvents: {},
      listMetricDescriptors: {},
      listPodSandboxMetrics: {},
      runtimeConfig: {},
      updatePodSandboxResources: { podSandboxId: l.pod },
      listImages: {},
      imageStatus: { image: { image: b }, verbose: true },
      pullImage: { image: { image: b } },
      removeImage: { image: { image: `${this.env.reg.host}/nothing:here` } },
      imageFsInfo: {},
    };
    return v[m.localName] ?? {};
  }

  /** A valid request with one to three fields replaced by random values. */
  mutate(m: DescMethod, l: Live): Record<string, unknown> {
    const base = this.valid(m, l);
    const msg = create(m.input, base as never) as unknown as Record<string, unknown>;
    for (let n = 1 + rnd(3); n > 0; n--) mutateIn(msg, m.input, this, 0);
    // GetContainerEvents never ends by itself: it is fuzzed through its deadline only
    return msg;
  }

  /** A random message of `desc`. */
  random(desc: DescMessage, depth: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const f of desc.fields) {
      if (f.oneof || Math.random() < 0.4) continue;
      out[f.localName] = this.field(f, depth);
    }
    return out;
  }

  field(f: DescField, depth: number): unknown {
    const name = f.localName;
    switch (f.fieldKind) {
      case "scalar":
        return this.scalar(f.scalar, name);
      case "enum":
        return Math.random() < 0.5 ? f.enum.values[rnd(f.enum.values.length)]!.number : pick([99, -1, 2 ** 31 - 1, 7]);
      case "message":
        return depth > 6 ? {} : this.random(f.message, depth + 1);
      case "list": {
        const n = pick([0, 1, 2, 5, Math.random() < 0.05 ? 300 : 3]);
        return Array.from({ length: n }, () =>
          f.listKind === "scalar" ? this.scalar(f.scalar, name) : f.listKind === "enum" ? pick([0, 1, 99]) : depth > 6 ? {} : this.random(f.message, depth + 1),
        );
      }
      case "map": {
        const o: Record<string, unknown> = {};
        for (let i = pick([0, 1, 3, Math.random() < 0.05 ? 200 : 2]); i > 0; i--) {
          const k = String(this.scalar(ScalarType.STRING, "key"));
          o[k] = f.mapKind === "scalar" ? this.scalar(f.scalar, name) : f.mapKind === "enum" ? 0 : depth > 6 ? {} : this.random(f.message, depth + 1);
        }
        return o;
      }
    }
  }

  scalar(t: ScalarType, name: string): unknown {
    switch (t) {
      case ScalarType.STRING:
        return this.string(name);
      case ScalarType.BOOL:
        return Math.random() < 0.5;
      case ScalarType.BYTES:
        return crypto.getRandomValues(new Uint8Array(pick([0, 3, 64, 4096])));
      case ScalarType.INT64:
      case ScalarType.SINT64:
      case ScalarType.SFIXED64:
        return /port/i.test(name) ? BigInt(this.port()) : pick([0n, -1n, 1n, 9223372036854775807n, -9223372036854775808n, BigInt(rnd(1e9))]);
      case ScalarType.UINT64:
      case ScalarType.FIXED64:
        return pick([0n, 1n, 18446744073709551615n, BigInt(rnd(1e9))]);
      case ScalarType.INT32:
      case ScalarType.SINT32:
      case ScalarType.SFIXED32:
        return /port/i.test(name) ? this.port() : pick([0, -1, 1, 2147483647, -2147483648, rnd(70000)]);
      case ScalarType.UINT32:
      case ScalarType.FIXED32:
        return pick([0, 1, 4294967295, rnd(70000)]);
      default:
        return pick([0, -1.5, 1e308, Number.NaN]);
    }
  }

  /** Host ports the fuzz may take: never critest's 12000–12003, never a privileged one in use. */
  port(): number {
    return pick([0, -1, 70000, 41000 + rnd(100)]);
  }

  string(name: string): string {
    const l = /id$/i.test(name) ? [hex(64), hex(12), "", "../../etc"] : [];
    if (/path|directory|dir$|parent|location|socket/i.test(name)) {
      // never a real host path outside the test dir
      return pick([
        "",
        "relative/path",
        "../../../etc/passwd",
        "/\u0000/x",
        join(this.env.d.dir, "fz", hex(8)),
        join(this.env.d.dir, "fz", "..", "..", "fz-escape"),
      ]);
    }
    if (/image/i.test(name)) return pick([this.env.busybox, "::bad::", "a".repeat(300), `${this.env.reg.host}/no/such:tag`, "sha256:" + hex(64), ""]);
    return pick([
      ...l,
      "",
      "x",
      "fuzz-" + hex(6),
      "a".repeat(pick([256, 4096, 70_000])),
      "\u0000\u0001\u00ff\ud83d\ude00",
      "$(reboot)",
      "-rf",
      "../..",
      " spaced name ",
      "UPPER_case.dots-",
      "k8s_a_b_c_d_0",
    ]);
  }
}

function mutateIn(msg: Record<string, unknown>, desc: DescMessage, g: Gen, depth: number): void {
  const fields = desc.fields.filter((f) => !f.oneof);
  if (fields.length === 0) return;
  const f = fields[rnd(fields.length)]!;
  const cur = msg[f.localName];
  if (f.fieldKind === "message" && cur && typeof cur === "object" && Math.random() < 0.7 && depth < 6) {
    mutateIn(cur as Record<string, unknown>, f.message, g, depth + 1);
    return;
  }
  const v = g.field(f, depth);
  msg[f.localName] =
    f.fieldKind === "message"
      ? create(f.message, v as never)
      : f.fieldKind === "list" && f.listKind === "message"
        ? (v as object[]).map((x) => create(f.message, x as never))
        : f.fieldKind === "map" && f.mapKind === "message"
          ? Object.fromEntries(Object.entries(v as object).map(([k, x]) => [k, create(f.message, x as never)]))
          : v;
}

// --- process facts ---

/** The least of a few readings over ~1 s: a standby monitor being replaced, or a call just ending, holds a descriptor for a moment. */
async function settledFds(pid: number): Promise<number> {
  let least = fdCount(pid);
  for (let i = 0; i < 4; i++) {
    await Bun.sleep(250);
    least = Math.min(least, fdCount(pid));
  }
  return least;
}

/** The daemon's SIGUSR1 dump (taken after a full GC): anonymous memory and JS heap size, kB. */
async function afterGc(d: Env["d"]): Promise<{ anon: number; heap: number }> {
  const seen = new Set(d.logs().match(/wrote debug dump to \S+/g) ?? []);
  d.proc.kill("SIGUSR1");
  const line = await waitFor(() => (d.logs().match(/wrote debug dump to \S+/g) ?? []).find((l) => !seen.has(l)), 20_000, "the debug dump");
  const path = line.replace(/^wrote debug dump to /, "").replace(/"$/, "");
  const dump = JSON.parse(readFileSync(path, "utf8")) as { memoryKiB: { Anonymous?: number }; heap: { sizeBytes: number } };
  rmSync(path, { force: true });
  return { anon: dump.memoryKiB.Anonymous ?? 0, heap: Math.round(dump.heap.sizeBytes / 1024) };
}

function rssKb(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
}

function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

const CODES = [
  "OK",
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
];
function codeName(c: number | undefined): string {
  return c === undefined ? "NO_CODE" : (CODES[c] ?? `CODE_${c}`);
}

function rnd(n: number): number {
  return Math.floor(Math.random() * n);
}
function pick<T>(a: T[]): T {
  return a[rnd(a.length)]!;
}
function hex(n: number): string {
  return Array.from({ length: n }, () => rnd(16).toString(16)).join("");
}
