/**
 * What the error stream carries at the end of an exec or attach: a metav1.Status as JSON
 * (v4 and v5), or for older protocols just the failure message (nothing on success).
 */

/** A metav1.Status, as the kubelet's streaming library writes it. */
export interface StreamStatus {
  metadata: Record<string, never>;
  status: "Success" | "Failure";
  message?: string;
  reason?: string;
  details?: { causes: Array<{ reason?: string; message?: string }> };
  code?: number;
}

/** The command (or attach) ended normally. */
export function successStatus(): StreamStatus {
  return { metadata: {}, status: "Success" };
}

/** The command exited non-zero; kubectl and crictl take the code from the ExitCode cause. */
export function exitCodeStatus(exitCode: number, cmd: string[]): StreamStatus {
  return {
    metadata: {},
    status: "Failure",
    message: `command terminated with non-zero exit code: command '${cmd.join(" ")}' exited with ${exitCode}`,
    reason: "NonZeroExitCode",
    details: { causes: [{ reason: "ExitCode", message: String(exitCode) }] },
  };
}

/** The session failed for another reason (apierrors.NewInternalError's shape). */
export function internalErrorStatus(message: string): StreamStatus {
  return {
    metadata: {},
    status: "Failure",
    message: `Internal error occurred: ${message}`,
    reason: "InternalError",
    details: { causes: [{ message }] },
    code: 500,
  };
}

/** The error-stream bytes for a status: JSON for v4/v5, the bare message (or nothing) before. */
export function encodeStatus(s: StreamStatus, v4: boolean): Buffer | undefined {
  if (v4) return Buffer.from(JSON.stringify(s), "utf8");
  return s.status === "Success" ? undefined : Buffer.from(s.message ?? "", "utf8");
}
