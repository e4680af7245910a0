import type { ArgDef, CommandDef } from "citty";

/**
 * `--help` text for `crio` and its subcommands, for an 80-column terminal: each option on its
 * own line, its description wrapped below it with a fixed indent (no column padding that grows
 * with the longest flag). Headings and flags are coloured only on a terminal without NO_COLOR
 * (https://no-color.org).
 */
// biome-ignore lint/suspicious/noExplicitAny: each subcommand has its own args type, and citty's CommandDef is invariant in it
export async function renderUsage(cmd: CommandDef<any>, parent?: CommandDef<any>, o: { width?: number; color?: boolean } = {}): Promise<string> {
  const width = Math.max(40, Math.min(o.width ?? 80, 100));
  const c = o.color ?? colorWanted(process.stdout);
  const bold = (s: string) => (c ? `\x1b[1m${s}\x1b[22m` : s);
  const cyan = (s: string) => (c ? `\x1b[36m${s}\x1b[39m` : s);
  const meta = await resolve(cmd.meta);
  const pmeta = parent ? await resolve(parent.meta) : undefined;
  const args = ((await resolve(cmd.args)) ?? {}) as Record<string, ArgDef>;
  const subs = parent ? {} : ((await resolve(cmd.subCommands)) ?? {});
  const name = [pmeta?.name, meta?.name].filter(Boolean).join(" ");
  const out: string[] = [];
  const title = `${name}${meta?.version ? ` ${meta.version}` : ""}${meta?.description ? `: ${meta.description}` : ""}`;
  out.push(...wrap(title, width, 0), "");

  const positional = Object.entries(args).filter(([, a]) => a.type === "positional");
  const options = Object.entries(args).filter(([, a]) => a.type !== "positional");
  const pos = positional.map(([k, a]) => {
    const v = (a as { valueHint?: string }).valueHint ?? k.toUpperCase();
    return (a as { required?: boolean }).required === false ? `[${v}]` : v;
  });
  const subNames = Object.keys(subs);
  out.push(`${bold("USAGE")} ${cyan([name, options.length ? "[OPTIONS]" : "", subNames.length ? "[COMMAND]" : "", ...pos].filter(Boolean).join(" "))}`, "");

  if (subNames.length) {
    out.push(bold("COMMANDS"));
    for (const s of subNames) {
      const def = await resolve((subs as Record<string, unknown>)[s] as CommandDef | (() => Promise<CommandDef>));
      const d = (await resolve(def?.meta))?.description ?? "";
      out.push(...item(cyan(s), s.length, d, width));
    }
    out.push("", ...wrap(`With no command, crio runs the daemon. "crio COMMAND --help" describes a command.`, width, 0), "");
  }
  if (positional.length) {
    out.push(bold("ARGUMENTS"));
    for (const [k, a] of positional) {
      const v = (a as { valueHint?: string }).valueHint ?? k.toUpperCase();
      out.push(...item(cyan(v), v.length, a.description ?? "", width));
    }
    out.push("");
  }
  if (options.length) {
    out.push(bold("OPTIONS"));
    for (const [k, a] of options) {
      const alias = (a as { alias?: string | string[] }).alias;
      const short = (Array.isArray(alias) ? alias : alias ? [alias] : [])
        .filter((x) => x.length === 1)
        .map((x) => `-${x}, `)
        .join("");
      const flag = `${short}--${k}${a.type === "string" ? `=${(a as { valueHint?: string }).valueHint ?? "VALUE"}` : ""}`;
      out.push(`  ${cyan(flag)}`);
      out.push(...wrap(a.description ?? "", width, 6));
    }
    out.push("");
  }
  return out.join("\n");
}

/** Colour only on a terminal, and never with NO_COLOR set (to anything non-empty) or TERM=dumb. */
export function colorWanted(stream: { isTTY?: boolean }, env: Record<string, string | undefined> = process.env): boolean {
  return !!stream.isTTY && !env.NO_COLOR && env.TERM !== "dumb";
}

// --- internal ---

async function resolve<T>(v: T | (() => T | Promise<T>) | Promise<T> | undefined): Promise<T | undefined> {
  return typeof v === "function" ? await (v as () => T | Promise<T>)() : await v;
}

/** A name with its description: on one line when the name is short, else below it. */
function item(shown: string, len: number, desc: string, width: number): string[] {
  if (len <= 12) {
    const lines = wrap(desc, width, 16);
    if (lines.length === 0) return [`  ${shown}`];
    return [`  ${shown}${" ".repeat(14 - len)}${lines[0]!.trimStart()}`, ...lines.slice(1)];
  }
  return [`  ${shown}`, ...wrap(desc, width, 6)];
}

/** Word-wraps `text` to `width` columns with `indent` spaces before each line. */
function wrap(text: string, width: number, indent: number): string[] {
  const lines: string[] = [];
  let cur = "";
  for (const w of text.split(/\s+/).filter(Boolean)) {
    if (cur && indent + cur.length + 1 + w.length > width) {
      lines.push(" ".repeat(indent) + cur);
      cur = w;
    } else cur = cur ? `${cur} ${w}` : w;
  }
  if (cur) lines.push(" ".repeat(indent) + cur);
  return lines;
}
