import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ImageSchema } from "../../gen/runtime/v1/api_pb.ts";
import type { ImageRecord } from "../../image/index.ts";

/** An image record as a CRI Image: uid only for a numeric User, username otherwise. */
export function toImage(r: ImageRecord): MessageInitShape<typeof ImageSchema> {
  return {
    id: r.id,
    repoTags: r.repoTags,
    repoDigests: r.repoDigests,
    size: BigInt(r.size),
    ...(r.uid !== undefined ? { uid: { value: BigInt(r.uid) } } : {}),
    username: r.username ?? "",
    spec: { image: r.id, annotations: {} },
    pinned: r.pinned,
  };
}

/** ImageStatus verbose info, as CRI-O: the image config under "info". */
export function imageInfo(r: ImageRecord): Record<string, string> {
  return { info: JSON.stringify({ id: r.id, imageSpec: r.config, manifestDigest: r.manifestDigest, pulledAt: new Date(r.pulledAt).toISOString() }) };
}
