import type { ImageService } from "../gen/runtime/v1/api_pb.ts";
import { invalid } from "../errors.ts";
import type { Handlers } from "./bridge.ts";
import { imageInfo, toImage } from "./convert/image.ts";
import { LIST_CHUNK, inChunks } from "./convert/stats.ts";
import { toNanos } from "./convert/time.ts";
import type { Services } from "./runtime-service.ts";

/** ImageService handlers: validate → delegate → convert. */
export function imageService(d: Services): Handlers<typeof ImageService> {
  return {
    listImages: async (req) => ({ images: d.images.list(req.filter?.image?.image || undefined).map(toImage) }),
    streamImages: async (req, _ctx, send) => {
      await inChunks(d.images.list(req.filter?.image?.image || undefined).map(toImage), (c) => send({ images: c }), LIST_CHUNK);
    },
    imageStatus: async (req) => {
      const ref = req.image?.image ?? "";
      if (!ref) throw invalid("ImageSpec.Image is required");
      // A missing image is an empty answer, not an error (api.proto, rpc ImageStatus).
      const r = d.images.status(ref);
      if (!r) return {};
      return { image: toImage(r), info: req.verbose ? imageInfo(r) : {} };
    },
    pullImage: async (req, ctx) => {
      const ref = req.image?.image ?? "";
      if (!ref) throw invalid("ImageSpec.Image is required");
      const a = req.auth;
      const r = await d.images.pull(ref, {
        signal: ctx.signal,
        namespace: req.sandboxConfig?.metadata?.namespace || undefined,
        auth: a
          ? {
              username: a.username,
              password: a.password,
              auth: a.auth,
              serverAddress: a.serverAddress,
              identityToken: a.identityToken,
              registryToken: a.registryToken,
            }
          : undefined,
      });
      return { imageRef: r.id };
    },
    removeImage: async (req) => {
      const ref = req.image?.image ?? "";
      if (!ref) throw invalid("ImageSpec.Image is required");
      await d.images.remove(ref, (id) => d.containers.usesImage(id));
      return {};
    },
    imageFsInfo: async () => {
      const img = d.images.fsInfo();
      const ctr = await d.containerFs();
      const fs = (u: { mountpoint: string; usedBytes: number; inodesUsed: number; timestamp: number }) => ({
        timestamp: toNanos(u.timestamp),
        fsId: { mountpoint: u.mountpoint },
        usedBytes: { value: BigInt(u.usedBytes) },
        inodesUsed: { value: BigInt(u.inodesUsed) },
      });
      return { imageFilesystems: [fs(img)], containerFilesystems: [fs(ctr)] };
    },
  };
}
