// The one wait for a runtime to serve, used alike for ours and the references (start-up figures
// compare like with like): the socket file, then Status, each polled every 5 ms.

import { existsSync } from "node:fs";
import { criClient } from "../../test/support/cri-client.ts";

/**
 * Polls until `socket` exists (grpc-js backs off ~1 s after a failed first connect), then until
 * Status answers. Throws naming `what` once `dead()` or after `timeoutMs`; `detail` (e.g. the
 * runtime's log tail) is added to the error.
 */
export async function untilStatus(socket: string, dead: () => boolean, what: string, o: { timeoutMs?: number; detail?: () => string } = {}): Promise<void> {
  const deadline = Date.now() + (o.timeoutMs ?? 30_000);
  const more = () => (o.detail ? `: ${o.detail()}` : "");
  while (!existsSync(socket)) {
    if (dead() || Date.now() > deadline) throw new Error(`${what} made no socket at ${socket}${more()}`);
    await Bun.sleep(5);
  }
  const cri = criClient(socket);
  try {
    for (;;) {
      try {
        await cri.status({}, { timeoutMs: 1000 });
        return;
      } catch (e) {
        if (dead() || Date.now() > deadline) throw new Error(`${what} did not answer Status on ${socket}: ${String(e)}${more()}`);
        await Bun.sleep(5);
      }
    }
  } finally {
    cri.close();
  }
}
