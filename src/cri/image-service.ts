import type { ImageService } from "../gen/runtime/v1/api_pb.ts";
import { notBuilt, type Handlers } from "./bridge.ts";
import type { Services } from "./runtime-service.ts";

/** ImageService handlers: validate → delegate → convert. */
export function imageService(_d: Services): Handlers<typeof ImageService> {
  return {
    listImages: notBuilt,
    streamImages: notBuilt,
    imageStatus: notBuilt,
    pullImage: notBuilt,
    removeImage: notBuilt,
    imageFsInfo: notBuilt,
  };
}
