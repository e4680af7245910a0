import type { PullAuth } from "./auth.ts";

/** Options of the ImageService (the lead maps crio.conf [crio.image] onto them). */
export interface ImageServiceOptions {
  /** The image store's directory (paths.images). */
  root: string;
  /** containers-registries.conf(5); absent file = no registries, no search list. */
  registriesConfPath?: string;
  /** registries.conf.d drop-in directory. */
  registriesConfDir?: string;
  /** containers-policy.json(5); undefined = accept anything (no policy configured). A missing file refuses pulls. */
  policyPath?: string;
  /**
   * signature_policy_dir: `<dir>/<namespace>.json`, when it exists, is the policy of pulls (and
   * container creations) for pods of that namespace instead of policyPath.
   */
  policyDir?: string;
  /**
   * containers-registries.d(5) directory (signature storage); default
   * `$HOME/.config/containers/registries.d` when it exists, else /etc/containers/registries.d.
   */
  registriesDirPath?: string;
  /** crio.conf global_auth_file: consulted after the pull's own credentials. */
  globalAuthFile?: string;
  /** More auth files (e.g. /run/containers/0/auth.json), consulted in order after globalAuthFile. */
  authFiles?: string[];
  /** containers-certs.d(5) directory; default /etc/containers/certs.d. */
  certsDir?: string;
  /** Layers downloaded at once; default 3. */
  maxParallelDownloads?: number;
  /** Cancel a pull that receives no byte for this long; 0 or undefined = never. */
  pullProgressTimeoutMs?: number;
  /** CRI-O pinned_images: exact names, "prefix*" globs, "*keyword*". */
  pinnedImages?: string[];
  /** pause_image: always pinned. */
  pauseImage?: string;
  /** Platform to pull ("os/arch[/variant]"); default: this machine's. */
  platform?: string;
  /** Overrides registries.conf short-name-mode (crio.conf short_name_mode). */
  shortNameMode?: "enforcing" | "permissive" | "disabled";
  /** HTTP User-Agent; default "crio-ts". */
  userAgent?: string;
  /** crio.conf insecure_registries: HOST[:PORT] or CIDR entries treated as registries.conf `insecure`. */
  insecureRegistries?: string[];
  /** crio.conf big_files_temporary_dir: layer blobs are downloaded here; default the store's tmp/. */
  bigFilesTemporaryDir?: string;
}

/** Per-pull options. */
export interface PullOptions {
  /** The CRI AuthConfig, if the kubelet sent one. */
  auth?: PullAuth;
  /** An auth file consulted before global_auth_file for this pull (pause_image_auth_file). */
  authFile?: string;
  /** "os/arch[/variant]" for this pull. */
  platform?: string;
  /** The pod's namespace (PullImage's sandbox config): selects `<policyDir>/<namespace>.json`. */
  namespace?: string;
  signal?: AbortSignal;
  onProgress?: (p: PullProgress) => void;
}

/** What a pull reports as it goes (for `crio pull` progress bars and logs). */
export type PullProgress =
  | { type: "resolving"; ref: string; source: string }
  | { type: "manifest"; ref: string; source: string; manifestDigest: string; layers: Array<{ digest: string; size: number; mediaType: string }> }
  | { type: "layer"; digest: string; state: "exists" | "downloading" | "unpacking" | "done"; current: number; total: number }
  | { type: "done"; ref: string; id: string };

/** An image as the domain reports it (JSON-safe). */
export interface ImageRecord {
  /** "sha256:<hex>" digest of the image config. */
  id: string;
  repoTags: string[];
  repoDigests: string[];
  /** Bytes of the image's uncompressed layers. */
  size: number;
  /** The config's User as given ("1000:1000", "app"). */
  user?: string;
  /** Numeric user of the config's User, when it is a number. */
  uid?: number;
  /** User name of the config's User, when it is not a number. */
  username?: string;
  pinned: boolean;
  /** The OCI image config (os, architecture, config{Env,Entrypoint,Cmd,…}, rootfs, history). */
  config: OciImageConfig;
  /** Digest of the platform-specific image manifest. */
  manifestDigest: string;
  /** diff_ids of the layers, lowest first. */
  layers: string[];
  /** Milliseconds since the epoch of the last pull. */
  pulledAt: number;
}

/** The parts of an OCI image config the runtime reads; other fields are kept as given. */
/** An image as a container is created from it: names, run config, unpacked layer dirs (lowest first). */
export interface ContainerImage {
  id: string;
  name: string;
  config: NonNullable<OciImageConfig["config"]>;
  layers: string[];
}

export interface OciImageConfig {
  architecture?: string;
  os?: string;
  variant?: string;
  created?: string;
  config?: {
    User?: string;
    Env?: string[];
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    WorkingDir?: string;
    Labels?: Record<string, string> | null;
    StopSignal?: string;
    Volumes?: Record<string, object> | null;
    ExposedPorts?: Record<string, object> | null;
    [k: string]: unknown;
  };
  rootfs: { type: string; diff_ids: string[] };
  history?: unknown[];
  [k: string]: unknown;
}

/** Image filesystem usage (ImageFsInfo). */
export interface ImageFsInfo {
  /** The store's root directory. */
  mountpoint: string;
  usedBytes: number;
  inodesUsed: number;
  /** Milliseconds since the epoch. */
  timestamp: number;
}
