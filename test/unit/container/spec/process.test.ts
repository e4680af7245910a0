import { describe, expect, test } from "bun:test";
import { create } from "@bufbuild/protobuf";
import { KeyValueSchema } from "../../../../src/gen/runtime/v1/api_pb.ts";
import { DEFAULT_PATH, parseUlimits, processArgs, processCwd, processEnv, stopSignalName } from "../../../../src/container/spec/process.ts";
import { RLIM_INFINITY } from "../../../../src/oci/spec-types.ts";
import type { ImageConfig } from "../../../../src/container/spec/types.ts";

const image = { Entrypoint: ["/entry"], Cmd: ["--default"] };
const kv = (key: string, value: string) => create(KeyValueSchema, { key, value: new TextEncoder().encode(value) });

describe("processArgs follows the kubelet/CRI-O merge", () => {
  test.each([
    ["neither: Entrypoint + Cmd", [], [], image, ["/entry", "--default"]],
    ["args only: Entrypoint + args", [], ["a", "b"], image, ["/entry", "a", "b"]],
    ["command only: command, Cmd dropped", ["/bin/sh"], [], image, ["/bin/sh"]],
    ["command and args", ["/bin/sh", "-c"], ["echo"], image, ["/bin/sh", "-c", "echo"]],
    ["no Entrypoint: Cmd", [], [], { Cmd: ["sh"] }, ["sh"]],
    ["no Entrypoint, args replace Cmd", [], ["ls"], { Cmd: ["sh"], Entrypoint: null }, ["ls"]],
  ] as const)("%s", (_name, command, args, img, want) => {
    expect(processArgs(command, args, img as ImageConfig)).toEqual([...want]);
  });

  test("nothing to run is invalid-argument", () => {
    expect(() => processArgs([], [], {})).toThrow(expect.objectContaining({ kind: "invalid-argument", message: "no command specified" }));
    // what no kernel can exec is refused before the runtime runs (its error would echo it all)
    expect(() => processArgs(["a".repeat(70_000)], [], {})).toThrow(
      expect.objectContaining({ kind: "invalid-argument", message: expect.stringContaining("70000 bytes long") }),
    );
    expect(() => processArgs(["/bin/" + "é".repeat(2046)], [], {})).toThrow(expect.objectContaining({ kind: "invalid-argument" }));
    expect(processArgs(["/bin/" + "a".repeat(4000)], ["x".repeat(131_071)], {})).toHaveLength(2);
    expect(() => processArgs(["sh"], ["-c", "x".repeat(131_072)], {})).toThrow(
      expect.objectContaining({ kind: "invalid-argument", message: expect.stringContaining("argument 2") }),
    );
  });
});

describe("processEnv", () => {
  test("defaults < image < CRI, first positions kept, PATH from the CRI", () => {
    const env = processEnv({
      tty: true,
      hostname: "web",
      defaults: ["A=default", "B=default"],
      image: ["PATH=/img/bin", "B=image", "C=image"],
      cri: [kv("C", "cri"), kv("PATH", "/cri/bin"), kv("", "ignored")],
    });
    expect(env).toEqual(["TERM=xterm", "HOSTNAME=web", "A=default", "B=image", "C=cri", "PATH=/cri/bin"]);
  });

  test("the image PATH is kept; the standard one is added when none is set", () => {
    expect(processEnv({ tty: false, hostname: "h", defaults: [], image: ["PATH=/only"], cri: [] })).toEqual(["HOSTNAME=h", "PATH=/only"]);
    expect(processEnv({ tty: false, hostname: "h", defaults: [], image: [], cri: [] })).toEqual(["HOSTNAME=h", `PATH=${DEFAULT_PATH}`]);
  });

  test("values may contain '='", () => {
    expect(processEnv({ tty: false, hostname: "h", defaults: [], image: ["X=a=b"], cri: [] })).toContain("X=a=b");
  });
});

test("processCwd: CRI, image, then /; relative is invalid", () => {
  expect(processCwd("/cri", { WorkingDir: "/img" })).toBe("/cri");
  expect(() => processCwd("/" + "d".repeat(4095), {})).toThrow(expect.objectContaining({ kind: "invalid-argument" }));
  expect(processCwd("", { WorkingDir: "/img" })).toBe("/img");
  expect(processCwd("", {})).toBe("/");
  expect(() => processCwd("rel", {})).toThrow(expect.objectContaining({ kind: "invalid-argument" }));
});

test("parseUlimits", () => {
  expect(parseUlimits(["nofile=1024:2048", "nproc=512", "core=-1"])).toEqual([
    { type: "RLIMIT_NOFILE", soft: 1024, hard: 2048 },
    { type: "RLIMIT_NPROC", soft: 512, hard: 512 },
    { type: "RLIMIT_CORE", soft: RLIM_INFINITY, hard: RLIM_INFINITY },
  ]);
  expect(() => parseUlimits(["bogus=1"])).toThrow(/unknown resource/);
  expect(() => parseUlimits(["nofile=10:5"])).toThrow(/soft limit exceeds/);
  expect(() => parseUlimits(["nofile"])).toThrow(/expected name=soft/);
});

test("stopSignalName: CRI enum, then image, then SIGTERM", () => {
  expect(stopSignalName(13, "SIGQUIT")).toBe("SIGKILL");
  expect(stopSignalName(0, "SIGQUIT")).toBe("SIGQUIT");
  expect(stopSignalName(0, "quit")).toBe("SIGQUIT");
  expect(stopSignalName(0, "9")).toBe("SIGKILL");
  expect(stopSignalName(0, undefined)).toBe("SIGTERM");
  expect(stopSignalName(36, undefined)).toBe("SIGRTMIN+1");
  expect(stopSignalName(51, undefined)).toBe("SIGRTMAX-14");
  expect(stopSignalName(65, undefined)).toBe("SIGRTMAX");
});
