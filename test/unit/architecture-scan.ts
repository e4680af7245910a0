// The checkers behind test/unit/architecture.test.ts, as functions of a source root so that the
// test can also run them on test/fixtures/architecture/src (planted violations) and see them fail.
import { dirname, join, normalize, relative } from "node:path";

/** Every .ts file under `root` (paths relative to `root`, "/"-separated, sorted). */
export async function sourceFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  for await (const f of new Bun.Glob("**/*.ts").scan(root)) out.push(f);
  return out.sort();
}

/** The text of a file without its comments (a word in a comment is no violation). */
export function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`\\])\/\/.*$/gm, "$1");
}

/** What only sys/ may do, and the one file of sys/ that does it (undefined: any file of sys/). */
export const SEAMS: ReadonlyArray<{ what: string; re: RegExp; owner?: string }> = [
  { what: "dlopen", re: /\bdlopen\b/, owner: "sys/libc.ts" },
  { what: "bun:ffi", re: /["']bun:ffi["']/ },
  { what: "Bun.spawn", re: /\bBun\s*\.\s*spawn\b/, owner: "sys/spawn.ts" },
  { what: "spawnSync", re: /\bspawnSync\b/, owner: "sys/spawn.ts" },
  { what: "child_process", re: /["'](node:)?child_process["']/, owner: "sys/spawn.ts" },
];

/** "file: what" for each use of a seam outside sys/ (or, for an owned seam, outside its owner). */
export async function seamViolations(root: string): Promise<string[]> {
  const bad: string[] = [];
  for (const f of await sourceFiles(root)) {
    const text = code(await Bun.file(join(root, f)).text());
    for (const s of SEAMS) {
      if (!s.re.test(text)) continue;
      const allowed = s.owner ? f === s.owner : f.startsWith("sys/");
      if (!allowed) bad.push(`${f}: ${s.what}`);
    }
  }
  return bad;
}

/** An import of one file by another: value or type, static, re-export or dynamic. */
export interface ImportEdge {
  from: string;
  to: string;
}

/** Every relative import between the files under `root` (paths relative to `root`). */
export async function importEdges(root: string): Promise<ImportEdge[]> {
  const edges: ImportEdge[] = [];
  const spec = /(?:^|[\s;}])(?:import|export)\b[^;"'`]*?\bfrom\s*["']([^"']+)["']|\bimport\s*\(\s*["']([^"']+)["']\s*\)|^\s*import\s*["']([^"']+)["']/gm;
  for (const f of await sourceFiles(root)) {
    const text = code(await Bun.file(join(root, f)).text());
    for (const m of text.matchAll(spec)) {
      const s = m[1] ?? m[2] ?? m[3]!;
      if (!s.startsWith(".")) continue;
      const to = normalize(join(dirname(f), s));
      if (to.startsWith("..")) continue; // outside the root
      edges.push({ from: f, to });
    }
  }
  return edges;
}

/** A file's top folder ("sandbox" for sandbox/run.ts); a file at the top is its own ("errors.ts"). */
export function topOf(file: string): string {
  const i = file.indexOf("/");
  return i < 0 ? file : file.slice(0, i);
}

/**
 * The cycles between top folders: each strongly connected component of the folder graph with
 * more than one folder, as its sorted folder names joined by " <-> ", with one import of each
 * direction as evidence ("sandbox/run.ts -> container/index.ts"), sorted.
 */
export async function folderCycles(root: string): Promise<Array<{ cycle: string; evidence: string[] }>> {
  const out = new Map<string, Map<string, string>>(); // folder -> folder -> an example edge
  for (const e of await importEdges(root)) {
    const a = topOf(e.from);
    const b = topOf(e.to);
    if (a === b) continue;
    if (!out.has(a)) out.set(a, new Map());
    if (!out.get(a)!.has(b)) out.get(a)!.set(b, `${e.from} -> ${e.to}`);
  }
  // Tarjan's strongly connected components
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const comps: string[][] = [];
  let n = 0;
  const visit = (v: string) => {
    index.set(v, n);
    low.set(v, n++);
    stack.push(v);
    onStack.add(v);
    for (const w of out.get(v)?.keys() ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const comp: string[] = [];
      for (let w; w !== v; ) comp.push((w = stack.pop()!)), onStack.delete(w);
      if (comp.length > 1) comps.push(comp.sort());
    }
  };
  for (const v of [...out.keys()].sort()) if (!index.has(v)) visit(v);
  return comps
    .map((c) => ({
      cycle: c.join(" <-> "),
      evidence: c.flatMap((a) => c.filter((b) => b !== a && out.get(a)?.has(b)).map((b) => out.get(a)!.get(b)!)),
    }))
    .sort((x, y) => x.cycle.localeCompare(y.cycle));
}

/** The top folders (and top files) that the files under `dir` import, with one import of each as evidence. */
export async function importsOf(root: string, dir: string): Promise<Map<string, string>> {
  const seen = new Map<string, string>();
  for (const e of await importEdges(root)) {
    if (!e.from.startsWith(dir) || e.to.startsWith(dir)) continue;
    const key = topOf(e.to) === "oci" ? e.to : topOf(e.to); // of oci/ only command.ts is allowed: keep the file
    if (!seen.has(key)) seen.set(key, `${e.from} -> ${e.to}`);
  }
  return seen;
}

/** `file` relative to `root`, for messages. */
export const rel = (root: string, file: string) => relative(root, file);
