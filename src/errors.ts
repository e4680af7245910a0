/**
 * The one error type of the runtime. Domain code throws RuntimeError with a kind; the CRI edge
 * maps kinds to gRPC codes in exactly one table (src/cri/status.ts). No gRPC import here.
 */

/** Classes of failure, each mapping to one gRPC status code. */
export type ErrorKind =
  | "not-found"
  | "already-exists"
  | "invalid-argument"
  | "failed-precondition"
  | "resource-exhausted"
  | "unauthenticated"
  | "permission-denied"
  | "unavailable"
  | "unimplemented"
  | "deadline-exceeded"
  | "canceled"
  | "internal"
  | "unknown";

/** An error with a kind. Messages are lower-case, have no trailing period and name the object. */
export class RuntimeError extends Error {
  override name = "RuntimeError";
  constructor(
    readonly kind: ErrorKind,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }

  /** Turns anything thrown into a RuntimeError, keeping a RuntimeError's kind. */
  static from(e: unknown): RuntimeError {
    if (e instanceof RuntimeError) return e;
    if (e instanceof Error && (e.name === "AbortError" || e.name === "TimeoutError"))
      return new RuntimeError(e.name === "TimeoutError" ? "deadline-exceeded" : "canceled", e.message, { cause: e });
    const code = (e as { code?: unknown } | null)?.code;
    if (code === "ENOSPC") return new RuntimeError("resource-exhausted", `no space left on device: ${(e as Error).message}`, { cause: e });
    return new RuntimeError("unknown", e instanceof Error ? e.message : String(e), { cause: e });
  }
}

/** Adds context in front of an error's message, keeping its kind and cause chain. */
export function wrap(e: unknown, context: string): RuntimeError {
  const r = RuntimeError.from(e);
  return new RuntimeError(r.kind, `${context}: ${r.message}`, { cause: e });
}

/** `<what> "<id>" not found` */
export const notFound = (what: string, id: string) => new RuntimeError("not-found", `${what} "${id}" not found`);

/** An INVALID_ARGUMENT error. */
export const invalid = (message: string) => new RuntimeError("invalid-argument", message);

/** A FAILED_PRECONDITION error. */
export const precondition = (message: string) => new RuntimeError("failed-precondition", message);

/** An UNIMPLEMENTED error naming the feature. */
export const unimplemented = (what: string) => new RuntimeError("unimplemented", `${what} is not implemented`);

/** The message of anything thrown. */
export const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));
