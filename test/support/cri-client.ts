import { create, fromBinary, toBinary, type DescMessage, type DescService, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import { credentials, makeGenericClientConstructor, Metadata, type Client, type ClientReadableStream, type ServiceError } from "@grpc/grpc-js";
import { ImageService, RuntimeService } from "../../src/gen/runtime/v1/api_pb.ts";

type Method = { input: DescMessage; output: DescMessage; methodKind: string };
type Unary<M> = M extends { input: infer I extends DescMessage; output: infer O extends DescMessage; methodKind: "unary" }
  ? (req?: MessageInitShape<I>, opts?: { timeoutMs?: number }) => Promise<MessageShape<O>>
  : M extends { input: infer I extends DescMessage; output: infer O extends DescMessage; methodKind: "server_streaming" }
    ? (req?: MessageInitShape<I>, opts?: { timeoutMs?: number; signal?: AbortSignal }) => AsyncIterable<MessageShape<O>>
    : never;
type ClientOf<S extends { method: Record<string, Method> }> = { [K in keyof S["method"]]: Unary<S["method"][K]> };

/** A typed CRI client over a unix socket, sending `:authority localhost` like kubelet and crictl ≥ 1.30. */
export type CriClient = ClientOf<typeof RuntimeService> & ClientOf<typeof ImageService> & { close(): void };

/**
 * Connects to the CRI socket at `socket`. `authority` replaces the `:authority` sent ("localhost");
 * the benches pass the socket path, as grpc-go clients before crictl 1.30 (critest v1.26) send it.
 */
export function criClient(socket: string, o: { authority?: string } = {}): CriClient {
  const out: Record<string, unknown> = {};
  const clients: Client[] = [];
  for (const svc of [RuntimeService, ImageService] as DescService[]) {
    const def: Record<string, unknown> = {};
    for (const m of svc.methods) {
      def[m.localName] = {
        path: `/${svc.typeName}/${m.name}`,
        requestStream: false,
        responseStream: m.methodKind === "server_streaming",
        requestSerialize: (x: never) => Buffer.from(toBinary(m.input, x)),
        requestDeserialize: (b: Buffer) => fromBinary(m.input, b),
        responseSerialize: (x: never) => Buffer.from(toBinary(m.output, x)),
        responseDeserialize: (b: Buffer) => fromBinary(m.output, b),
      };
    }
    const Ctor = makeGenericClientConstructor(def as never, svc.name);
    const c = new Ctor(`unix:${socket}`, credentials.createInsecure(), {
      "grpc.default_authority": o.authority ?? "localhost",
      "grpc.max_receive_message_length": 100 * 1024 * 1024,
    }) as unknown as Client & Record<string, (...args: unknown[]) => unknown>;
    clients.push(c);
    for (const m of svc.methods) {
      const deadline = (ms?: number) => ({ deadline: Date.now() + (ms ?? 60_000) });
      if (m.methodKind === "unary") {
        out[m.localName] = (req: unknown = {}, opts: { timeoutMs?: number } = {}) =>
          new Promise((resolve, reject) =>
            c[m.localName]!.call(c, create(m.input, req as never), new Metadata(), deadline(opts.timeoutMs), (err: ServiceError | null, res: unknown) =>
              err ? reject(err) : resolve(res),
            ),
          );
      } else {
        out[m.localName] = (req: unknown = {}, opts: { timeoutMs?: number; signal?: AbortSignal } = {}) => {
          const call = c[m.localName]!.call(
            c,
            create(m.input, req as never),
            new Metadata(),
            deadline(opts.timeoutMs ?? 600_000),
          ) as ClientReadableStream<unknown>;
          opts.signal?.addEventListener("abort", () => call.cancel());
          return call;
        };
      }
    }
  }
  out.close = () => {
    for (const c of clients) c.close();
  };
  return out as CriClient;
}
