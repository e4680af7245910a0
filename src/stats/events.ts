import type { ContainerView } from "../container/record.ts";
import type { Logger } from "../log/index.ts";
import type { SandboxView } from "../sandbox/record.ts";

/** A container lifecycle change as GetContainerEvents reports it. */
export type ContainerEventKind = "created" | "started" | "stopped" | "deleted";

/**
 * One event with the state at the time it happened: the pod, and every (non-infra) container
 * of the pod. Views are snapshots: later changes to the records do not alter them.
 */
export interface ContainerEvent {
  containerId: string;
  kind: ContainerEventKind;
  /** ms since the epoch. */
  at: number;
  sandbox?: SandboxView;
  containers: ContainerView[];
}

/** What the broadcaster reads from the domain. */
export interface EventSources {
  containers: {
    onChange(fn: (kind: ContainerEventKind, c: ContainerView) => void): () => void;
    ofPod(sandboxId: string): ContainerView[];
  };
  sandboxes: { find(id: string): SandboxView | undefined };
}

/** Options of the broadcaster. */
export interface ContainerEventsOptions {
  /** enable_pod_events: when false, GetContainerEvents ends at once (as CRI-O does). */
  enabled: () => boolean;
  /** Events queued per subscriber before new ones are dropped (default 1000). */
  bufferSize?: number;
  /**
   * How long a STOPPED event of a container whose STARTED was not seen yet is held back, so a
   * process that exits before StartContainer returns still reports created → started → stopped
   * (default 2000 ms).
   */
  reorderMs?: number;
  log?: Logger;
}

/**
 * GetContainerEvents: a fan-out of container lifecycle changes to every subscriber, each with a
 * bounded queue. A subscriber that does not read loses events (counted), never stalls the
 * daemon. Infra containers are not reported.
 */
export class ContainerEvents {
  readonly #o: ContainerEventsOptions;
  readonly #subs = new Set<Subscriber>();
  #dropped = 0;
  #sources?: EventSources;
  #detach?: () => void;
  /** Last kind reported per container, and STOPPED events held back. */
  readonly #last = new Map<string, ContainerEventKind>();
  readonly #held = new Map<string, { ev: ContainerEvent; timer: ReturnType<typeof setTimeout> }>();

  constructor(o: ContainerEventsOptions) {
    this.#o = o;
  }

  /** Starts listening to the container service. */
  attach(s: EventSources): void {
    this.#sources = s;
    this.#detach = s.containers.onChange((kind, c) => this.publish(kind, c));
  }

  /** Records a change (called by the container service's listener). */
  publish(kind: ContainerEventKind, c: ContainerView): void {
    if (c.meta.infra) return;
    const id = c.meta.id;
    const ev = this.#snapshot(kind, c);
    const held = this.#held.get(id);
    if (kind === "stopped" && this.#last.get(id) === "created") {
      // The exit was seen before StartContainer finished (or the container never started): wait for STARTED a moment.
      const timer = setTimeout(() => this.#release(id), this.#o.reorderMs ?? 2000);
      timer.unref?.();
      this.#held.set(id, { ev, timer });
      return;
    }
    if (held) {
      clearTimeout(held.timer);
      this.#held.delete(id);
      if (kind === "started") {
        this.#deliver(ev);
        this.#deliver(held.ev);
        return;
      }
      this.#deliver(held.ev);
    }
    this.#deliver(ev);
  }

  /**
   * Serves one GetContainerEvents stream: sends every event from now on through `send` (which
   * resolves when the transport accepted it) until `signal` aborts or close() is called. Returns
   * at once when pod events are disabled.
   */
  async serve(signal: AbortSignal, send: (ev: ContainerEvent) => Promise<void>): Promise<void> {
    if (!this.#o.enabled() || signal.aborted) return;
    const sub = new Subscriber(this.#o.bufferSize ?? 1000, (first) => {
      this.#dropped++;
      if (first) this.#o.log?.warn("a GetContainerEvents subscriber is not keeping up: dropping its events");
    });
    this.#subs.add(sub);
    const stop = () => sub.end();
    signal.addEventListener("abort", stop, { once: true });
    try {
      for (;;) {
        const ev = await sub.next();
        if (!ev || signal.aborted) return;
        await send(ev);
      }
    } finally {
      signal.removeEventListener("abort", stop);
      this.#subs.delete(sub);
    }
  }

  /** Events dropped because a subscriber's queue was full (crio_containers_events_dropped_total). */
  dropped(): number {
    return this.#dropped;
  }

  /** Connected subscribers. */
  subscribers(): number {
    return this.#subs.size;
  }

  /** Ends every stream and stops listening (daemon shutdown). */
  close(): void {
    this.#detach?.();
    for (const h of this.#held.values()) clearTimeout(h.timer);
    this.#held.clear();
    for (const s of this.#subs) s.end();
  }

  // --- internal ---

  #snapshot(kind: ContainerEventKind, c: ContainerView): ContainerEvent {
    const sbId = c.meta.sandboxId;
    const sb = this.#sources?.sandboxes.find(sbId);
    const others = (this.#sources?.containers.ofPod(sbId) ?? []).filter((x) => !x.meta.infra);
    const snap = (v: ContainerView): ContainerView => ({ meta: v.meta, status: v.status });
    // RemoveContainer drops the record before reporting: DELETED lists the pod's remaining containers.
    return {
      containerId: c.meta.id,
      kind,
      at: Date.now(),
      sandbox: sb ? { meta: sb.meta, status: sb.status } : undefined,
      containers: others.map(snap),
    };
  }

  #release(id: string): void {
    const held = this.#held.get(id);
    if (!held) return;
    this.#held.delete(id);
    this.#deliver(held.ev);
  }

  #deliver(ev: ContainerEvent): void {
    if (ev.kind === "deleted") this.#last.delete(ev.containerId);
    else this.#last.set(ev.containerId, ev.kind);
    for (const s of this.#subs) s.push(ev);
  }
}

// --- internal ---

/** A bounded queue with one reader. */
class Subscriber {
  readonly #q: ContainerEvent[] = [];
  #wake?: () => void;
  #ended = false;

  #drops = 0;

  constructor(
    private readonly cap: number,
    private readonly onDrop: (first: boolean) => void,
  ) {}

  push(ev: ContainerEvent): void {
    if (this.#ended) return;
    if (this.#q.length >= this.cap) {
      this.onDrop(this.#drops++ === 0);
      return;
    }
    this.#q.push(ev);
    this.#wake?.();
  }

  end(): void {
    this.#ended = true;
    this.#wake?.();
  }

  async next(): Promise<ContainerEvent | undefined> {
    while (this.#q.length === 0) {
      if (this.#ended) return undefined;
      await new Promise<void>((r) => (this.#wake = r));
      this.#wake = undefined;
    }
    return this.#q.shift();
  }
}
