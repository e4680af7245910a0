import { Status as status, type StatusCode } from "./grpc-server.ts";
import type { ErrorKind } from "../errors.ts";

/** The one table from error kinds to gRPC status codes; Record<> makes it cover every kind. */
export const CODE: Record<ErrorKind, StatusCode> = {
  "not-found": status.NOT_FOUND,
  "already-exists": status.ALREADY_EXISTS,
  "invalid-argument": status.INVALID_ARGUMENT,
  "failed-precondition": status.FAILED_PRECONDITION,
  "resource-exhausted": status.RESOURCE_EXHAUSTED,
  unauthenticated: status.UNAUTHENTICATED,
  "permission-denied": status.PERMISSION_DENIED,
  unavailable: status.UNAVAILABLE,
  unimplemented: status.UNIMPLEMENTED,
  "deadline-exceeded": status.DEADLINE_EXCEEDED,
  canceled: status.CANCELLED,
  internal: status.INTERNAL,
  unknown: status.UNKNOWN,
};
