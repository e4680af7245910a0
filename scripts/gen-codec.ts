/**
 * Generates src/gen/runtime/v1/api_codec.ts: a reflection-free protobuf codec of every CRI message
 * (straight-line encode, decode, proto3 JSON), the CRI enums as constants, and the two services'
 * method tables. It reads the descriptor protoc-gen-es generated (api_pb.ts) at generation time
 * only; the generated file imports api_pb.ts for its TypeScript types alone (`import type`), so
 * the daemon never evaluates @bufbuild/protobuf or builds the descriptors. Run by `bun run gen`
 * after `buf generate`; `bun run check:gen` (CI) checks the committed file is what this writes.
 *
 * The encoders write what protobuf-es's toBinary writes, byte for byte: fields in field-number
 * order, proto3 implicit-presence fields skipped at their zero value, numeric repeated fields
 * packed, map entries with both key and value. The decoders give what fromBinary gives (every
 * field at its default, then the wire's values: last one wins for a singular field, a message
 * field seen twice merges, repeated fields append, packed and unpacked both accepted), except
 * that unknown fields are skipped rather than kept. Oneofs and proto3 `optional` fields (explicit
 * presence: written when set, zero or not) are handled as protobuf-es does, though the CRI proto
 * has none; proto2 (required, closed enums, groups) and jstype=JS_STRING are refused here.
 * test/unit/cri/codec.test.ts compares both with protobuf-es on random messages of every CRI type
 * and of test/fixtures/codec (every scalar type, oneofs, optional, maps with non-string keys).
 */
import { basename, dirname, relative, resolve } from "node:path";
import { ScalarType, type DescEnum, type DescField, type DescFile, type DescMessage } from "@bufbuild/protobuf";

// `bun scripts/gen-codec.ts [<x_pb.ts> <its file descriptor export>]`: the CRI's by default; the
// codec is written beside it as x_codec.ts (test/fixtures/codec: the generator's own fixture).
const [pbArg = "src/gen/runtime/v1/api_pb.ts", exportName = "file_runtime_v1_api"] = process.argv.slice(2);
const ROOT = resolve(import.meta.dir, "..");
const PB = resolve(ROOT, pbArg);
const OUT = PB.replace(/_pb\.ts$/, "_codec.ts");
const WIRE = relative(dirname(OUT), resolve(ROOT, "src/util/protowire.ts"));
const file = (await import(PB))[exportName] as DescFile;
if (!file?.proto) throw new Error(`${pbArg} exports no file descriptor ${exportName}`);
const pkg = `${file.proto.package}.`;

const messages: DescMessage[] = [];
const enums: DescEnum[] = [];
const walk = (m: DescMessage) => {
  messages.push(m);
  enums.push(...m.nestedEnums);
  for (const n of m.nestedMessages) walk(n);
};
enums.push(...file.enums);
for (const m of file.messages) walk(m);

/** The TypeScript name protoc-gen-es gives a message or enum: its name within the package, `_`-joined. */
const tsName = (d: { typeName: string }) => d.typeName.slice(pkg.length).replaceAll(".", "_");

// --- wire ---

const VARINT = 0;
const I64 = 1;
const LEN = 2;
const I32 = 5;

function wireOf(t: ScalarType): number {
  switch (t) {
    case ScalarType.STRING:
    case ScalarType.BYTES:
      return LEN;
    case ScalarType.DOUBLE:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return I64;
    case ScalarType.FLOAT:
    case ScalarType.FIXED32:
    case ScalarType.SFIXED32:
      return I32;
    default:
      return VARINT;
  }
}

function writeScalar(t: ScalarType, x: string): string {
  switch (t) {
    case ScalarType.STRING:
      return `w.str(${x})`;
    case ScalarType.BYTES:
      return `w.bytes(${x})`;
    case ScalarType.BOOL:
      return `w.bool(${x})`;
    case ScalarType.INT32:
      return `w.int32(${x})`;
    case ScalarType.UINT32:
      return `w.uint32(${x})`;
    case ScalarType.SINT32:
      return `w.sint32(${x})`;
    case ScalarType.INT64:
      return `w.int64(${x})`;
    case ScalarType.UINT64:
      return `w.uint64(${x})`;
    case ScalarType.SINT64:
      return `w.sint64(${x})`;
    case ScalarType.FIXED32:
      return `w.fixed32(${x})`;
    case ScalarType.SFIXED32:
      return `w.sfixed32(${x})`;
    case ScalarType.FIXED64:
      return `w.fixed64(${x}, false)`;
    case ScalarType.SFIXED64:
      return `w.fixed64(${x}, true)`;
    case ScalarType.DOUBLE:
      return `w.double(${x})`;
    case ScalarType.FLOAT:
      return `w.float(${x})`;
  }
}

function readScalar(t: ScalarType): string {
  switch (t) {
    case ScalarType.STRING:
      return "r.str()";
    case ScalarType.BYTES:
      return "r.bytes()";
    case ScalarType.BOOL:
      return "r.bool()";
    case ScalarType.INT32:
      return "r.int32()";
    case ScalarType.UINT32:
      return "r.u32()";
    case ScalarType.SINT32:
      return "r.sint32()";
    case ScalarType.INT64:
      return "r.int64()";
    case ScalarType.UINT64:
      return "r.uint64()";
    case ScalarType.SINT64:
      return "r.sint64()";
    case ScalarType.FIXED32:
      return "r.fixed32()";
    case ScalarType.SFIXED32:
      return "r.sfixed32()";
    case ScalarType.FIXED64:
      return "r.fixed64()";
    case ScalarType.SFIXED64:
      return "r.sfixed64()";
    case ScalarType.DOUBLE:
      return "r.double()";
    case ScalarType.FLOAT:
      return "r.float()";
  }
}

const is64 = (t: ScalarType) =>
  t === ScalarType.INT64 || t === ScalarType.UINT64 || t === ScalarType.SINT64 || t === ScalarType.FIXED64 || t === ScalarType.SFIXED64;

function zeroOf(t: ScalarType): string {
  if (t === ScalarType.STRING) return '""';
  if (t === ScalarType.BOOL) return "false";
  if (t === ScalarType.BYTES) return "new Uint8Array(0)";
  return is64(t) ? "0n" : "0";
}

/** The condition under which an implicit-presence scalar `x` (maybe undefined) is written. */
function setCond(t: ScalarType, x: string): string {
  switch (t) {
    case ScalarType.STRING:
      return `${x} !== undefined && ${x} !== ""`;
    case ScalarType.BOOL:
      return `${x} === true`;
    case ScalarType.BYTES:
      return `${x} !== undefined && ${x}.length > 0`;
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return `${x} !== undefined && !Object.is(${x}, 0)`;
    default:
      // loose: 0n, 0 and "0" are all zero, as protobuf-es
      return `${x} !== undefined && ${x} != ${is64(t) ? "0n" : "0"}`;
  }
}

const tag = (no: number, wt: number) => (no << 3) | wt;

function checkSupported(m: DescMessage) {
  for (const f of m.fields) {
    const where = `${m.typeName}.${f.name}`;
    if (f.presence === 3 /* LEGACY_REQUIRED */) throw new Error(`${where}: proto2 required fields are not supported`);
    if ((f.fieldKind === "message" || (f.fieldKind === "list" && f.listKind === "message")) && f.delimitedEncoding)
      throw new Error(`${where}: groups are not supported`);
    if ((f.fieldKind === "scalar" || (f.fieldKind === "list" && f.listKind === "scalar")) && f.longAsString)
      throw new Error(`${where}: jstype=JS_STRING is not supported`);
    if (f.fieldKind === "enum" && !f.enum.open) throw new Error(`${where}: closed (proto2) enums are not supported`);
    if (f.fieldKind === "enum" && f.enum.values[0]?.number !== 0) throw new Error(`${where}: enum without a zero first value`);
  }
}

// --- per-message code ---

/** A field with explicit presence (proto3 `optional`): written whenever set, zero or not. */
const explicit = (f: DescField) => !f.oneof && (f.fieldKind === "scalar" || f.fieldKind === "enum") && f.presence !== 2; /* IMPLICIT */

/** The tag and value of a singular (scalar, enum or message) field's value `x`. */
function writeSingular(f: DescField, x: string): string {
  if (f.fieldKind === "message") return `w.u32(${tag(f.number, LEN)}); const a = w.fork(); e${tsName(f.message)}(w, ${x}); w.join(a);`;
  if (f.fieldKind === "enum") return `w.u32(${tag(f.number, VARINT)}); w.int32(${x});`;
  if (f.fieldKind === "scalar") return `w.u32(${tag(f.number, wireOf(f.scalar))}); ${writeScalar(f.scalar, x)};`;
  throw new Error("not a singular field");
}

/** The JSON of a singular field's value `x`. */
function jsonSingular(f: DescField, x: string): string {
  if (f.fieldKind === "message") return `j${tsName(f.message)}(${x})`;
  if (f.fieldKind === "enum") return `${tsName(f.enum)}$names[${x}] ?? ${x}`;
  if (f.fieldKind === "scalar") return jsonOut(f.scalar, x);
  throw new Error("not a singular field");
}

function encoder(m: DescMessage): string {
  const n = tsName(m);
  const out: string[] = [`function e${n}(w: Writer, v: I<"${n}">): void {`];
  const sorted = m.fields.concat().sort((a, b) => a.number - b.number);
  if (sorted.length === 0) out[0] = `function e${n}(_w: Writer, _v: I<"${n}">): void {`;
  for (const f of sorted) {
    const x = `v.${f.localName}`;
    if (f.oneof) {
      out.push(`  { const o = v.${f.oneof.localName}; if (o?.case === "${f.localName}") { const x = o.value; ${writeSingular(f, "x")} } }`);
      continue;
    }
    if (explicit(f)) {
      out.push(`  { const x = ${x}; if (x != null) { ${writeSingular(f, "x")} } }`);
      continue;
    }
    switch (f.fieldKind) {
      case "scalar":
        out.push(`  { const x = ${x}; if (${setCond(f.scalar, "x")}) { w.u32(${tag(f.number, wireOf(f.scalar))}); ${writeScalar(f.scalar, "x")}; } }`);
        break;
      case "enum":
        out.push(`  { const x = ${x}; if (x !== undefined && x !== 0) { w.u32(${tag(f.number, VARINT)}); w.int32(x); } }`);
        break;
      case "message":
        out.push(`  { const x = ${x}; if (x != null) { w.u32(${tag(f.number, LEN)}); const a = w.fork(); e${tsName(f.message)}(w, x); w.join(a); } }`);
        break;
      case "list":
        if (f.listKind === "message")
          out.push(
            `  { const x = ${x}; if (x != null) for (const y of x) { w.u32(${tag(f.number, LEN)}); const a = w.fork(); e${tsName(f.message)}(w, y); w.join(a); } }`,
          );
        else {
          const t = f.listKind === "enum" ? ScalarType.INT32 : f.scalar;
          if (f.packed && wireOf(t) !== LEN)
            out.push(
              `  { const x = ${x}; if (x != null && x.length > 0) { w.u32(${tag(f.number, LEN)}); const a = w.fork(); for (const y of x) ${writeScalar(t, "y")}; w.join(a); } }`,
            );
          else out.push(`  { const x = ${x}; if (x != null) for (const y of x) { w.u32(${tag(f.number, wireOf(t))}); ${writeScalar(t, "y")}; } }`);
        }
        break;
      case "map": {
        const k = mapKeyFromString(f.mapKey, "k");
        let val: string;
        if (f.mapKind === "message") val = `w.u32(${tag(2, LEN)}); const b = w.fork(); e${tsName(f.message)}(w, y); w.join(b);`;
        else {
          const t = f.mapKind === "enum" ? ScalarType.INT32 : f.scalar;
          val = `w.u32(${tag(2, wireOf(t))}); ${writeScalar(t, "y")};`;
        }
        // string keys (all of the CRI's maps): a keys loop; others: entries (number-keyed records)
        const loop = f.mapKey === ScalarType.STRING ? "for (const k of Object.keys(x)) { const y = x[k]!;" : "for (const [k, y] of Object.entries(x)) {";
        out.push(
          `  { const x = ${x}; if (x != null) ${loop} w.u32(${tag(f.number, LEN)}); const a = w.fork(); w.u32(${tag(1, wireOf(f.mapKey))}); ${writeScalar(f.mapKey, k)}; ${val} w.join(a); } }`,
        );
        break;
      }
    }
  }
  out.push("}");
  return out.join("\n");
}

/** A map key (always a string in the object) converted to its scalar type for writing. */
function mapKeyFromString(t: ScalarType, k: string): string {
  if (t === ScalarType.STRING) return k;
  if (t === ScalarType.BOOL) return `${k} === "true"`;
  if (is64(t)) return `BigInt(${k})`;
  return `Number.parseInt(${k})`;
}

function defaults(m: DescMessage): string {
  const n = tsName(m);
  const parts = [`$typeName: "${m.typeName}"`];
  for (const o of m.oneofs) parts.push(`${o.localName}: { case: undefined }`);
  for (const f of m.fields) {
    if (f.oneof || explicit(f)) continue;
    if (f.fieldKind === "scalar") parts.push(`${f.localName}: ${zeroOf(f.scalar)}`);
    else if (f.fieldKind === "enum") parts.push(`${f.localName}: 0`);
    else if (f.fieldKind === "list") parts.push(`${f.localName}: []`);
    else if (f.fieldKind === "map") parts.push(`${f.localName}: {}`);
  }
  return `function n${n}(): pb.${n} {\n  return { ${parts.join(", ")} };\n}`;
}

function decoder(m: DescMessage): string {
  const n = tsName(m);
  const out: string[] = [
    `function d${n}(r: Reader, end: number, m: pb.${n}): pb.${n} {`,
    "  while (r.p < end) {",
    "    const t = r.tag();",
    "    switch (t) {",
  ];
  for (const f of m.fields) {
    const x = `m.${f.localName}`;
    if (f.oneof) {
      const o = `m.${f.oneof.localName}`;
      let t: number;
      let val: string;
      if (f.fieldKind === "message") {
        const s = tsName(f.message);
        t = tag(f.number, LEN);
        val = `d${s}(r, r.end(), ${o}.case === "${f.localName}" ? ${o}.value : n${s}())`;
      } else if (f.fieldKind === "enum") {
        t = tag(f.number, VARINT);
        val = "r.int32()";
      } else if (f.fieldKind === "scalar") {
        t = tag(f.number, wireOf(f.scalar));
        val = readScalar(f.scalar);
      } else throw new Error(`${f}: a oneof holds singular fields only`);
      out.push(`      case ${t}: ${o} = { case: "${f.localName}", value: ${val} }; break;`);
      continue;
    }
    switch (f.fieldKind) {
      case "scalar":
        out.push(`      case ${tag(f.number, wireOf(f.scalar))}: ${x} = ${readScalar(f.scalar)}; break;`);
        break;
      case "enum":
        out.push(`      case ${tag(f.number, VARINT)}: ${x} = r.int32(); break;`);
        break;
      case "message": {
        const s = tsName(f.message);
        out.push(`      case ${tag(f.number, LEN)}: ${x} = d${s}(r, r.end(), ${x} ?? n${s}()); break;`);
        break;
      }
      case "list":
        if (f.listKind === "message") {
          const s = tsName(f.message);
          out.push(`      case ${tag(f.number, LEN)}: ${x}.push(d${s}(r, r.end(), n${s}())); break;`);
        } else {
          const t = f.listKind === "enum" ? ScalarType.INT32 : f.scalar;
          const rd = readScalar(t);
          out.push(`      case ${tag(f.number, wireOf(t))}: ${x}.push(${rd}); break;`);
          if (wireOf(t) !== LEN) out.push(`      case ${tag(f.number, LEN)}: { const e = r.end(); while (r.p < e) ${x}.push(${rd}); r.done(e); break; }`);
        }
        break;
      case "map": {
        const kt = f.mapKey;
        let vRead: string;
        let vZero: string;
        let vTag: number;
        if (f.mapKind === "message") {
          const s = tsName(f.message);
          vTag = tag(2, LEN);
          vRead = `d${s}(r, r.end(), v ?? n${s}())`;
          vZero = `n${s}()`;
        } else if (f.mapKind === "enum") {
          vTag = tag(2, VARINT);
          vRead = "r.int32()";
          vZero = "0";
        } else {
          vTag = tag(2, wireOf(f.scalar));
          vRead = readScalar(f.scalar);
          vZero = zeroOf(f.scalar);
        }
        out.push(
          `      case ${tag(f.number, LEN)}: { const e = r.end(); let k: ${kt === ScalarType.STRING ? "string" : kt === ScalarType.BOOL ? "boolean" : is64(kt) ? "bigint" : "number"} = ${zeroOf(kt)}; let v: (typeof ${x})[keyof typeof ${x}] | undefined; while (r.p < e) { const u = r.tag(); if (u === ${tag(1, wireOf(kt))}) k = ${readScalar(kt)}; else if (u === ${vTag}) v = ${vRead}; else r.skip(u); } r.done(e); setOwn(${x}, String(k), v ?? ${vZero}); break; }`,
        );
        break;
      }
    }
  }
  out.push("      default: r.skip(t);", "    }", "  }", "  r.done(end);", "  return m;", "}");
  if (m.fields.length === 0)
    return `function d${n}(r: Reader, end: number, m: pb.${n}): pb.${n} {\n  while (r.p < end) r.skip(r.tag());\n  r.done(end);\n  return m;\n}`;
  return out.join("\n");
}

function jsonOut(t: ScalarType, x: string): string {
  if (is64(t)) return `String(${x})`;
  if (t === ScalarType.BYTES) return `base64(${x})`;
  if (t === ScalarType.DOUBLE || t === ScalarType.FLOAT) return `jFloatOut(${x})`;
  return x;
}

function toJson(m: DescMessage): string {
  const n = tsName(m);
  const out = [`function j${n}(v: I<"${n}">): JsonObject {`, "  const o: JsonObject = {};"];
  if (m.fields.length === 0) out[0] = `function j${n}(_v: I<"${n}">): JsonObject {`;
  for (const f of m.fields.concat().sort((a, b) => a.number - b.number)) {
    const x = `v.${f.localName}`;
    const k = JSON.stringify(f.jsonName);
    if (f.oneof) {
      out.push(`  { const o1 = v.${f.oneof.localName}; if (o1?.case === "${f.localName}") o[${k}] = ${jsonSingular(f, "o1.value")}; }`);
      continue;
    }
    if (explicit(f)) {
      out.push(`  { const x = ${x}; if (x != null) o[${k}] = ${jsonSingular(f, "x")}; }`);
      continue;
    }
    switch (f.fieldKind) {
      case "scalar":
        out.push(`  { const x = ${x}; if (${setCond(f.scalar, "x")}) o[${k}] = ${jsonOut(f.scalar, "x")}; }`);
        break;
      case "enum":
        out.push(`  { const x = ${x}; if (x !== undefined && x !== 0) o[${k}] = ${tsName(f.enum)}$names[x] ?? x; }`);
        break;
      case "message":
        out.push(`  { const x = ${x}; if (x != null) o[${k}] = j${tsName(f.message)}(x); }`);
        break;
      case "list": {
        const conv = f.listKind === "message" ? `j${tsName(f.message)}(y)` : f.listKind === "enum" ? `${tsName(f.enum)}$names[y] ?? y` : jsonOut(f.scalar, "y");
        out.push(`  { const x = ${x}; if (x != null && x.length > 0) o[${k}] = x.map((y) => ${conv}); }`);
        break;
      }
      case "map": {
        const conv = f.mapKind === "message" ? `j${tsName(f.message)}(y)` : f.mapKind === "enum" ? `${tsName(f.enum)}$names[y] ?? y` : jsonOut(f.scalar, "y");
        const loop = f.mapKey === ScalarType.STRING ? "for (const k of ks) { const y = x[k]!;" : "for (const [k, y] of Object.entries(x)) {";
        out.push(
          `  { const x = ${x}; if (x != null) { const ks = Object.keys(x); if (ks.length > 0) { const mo: JsonObject = {}; ${loop} setOwn(mo, k, ${conv}); } o[${k}] = mo; } } }`,
        );
        break;
      }
    }
  }
  out.push("  return o;", "}");
  return out.join("\n");
}

function jsonIn(t: ScalarType, x: string, fname: string): string {
  switch (t) {
    case ScalarType.STRING:
      return `jStr(${x}, ${fname})`;
    case ScalarType.BOOL:
      return `jBool(${x}, ${fname})`;
    case ScalarType.BYTES:
      return `jBytes(${x}, ${fname})`;
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return `jFloat(${x}, ${fname})`;
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return `jInt(${x}, ${fname}, false)`;
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return `jInt(${x}, ${fname}, true)`;
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return `jLong(${x}, ${fname}, true)`;
    default:
      return `jLong(${x}, ${fname}, false)`;
  }
}

/** A JSON map key (a string) checked against the key type; stored as the string protobuf-es stores. */
function jsonKey(t: ScalarType, fname: string): string {
  if (t === ScalarType.STRING) return "mk";
  if (t === ScalarType.BOOL) return `(mk === "true" || mk === "false" ? mk : String(jBool(mk, ${fname})))`;
  if (is64(t)) return `String(jLong(mk, ${fname}, ${t === ScalarType.UINT64 || t === ScalarType.FIXED64}))`;
  return `String(jInt(mk, ${fname}, ${t === ScalarType.UINT32 || t === ScalarType.FIXED32}))`;
}

function fromJson(m: DescMessage): string {
  const n = tsName(m);
  const out = [
    `function f${n}(j: unknown, ig: boolean): pb.${n} {`,
    `  const o = jObj(j, "message ${m.typeName}");`,
    `  const m = n${n}();`,
    "  for (const key of Object.keys(o)) {",
    "    const x = o[key];",
    "    switch (key) {",
  ];
  for (const f of m.fields) {
    const names = [...new Set([f.jsonName, f.name])].map((s) => `case ${JSON.stringify(s)}:`).join(" ");
    const fname = JSON.stringify(`${m.typeName}.${f.name}`);
    const x = `m.${f.localName}`;
    let body: string;
    if (f.oneof) {
      const o = `m.${f.oneof.localName}`;
      const set = (v: string) => `${o} = { case: "${f.localName}", value: ${v} };`;
      if (f.fieldKind === "message") body = set(`f${tsName(f.message)}(x, ig)`);
      else if (f.fieldKind === "enum")
        body = `{ const e = jEnum(x, ${fname}, ${tsName(f.enum)}, ig); if (e !== undefined) ${set(`e as pb.${tsName(f.enum)}`)} }`;
      else if (f.fieldKind === "scalar") body = set(jsonIn(f.scalar, "x", fname));
      else throw new Error(`${f}: a oneof holds singular fields only`);
      out.push(`      ${names} if (x !== null) ${body} break;`);
      continue;
    }
    switch (f.fieldKind) {
      case "scalar":
        body = `${x} = ${jsonIn(f.scalar, "x", fname)};`;
        break;
      case "enum":
        body = `{ const e = jEnum(x, ${fname}, ${tsName(f.enum)}, ig); if (e !== undefined) ${x} = e as pb.${tsName(f.enum)}; }`;
        break;
      case "message":
        body = `${x} = f${tsName(f.message)}(x, ig);`;
        break;
      case "list":
        if (f.listKind === "message") body = `${x} = jArr(x, ${fname}).map((y) => f${tsName(f.message)}(y, ig));`;
        else if (f.listKind === "enum")
          body = `for (const y of jArr(x, ${fname})) { const e = jEnum(y, ${fname}, ${tsName(f.enum)}, ig); if (e !== undefined) ${x}.push(e as pb.${tsName(f.enum)}); }`;
        else body = `${x} = jArr(x, ${fname}).map((y) => ${jsonIn(f.scalar, "y", fname)});`;
        break;
      case "map": {
        let conv: string;
        if (f.mapKind === "message") conv = `setOwn(${x}, ${jsonKey(f.mapKey, fname)}, f${tsName(f.message)}(y, ig));`;
        else if (f.mapKind === "enum")
          conv = `{ const e = jEnum(y, ${fname}, ${tsName(f.enum)}, ig); if (e !== undefined) setOwn(${x}, ${jsonKey(f.mapKey, fname)}, e as pb.${tsName(f.enum)}); }`;
        else conv = `setOwn(${x}, ${jsonKey(f.mapKey, fname)}, ${jsonIn(f.scalar, "y", fname)});`;
        body = `{ const mo = jObj(x, ${JSON.stringify(`field ${m.typeName}.${f.name}`)}); for (const mk of Object.keys(mo)) { const y = mo[mk]; ${conv} } }`;
        break;
      }
    }
    out.push(`      ${names} if (x !== null) ${body} break;`);
  }
  out.push(
    `      default: if (!ig) throw new JsonError(\`cannot decode message ${m.typeName} from JSON: key "\${key}" is unknown\`);`,
    "    }",
    "  }",
    "  return m;",
    "}",
  );
  if (m.fields.length === 0)
    return `function f${n}(j: unknown, ig: boolean): pb.${n} {\n  const o = jObj(j, "message ${m.typeName}");\n  if (!ig) for (const key of Object.keys(o)) throw new JsonError(\`cannot decode message ${m.typeName} from JSON: key "\${key}" is unknown\`);\n  return n${n}();\n}`;
  return out.join("\n");
}

function enumCode(e: DescEnum): string {
  const n = tsName(e);
  const vals = e.values.map((v) => `  ${v.name}: ${v.number} as pb.${n}.${v.localName},`);
  const names = e.values.map((v) => `${v.number}: ${JSON.stringify(v.name)}`);
  return [
    `/** ${e.typeName} (the values of api_pb.ts's enum, without evaluating it). */`,
    `export const ${n} = {`,
    ...vals,
    "} as const;",
    `export type ${n} = pb.${n};`,
    `const ${n}$names: Record<number, string> = { ${names.join(", ")} };`,
  ].join("\n");
}

// --- the file ---

for (const m of messages) checkSupported(m);

const code: string[] = [
  `// @generated by scripts/gen-codec.ts from the descriptor of ${file.proto.name} (${basename(PB)}); do not edit.`,
  "// A reflection-free codec of every message of that file: run `bun run gen` to regenerate.",
  "/* eslint-disable */",
  "",
  'import type { JsonObject, MessageInitShape } from "@bufbuild/protobuf";',
  `import type * as pb from "./${basename(PB)}";`,
  "import {",
  "  type Codec,",
  "  JsonError,",
  "  Reader,",
  "  type ServiceCodec,",
  "  type Writer,",
  "  base64,",
  "  codec,",
  "  jArr,",
  "  jBool,",
  "  jBytes,",
  "  jEnum,",
  "  jFloat,",
  "  jFloatOut,",
  "  jInt,",
  "  jLong,",
  "  jObj,",
  "  jStr,",
  "  setOwn,",
  `} from "${WIRE}";`,
  "",
  "/** The init shape (what a handler may return) of message N: api_pb.ts's MessageInitShape. */",
  "type I<N extends keyof Schemas> = MessageInitShape<Schemas[N]>;",
  "",
];

code.push("interface Schemas {");
for (const m of messages) code.push(`  ${tsName(m)}: typeof pb.${tsName(m)}Schema;`);
code.push("}", "");

for (const e of enums) code.push(enumCode(e), "");

for (const m of messages) {
  const n = tsName(m);
  code.push(`// --- ${m.typeName} ---`, "");
  code.push(`export const ${n}Codec: Codec<pb.${n}, I<"${n}">> = /*@__PURE__*/ codec("${m.typeName}", e${n}, d${n}, n${n}, j${n}, f${n});`, "");
  code.push(defaults(m), "", encoder(m), "", decoder(m), "", toJson(m), "", fromJson(m), "");
}

for (const s of file.services) {
  code.push(`/** ${s.typeName}: every RPC with its codecs. */`, `export const ${s.name}: ServiceCodec = {`, `  typeName: "${s.typeName}",`, "  methods: [");
  for (const m of s.methods) {
    if (m.methodKind !== "unary" && m.methodKind !== "server_streaming") throw new Error(`${s.typeName}.${m.name}: ${m.methodKind} RPCs are not supported`);
    code.push(
      `    { name: "${m.name}", localName: "${m.localName}", kind: "${m.methodKind}", input: ${tsName(m.input)}Codec as Codec<unknown, never>, output: ${tsName(m.output)}Codec as Codec<unknown, never> },`,
    );
  }
  code.push("  ],", "};", "");
}

await Bun.write(OUT, code.join("\n"));
console.log(`wrote ${OUT}: ${messages.length} messages, ${enums.length} enums, ${file.services.length} services`);
