import { withTimeout } from "./wait.ts";

/** Where failed rollback steps are reported (a log/ Logger is one; util/ imports nothing of log/). */
export interface UndoLog {
  warn(message: string, ...args: unknown[]): void;
}

/**
 * A stack of rollback steps (containerd's DeferContext). Each acquired resource registers its
 * undo; unless commit() is called, disposal runs them in reverse, each with its own deadline,
 * never the request's signal. A failed step is logged and the next one still runs.
 */
export class Undo {
  #steps: Array<{ what: string; step: () => unknown }> = [];
  #committed = false;
  constructor(
    private log: UndoLog,
    private stepTimeoutMs = 30_000,
  ) {}

  /** Registers a rollback step, named for the log. */
  defer(what: string, step: () => unknown): void {
    this.#steps.push({ what, step });
  }

  /** Success: nothing will be rolled back. */
  commit(): void {
    this.#committed = true;
  }

  /** Runs the rollback steps now (when not committed). */
  async rollback(): Promise<void> {
    if (this.#committed) return;
    this.#committed = true;
    for (const { what, step } of this.#steps.reverse()) {
      try {
        await withTimeout(Promise.resolve().then(step), this.stepTimeoutMs, `rollback ${what}`);
      } catch (err) {
        this.log.warn(`rollback step failed: ${what}`, { error: err instanceof Error ? err.message : String(err) });
      }
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.rollback();
  }
}
