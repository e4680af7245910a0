/** Pod networking through CNI: the CniManager and the types the sandbox code and the Status RPC need. */
export { CniManager, DEFAULT_PLUGIN_DIRS, POD_IFNAME, type CniManagerOptions, type NetworkStatus } from "./manager.ts";
export type { PodNetwork, PortMapping, Bandwidth } from "./pod.ts";
export type { NetworkResult } from "./result.ts";
export type { NetworkList, ConfProblem } from "./conf.ts";
export { CniPluginError } from "./cni.ts";
export { hostAddresses } from "./host-addresses.ts";
