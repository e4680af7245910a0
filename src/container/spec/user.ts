import type { LinuxContainerSecurityContext } from "../../gen/runtime/v1/api_pb.ts";
import { invalid } from "../../errors.ts";
import type { GeneratedFile } from "./types.ts";

/** One line of /etc/passwd. */
export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/** One line of /etc/group. */
export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

/** The process identity of a container. */
export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  /** The passwd name when the uid has an entry. */
  name?: string;
  home?: string;
}

/** Parses /etc/passwd text; malformed lines are skipped. */
export function parsePasswd(text: string | undefined): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of lines(text)) {
    const f = line.split(":");
    if (f.length < 4) continue;
    const uid = toId(f[2]);
    const gid = toId(f[3]);
    if (uid === undefined || gid === undefined) continue;
    out.push({ name: f[0] ?? "", uid, gid, home: f[5] ?? "" });
  }
  return out;
}

/** Parses /etc/group text; malformed lines are skipped. */
export function parseGroup(text: string | undefined): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of lines(text)) {
    const f = line.split(":");
    if (f.length < 3) continue;
    const gid = toId(f[2]);
    if (gid === undefined) continue;
    out.push({ name: f[0] ?? "", gid, members: (f[3] ?? "").split(",").filter(Boolean) });
  }
  return out;
}

/**
 * Resolves a user string of the image spec ("name", "uid", "name:group", "uid:gid", …) the way runc's
 * GetExecUser does: names must exist; a numeric uid without an entry gets gid 0; the supplementary
 * groups are the groups listing the user as a member, only when no group was given explicitly.
 */
export function resolveUserString(spec: string, passwd: PasswdEntry[], groups: GroupEntry[]): ResolvedUser {
  const [userPart = "", groupPart] = splitOnce(spec, ":");
  const userArg = userPart === "" ? "0" : userPart;
  const entry = passwd.find((p) => p.name === userArg || String(p.uid) === userArg);
  let uid: number;
  let gid = 0;
  let name: string | undefined;
  let home: string | undefined;
  if (entry) {
    ({ uid, gid, name, home } = entry);
  } else {
    const n = toId(userArg);
    if (n === undefined) throw invalid(`unable to find user ${userArg}: no matching entries in passwd file`);
    uid = n;
  }
  const additionalGids: number[] = [];
  if (groupPart !== undefined && groupPart !== "") {
    const g = groups.find((x) => x.name === groupPart || String(x.gid) === groupPart);
    if (g) gid = g.gid;
    else {
      const n = toId(groupPart);
      if (n === undefined) throw invalid(`unable to find group ${groupPart}: no matching entries in group file`);
      gid = n;
    }
  } else if (name !== undefined) {
    for (const g of groups) if (g.members.includes(name)) additionalGids.push(g.gid);
  }
  return { uid, gid, additionalGids, name, home };
}

/** Inputs of resolveContainerUser. */
export interface UserInput {
  securityContext?: LinuxContainerSecurityContext;
  imageUser: string;
  etcPasswd?: string;
  etcGroup?: string;
  /** HOME from the process env, or the working dir, for a generated passwd entry. */
  home: string;
  runDir: string;
  /** Container paths that CRI mounts cover (a mounted /etc/passwd is never regenerated). */
  mountedPaths: Set<string>;
}

/**
 * CRI-O's setupContainerUser: run_as_username, then run_as_user, then the image's User decide the
 * user; run_as_group overrides the group; supplemental groups follow the Merge or Strict policy.
 * When the uid (gid) has no entry in the image's passwd (group) file, a copy with an added entry is
 * returned in `files` and bind-mounted over /etc/passwd (/etc/group), so `id` and shells work.
 */
export function resolveContainerUser(u: UserInput): { user: ResolvedUser; files: GeneratedFile[]; mounts: Array<{ source: string; destination: string }> } {
  const sc = u.securityContext;
  if (sc?.runAsGroup && !sc.runAsUser && !sc.runAsUsername) throw invalid("user group is specified without user or username");
  let spec = u.imageUser;
  if (sc?.runAsUser) spec = String(sc.runAsUser.value);
  if (sc?.runAsUsername) spec = sc.runAsUsername;
  const passwd = parsePasswd(u.etcPasswd);
  const groups = parseGroup(u.etcGroup);
  const r = resolveUserString(spec, passwd, groups);
  if (sc?.runAsGroup) r.gid = Number(sc.runAsGroup.value);

  const gids: number[] = [r.gid];
  const add = (g: number) => {
    if (!gids.includes(g)) gids.push(g);
  };
  const strict = sc?.supplementalGroupsPolicy === 1; // SupplementalGroupsPolicy.Strict
  if (!strict) r.additionalGids.forEach(add);
  for (const g of sc?.supplementalGroups ?? []) add(Number(g));

  const files: GeneratedFile[] = [];
  const mounts: Array<{ source: string; destination: string }> = [];
  const etcMounted = u.mountedPaths.has("/etc");
  if (!etcMounted && !u.mountedPaths.has("/etc/passwd") && u.etcPasswd && !passwd.some((p) => p.uid === r.uid)) {
    const name = sc?.runAsUsername || "default";
    const home = u.home || "/tmp";
    const path = `${u.runDir}/passwd`;
    files.push({ path, mode: 0o644, content: withNewline(u.etcPasswd) + `${name}:x:${r.uid}:${r.gid}:${name} user:${home}:/sbin/nologin\n` });
    mounts.push({ source: path, destination: "/etc/passwd" });
  }
  if (!etcMounted && !u.mountedPaths.has("/etc/group") && u.etcGroup && !groups.some((g) => g.gid === r.gid)) {
    const path = `${u.runDir}/group`;
    files.push({ path, mode: 0o644, content: withNewline(u.etcGroup) + `${r.gid}:x:${r.gid}:\n` });
    mounts.push({ source: path, destination: "/etc/group" });
  }
  return { user: { ...r, additionalGids: gids }, files, mounts };
}

// --- internal ---

function lines(text: string | undefined): string[] {
  if (!text) return [];
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
}

function toId(s: string | undefined): number | undefined {
  if (s === undefined || !/^\d+$/.test(s)) return undefined;
  const n = Number(s);
  return n <= 0xffffffff ? n : undefined;
}

function splitOnce(s: string, sep: string): [string, string | undefined] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, undefined] : [s.slice(0, i), s.slice(i + 1)];
}

function withNewline(s: string): string {
  return s === "" || s.endsWith("\n") ? s : s + "\n";
}
