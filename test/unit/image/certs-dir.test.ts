import { expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tlsOptionsFor } from "../../../src/image/certs-dir.ts";

test("certs.d/HOST:PORT: every *.crt is a CA next to the system store, *.cert + *.key is the client pair", () => {
  const dir = mkdtempSync(join(tmpdir(), "certsd-"));
  try {
    const h = join(dir, "reg.example.com:5000");
    mkdirSync(h);
    writeFileSync(join(h, "ca.crt"), "CA-ONE");
    writeFileSync(join(h, "extra.crt"), "CA-TWO");
    writeFileSync(join(h, "client.cert"), "CLIENT-CERT");
    writeFileSync(join(h, "client.key"), "CLIENT-KEY");
    writeFileSync(join(h, "orphan.cert"), "NO-KEY");
    const o = tlsOptionsFor(dir, "reg.example.com:5000", false);
    expect(o.ca!.slice(-2)).toEqual(["CA-ONE", "CA-TWO"]);
    expect([o.cert, o.key, o.rejectUnauthorized]).toEqual(["CLIENT-CERT", "CLIENT-KEY", undefined]);
    // another port is another directory; insecure turns verification off
    const other = tlsOptionsFor(dir, "reg.example.com", true);
    expect([other.cert, other.rejectUnauthorized]).toEqual([undefined, false]);
    expect(other.ca?.some((c) => c.startsWith("CA-"))).toBeFalsy();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
