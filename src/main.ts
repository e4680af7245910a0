/**
 * The one executable. `crio conmon …` (the container monitor, once per container) is
 * dispatched before anything else is loaded, so that role never evaluates the CLI, gRPC or
 * image code; every other command goes through the CLI, whose subcommands load lazily.
 */
const argv = process.argv.slice(2);
// build.ts raises the JIT threshold for the daemon's start-up (daemon/start.ts resets it once it
// serves); the monitor, nsdial and the subcommands named first run with the usual one.
if (argv[0] !== undefined && argv[0] !== "daemon" && !argv[0].startsWith("-")) Bun.unsafe.setJITPolicy(1);
if (argv[0] === "conmon") {
  const { runConmon } = await import("./conmon/main.ts");
  process.exit(await runConmon(argv.slice(1)));
} else if (argv[0] === "nsdial") {
  const { runNsDial } = await import("./sys/ns-dial.ts");
  process.exit(await runNsDial(argv.slice(1)));
} else {
  const { runCli } = await import("./cli/index.ts");
  process.exit(await runCli(argv));
}
export {};
