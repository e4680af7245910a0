import { expect, test } from "bun:test";
import { parseResult } from "../../../src/network/result.ts";

const ifaces = [
  { name: "cni0", mac: "aa:aa:aa:aa:aa:aa" },
  { name: "veth1", mac: "bb:bb:bb:bb:bb:bb" },
  { name: "eth0", mac: "cc:cc:cc:cc:cc:cc", sandbox: "/run/ns/net/p" },
];

test("a 1.0.0 result: family from the address, IPv4 first, host-side addresses skipped", () => {
  const r = parseResult(
    {
      cniVersion: "1.0.0",
      interfaces: ifaces,
      ips: [
        { address: "fd00:10:85::5/64", gateway: "fd00:10:85::1", interface: 2 },
        { address: "10.85.0.5/16", gateway: "10.85.0.1", interface: 2 },
        { address: "10.85.0.1/16", interface: 0 },
      ],
      routes: [{ dst: "0.0.0.0/0" }, { dst: "::/0", gw: "fd00:10:85::1" }],
      dns: { nameservers: ["10.0.0.10"], search: ["svc.cluster.local"] },
    },
    "1.0.0",
  );
  expect(r).toEqual({
    cniVersion: "1.0.0",
    ips: ["10.85.0.5", "fd00:10:85::5"],
    interfaces: ifaces,
    routes: [{ dst: "0.0.0.0/0" }, { dst: "::/0", gw: "fd00:10:85::1" }],
    dns: { nameservers: ["10.0.0.10"], search: ["svc.cluster.local"], options: [] },
  });
});

test("a 0.4.0 result with ips[].version", () => {
  const r = parseResult(
    {
      cniVersion: "0.4.0",
      interfaces: ifaces,
      ips: [
        { version: "6", address: "1100:200::9/24", interface: 2 },
        { version: "4", address: "10.85.0.9/16", interface: 2 },
      ],
    },
    "0.4.0",
  );
  expect(r.ips).toEqual(["10.85.0.9", "1100:200::9"]);
});

test("a 0.2.0 result with ip4/ip6", () => {
  const r = parseResult(
    { cniVersion: "0.2.0", ip4: { ip: "10.1.0.4/16", gateway: "10.1.0.1", routes: [{ dst: "0.0.0.0/0" }] }, ip6: { ip: "fd00::4/64" } },
    "0.2.0",
  );
  expect(r.ips).toEqual(["10.1.0.4", "fd00::4"]);
  expect(r.routes).toEqual([{ dst: "0.0.0.0/0" }]);
});

test("an IPAM-style result without interfaces, and an empty one", () => {
  expect(parseResult({ ips: [{ address: "10.0.0.2/24" }, { address: "10.0.0.2/24" }] }, "1.0.0").ips).toEqual(["10.0.0.2"]);
  expect(parseResult(undefined, "0.4.0")).toEqual({
    cniVersion: "0.4.0",
    ips: [],
    interfaces: [],
    routes: [],
    dns: { nameservers: [], search: [], options: [] },
  });
});
