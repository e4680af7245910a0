import { RuntimeError } from "../errors.ts";

/** A configuration that cannot be used; names the source (file or flag), key, value and expectation. */
export class ConfigError extends RuntimeError {
  override name = "ConfigError";
  constructor(message: string) {
    super("invalid-argument", message);
  }
}
