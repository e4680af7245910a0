import { expect, test } from "bun:test";
import { HttpRequestError, headerList, isWebSocketRequest, parseRequestHead } from "../../../src/streaming/http.ts";
import { negotiateProtocol } from "../../../src/streaming/spdy/upgrade.ts";
import { negotiateSubprotocol } from "../../../src/streaming/websocket/handshake.ts";
import { portsFromQuery } from "../../../src/streaming/portforward/websocket.ts";

test("request heads: path, query, repeated and comma-separated headers", () => {
  const h = parseRequestHead(
    "POST /exec/abc?command=sh&command=-c HTTP/1.1\r\nHost: x\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\nx-stream-protocol-version: v3.channel.k8s.io, v2.channel.k8s.io\r\nConnection: keep-alive, Upgrade\r\nUpgrade: WebSocket",
  );
  expect({ method: h.method, path: h.path, cmd: h.query.getAll("command") }).toEqual({ method: "POST", path: "/exec/abc", cmd: ["sh", "-c"] });
  expect(headerList(h, "X-Stream-Protocol-Version")).toEqual(["v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io"]);
  expect(isWebSocketRequest(h)).toBe(true);
  expect(parseRequestHead("GET http://127.0.0.1:1234/attach/t0k?x=1 HTTP/1.1").target).toBe("/attach/t0k?x=1");
  expect(() => parseRequestHead("GARBAGE")).toThrow(HttpRequestError);
  expect(() => parseRequestHead("GET / HTTP/1.1\r\nno colon")).toThrow(HttpRequestError);
});

test("negotiation: the client's order wins", () => {
  expect(negotiateProtocol(["v5.channel.k8s.io", "v3.channel.k8s.io", "v4.channel.k8s.io"], ["v4.channel.k8s.io", "v3.channel.k8s.io"])).toBe(
    "v3.channel.k8s.io",
  );
  expect(negotiateProtocol(["x"], ["v4.channel.k8s.io"])).toBeUndefined();
  expect(negotiateSubprotocol([], ["", "v4.channel.k8s.io"])).toBe("");
  expect(negotiateSubprotocol([], ["v4.channel.k8s.io"])).toBeUndefined();
});

test("WebSocket port-forward ports come from port= or ports=", () => {
  expect(portsFromQuery(new URLSearchParams("port=80,8080&port=90"))).toEqual([80, 8080, 90]);
  expect(portsFromQuery(new URLSearchParams("ports=443"))).toEqual([443]);
  expect(portsFromQuery(new URLSearchParams("port=abc"))).toBe('unable to parse "abc" as a port');
  expect(portsFromQuery(new URLSearchParams("port=0"))).toBe('port "0" must be > 0');
  expect(portsFromQuery(new URLSearchParams(""))).toEqual([]);
});
