// `crio --help` and every subcommand's help on the compiled binary: each line fits 80 columns
// with no right-aligned padding, and colour codes appear only on a terminal without NO_COLOR
// (the terminal is util-linux `script`'s pseudo-terminal).
import { describe, expect, test } from "bun:test";
import { CRIO } from "../harness.ts";

const COMMANDS = [[], ["daemon"], ["config"], ["version"], ["pull"], ["status"], ["wipe"], ["completion"]];
const ESC = "\x1b";

function help(cmd: string[], env: Record<string, string> = {}) {
  const r = Bun.spawnSync([CRIO, ...cmd, "--help"], { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env }, stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
}

/** Runs the help on a pseudo-terminal 80 columns wide. */
function helpOnTty(cmd: string[], env: Record<string, string> = {}) {
  const line = [CRIO, ...cmd, "--help"].join(" ");
  const r = Bun.spawnSync(["script", "-qec", `stty cols 80 2>/dev/null; ${line}`, "/dev/null"], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", TERM: "xterm", ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  return { code: r.exitCode, out: r.stdout.toString() };
}

describe("help text", () => {
  test.each(COMMANDS.map((c) => [c.join(" ") || "(no command)", c] as const))("crio %s --help fits 80 columns, no padding, no colour when piped", (_n, cmd) => {
    const r = help(cmd);
    expect(r.code).toBe(0);
    expect(r.out).toContain("USAGE");
    expect(r.out).toContain(`crio${cmd.length ? ` ${cmd[0]}` : ""}`);
    expect(r.out).not.toContain(ESC);
    const lines = r.out.split("\n");
    expect(lines.filter((l) => l.length > 80)).toEqual([]);
    expect(lines.filter((l) => / {20,}/.test(l) || / +$/.test(l))).toEqual([]); // no column padding, no trailing blanks
  });

  test("the daemon's flags are all listed", () => {
    const r = help([]);
    for (const f of ["--config=", "--root=", "--log-level=", "--timezone=", "--internal-repair"]) expect(r.out).toContain(f);
  });
});

describe("colour", () => {
  test("on a terminal the help is coloured; NO_COLOR turns it off; lines still fit 80 columns", () => {
    const tty = helpOnTty([]);
    expect(tty.code).toBe(0);
    expect(tty.out).toContain(`${ESC}[1mUSAGE`);
    const plain = helpOnTty([], { NO_COLOR: "1" });
    expect(plain.out).toContain("USAGE");
    expect(plain.out).not.toContain(ESC);
    expect(plain.out.split(/\r?\n/).filter((l) => l.length > 80)).toEqual([]);
  });

  test("crio config writes no colour codes, piped or with NO_COLOR on a terminal", () => {
    const r = Bun.spawnSync([CRIO, "config", "--default"], { stdout: "pipe" });
    expect(r.stdout.toString()).not.toContain(ESC);
    expect(
      Bun.spawnSync(["script", "-qec", `${CRIO} config --default`, "/dev/null"], {
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", NO_COLOR: "1", TERM: "xterm" },
        stdout: "pipe",
      }).stdout.toString(),
    ).not.toContain(ESC);
  });
});
