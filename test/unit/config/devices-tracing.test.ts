import { expect, test } from "bun:test";
import { tracingUrl, validate } from "../../../src/config/validate.ts";
import { defaults } from "../../../src/config/schema.ts";

test("tracing_endpoint: host:port or an http(s) URL → the OTLP/HTTP traces URL", () => {
  expect(tracingUrl("127.0.0.1:4318")).toBe("http://127.0.0.1:4318/v1/traces");
  expect(tracingUrl("0.0.0.0:4317")).toBe("http://0.0.0.0:4317/v1/traces");
  expect(tracingUrl("otel-collector.monitoring:4318")).toBe("http://otel-collector.monitoring:4318/v1/traces");
  expect(tracingUrl("[::1]:4318")).toBe("http://[::1]:4318/v1/traces");
  expect(tracingUrl("https://collector.example.com")).toBe("https://collector.example.com/v1/traces");
  expect(tracingUrl("http://c:4318/custom/path")).toBe("http://c:4318/custom/path");
  for (const bad of ["", "collector", "127.0.0.1:0", "127.0.0.1:70000", "ftp://c:1", "http://", "a b:1", ":4318"]) expect(tracingUrl(bad)).toBeUndefined();
});

test("wrong values of the device and tracing keys are config errors naming the key", () => {
  type Mutable = { tracing: Record<string, unknown>; runtime: Record<string, unknown> };
  const cases: Array<[(c: Mutable) => void, string]> = [
    [
      (c) => (c.tracing.tracingSamplingRatePerMillion = 1_000_001),
      'key "crio.tracing.tracing_sampling_rate_per_million": value 1000001 is not valid: expected an integer from 0 to 1000000',
    ],
    [(c) => (c.tracing.tracingSamplingRatePerMillion = -5), "crio.tracing.tracing_sampling_rate_per_million"],
    [(c) => (c.tracing.tracingEndpoint = "nowhere"), 'key "crio.tracing.tracing_endpoint": value "nowhere" is not valid'],
    [(c) => (c.runtime.allowedDevices = ["/dev/fuse:/dev/f"]), 'key "crio.runtime.allowed_devices"'],
    [(c) => (c.runtime.cdiSpecDirs = ["cdi"]), 'key "crio.runtime.cdi_spec_dirs": value "cdi"'],
  ];
  for (const [mutate, msg] of cases) {
    const c = defaults();
    mutate(c as unknown as Mutable);
    expect(() => validate(c)).toThrow(msg);
  }
  expect(() => validate(defaults())).not.toThrow();
});
