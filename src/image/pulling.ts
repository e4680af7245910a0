/**
 * The pull machinery — the registry client, manifests, layer downloads and unpacking, signature
 * checks — in one chunk that service.ts imports on the first pull or signature check: a daemon
 * that only lists and runs stored images does not load or evaluate it.
 */
export { policyVerifier, pullImage } from "./pull.ts";
export { RegistryClient } from "./registry-client.ts";
