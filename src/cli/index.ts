import { defineCommand, runCommand, type CommandDef } from "citty";
import { renderUsage } from "./usage.ts";
import { VERSION } from "../version.ts";
import { globalArgs } from "./flags.ts";

/** Subcommand name → loader; each loads only its own code. */
// biome-ignore lint/suspicious/noExplicitAny: each subcommand has its own args type, and citty's CommandDef is invariant in it
export const SUBCOMMANDS: Record<string, () => Promise<CommandDef<any>>> = {
  daemon: () => import("./daemon.ts").then((m) => m.default),
  pull: () => import("./pull.ts").then((m) => m.default),
  config: () => import("./config.ts").then((m) => m.default),
  version: () => import("./version.ts").then((m) => m.default),
  status: () => import("./status.ts").then((m) => m.default),
  wipe: () => import("./wipe.ts").then((m) => m.default),
  completion: () => import("./completion.ts").then((m) => m.default),
};

/**
 * Runs the CLI. Global flags may stand before or after the subcommand (`crio --root X config`);
 * with no subcommand, `crio` runs the daemon.
 */
export async function runCli(argv: string[]): Promise<number> {
  const args = globalArgs();
  const { index, name } = findSubcommand(argv, args);
  const rest = index < 0 ? argv : [...argv.slice(0, index), ...argv.slice(index + 1)];
  const root = defineCommand({
    meta: { name: "crio", version: VERSION, description: "A Kubernetes container runtime (CRI v1): CRI-O's job, in TypeScript on Bun" },
    args,
    subCommands: SUBCOMMANDS,
  });
  const cmd = name ? await SUBCOMMANDS[name]!() : await SUBCOMMANDS.daemon!();
  if (rest.includes("--help") || rest.includes("-h")) {
    process.stdout.write(await renderUsage(name ? cmd : root, name ? root : undefined, { width: process.stdout.isTTY ? process.stdout.columns : 80 }));
    return 0;
  }
  if (!name && (rest.includes("--version") || rest.includes("-v"))) {
    console.log(`crio version ${VERSION}`);
    return 0;
  }
  try {
    const { result } = await runCommand(cmd, { rawArgs: rest });
    return typeof result === "number" ? result : 0;
  } catch (e) {
    process.stderr.write(`crio: ${e instanceof Error ? e.message : String(e)}\n`);
    return 2;
  }
}

// --- internal ---

function findSubcommand(argv: string[], args: ReturnType<typeof globalArgs>): { index: number; name?: string } {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") return { index: -1 };
    if (a.startsWith("-")) {
      const flag = a.replace(/^-+/, "");
      const def = Object.entries(args).find(([k, d]) => k === flag || (d as { alias?: string }).alias === flag)?.[1] as { type?: string } | undefined;
      if (!a.includes("=") && def?.type === "string") i++;
      continue;
    }
    if (a in SUBCOMMANDS) return { index: i, name: a };
    throw new Error(`unknown command "${a}"`);
  }
  return { index: -1 };
}
