// install.sh into a DESTDIR with a fake package manager and systemctl first on PATH (nothing
// real is installed and systemd is never touched): files, manifest, idempotence, operator
// files kept, the three binary sources, distributions, failures naming their step, and an
// uninstall that leaves the tree as it was. The unit file is checked with systemd-analyze. As
// root: a tree whose daemon ran a pod is uninstalled and nothing the daemon made is left.
import { describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { join, relative, resolve } from "node:path";
import { CRIO, tempDir, waitFor } from "../harness.ts";
import { criClient, type CriClient } from "../support/cri-client.ts";
import { busyboxImage, imageRef, pauseImage, pushImage } from "../support/images.ts";
import { ctrConfig, podConfig } from "../support/pods.ts";
import { startRegistry } from "../support/registry.ts";
import { cleanupNet, rulesMentioning, testNet, type TestNet } from "../support/network.ts";

const REPO = resolve(import.meta.dir, "../..");
const SCRIPT = join(REPO, "install.sh");

/** A DESTDIR, a fake bin dir (apt-get, dpkg-query, dnf, rpm, systemctl, npm logging to pm.log) and a runner. */
function world(o: { installed?: string[] } = {}) {
  const t = tempDir("crio-install-");
  const dest = join(t.path, "root");
  const fake = join(t.path, "fakebin");
  const log = join(t.path, "pm.log");
  mkdirSync(dest);
  mkdirSync(fake);
  writeFileSync(log, "");
  const installed = (o.installed ?? []).join(" ");
  const shim = (name: string, body: string) => {
    writeFileSync(join(fake, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(fake, name), 0o755);
  };
  for (const pm of ["apt-get", "dnf", "yum", "systemctl"]) shim(pm, `echo "${pm} $*" >> ${log}`);
  shim("dpkg-query", `for p in ${installed}; do [ "$p" = "$4" ] && { printf 'install ok installed'; exit 0; }; done; exit 1`);
  shim("rpm", `for p in ${installed}; do [ "$p" = "$2" ] && exit 0; done; exit 1`);
  const run = (args: string[] = [], env: Record<string, string> = {}, sh: string[] = ["sh"], script = SCRIPT) => {
    const p = Bun.spawnSync([...sh, script, ...args], {
      env: { PATH: `${fake}:/usr/sbin:/usr/bin:/sbin:/bin`, DESTDIR: dest, CRIO_BINARY: CRIO, HOME: t.path, ...env },
      cwd: t.path,
      stdout: "pipe",
      stderr: "pipe",
    });
    return { code: p.exitCode, out: p.stdout.toString() + p.stderr.toString(), stderr: p.stderr.toString() };
  };
  return { dir: t.path, dest, fake, log: () => readFileSync(log, "utf8"), run, shim, [Symbol.dispose]: () => t[Symbol.dispose]() };
}

/** Every entry below `root`: type, mode and content hash, sorted. */
function snapshot(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = statSync(p);
      const rel = relative(root, p);
      if (st.isDirectory()) {
        out.push(`d ${(st.mode & 0o7777).toString(8)} ${rel}`);
        walk(p);
      } else out.push(`f ${(st.mode & 0o7777).toString(8)} ${rel} ${createHash("sha256").update(readFileSync(p)).digest("hex")}`);
    }
  };
  walk(root);
  return out;
}

const FILES = [
  "usr/local/bin/crio",
  "etc/crio/crio.conf",
  "etc/cni/net.d/10-crio-bridge.conflist",
  "usr/local/lib/systemd/system/crio.service",
  "usr/local/share/bash-completion/completions/crio",
  "usr/local/share/zsh/site-functions/_crio",
  "usr/local/share/fish/vendor_completions.d/crio.fish",
  "var/lib/crio-install/manifest",
];

describe("install.sh into a DESTDIR", () => {
  test("installs everything, twice without a change, and uninstalls back to the empty tree", () => {
    using w = world();
    const before = snapshot(w.dest);
    const first = w.run();
    expect(first.out).toContain("install.sh: done: crio");
    expect(first.code).toBe(0);
    for (const f of FILES) expect(existsSync(join(w.dest, f))).toBe(true);
    expect(statSync(join(w.dest, "usr/local/bin/crio")).mode & 0o777).toBe(0o755);
    expect(readFileSync(join(w.dest, "usr/local/bin/crio"))).toEqual(readFileSync(CRIO));
    const defaults = Bun.spawnSync([CRIO, "config", "--default"]).stdout.toString();
    expect(readFileSync(join(w.dest, "etc/crio/crio.conf"), "utf8")).toBe(defaults);
    expect(readFileSync(join(w.dest, "etc/cni/net.d/10-crio-bridge.conflist"), "utf8")).toBe(
      readFileSync(join(REPO, "contrib/cni/10-crio-bridge.conflist"), "utf8"),
    );
    expect(readFileSync(join(w.dest, "usr/local/lib/systemd/system/crio.service"), "utf8")).toBe(
      readFileSync(join(REPO, "contrib/systemd/crio.service"), "utf8"),
    );
    expect(readFileSync(join(w.dest, "usr/local/share/bash-completion/completions/crio"), "utf8")).toBe(
      readFileSync(join(REPO, "contrib/completion/crio.bash"), "utf8"),
    );
    const manifest = readFileSync(join(w.dest, "var/lib/crio-install/manifest"), "utf8");
    expect(manifest).toContain(" /usr/local/bin/crio\n");
    expect(manifest).toContain("pkg - runc\n");
    expect(w.log()).toBe(
      "apt-get update -qq\napt-get install -y -qq --no-install-recommends runc containernetworking-plugins iptables conntrack golang-github-containers-common\n",
    );
    expect(first.out).toContain("not starting crio.service: DESTDIR is set");

    const once = snapshot(w.dest);
    const second = w.run();
    expect(second.code).toBe(0);
    expect(second.out).not.toContain("installed /");
    expect(snapshot(w.dest)).toEqual(once);

    const un = w.run(["--uninstall"]);
    expect(un.code).toBe(0);
    expect(un.out).toContain(
      "kept the packages install.sh added (conntrack containernetworking-plugins golang-github-containers-common iptables runc): --purge-packages removes them",
    );
    expect(snapshot(w.dest)).toEqual(before);
    expect(w.log()).not.toContain("systemctl");
    expect(w.run(["--uninstall"]).out).toContain("nothing to uninstall");
  });

  test("PREFIX moves the binary, unit and completions, and the unit's ExecStart follows", () => {
    using w = world();
    expect(w.run(["--no-packages"], { PREFIX: "/usr" }).code).toBe(0);
    const unit = readFileSync(join(w.dest, "usr/lib/systemd/system/crio.service"), "utf8");
    expect(unit).toContain("\nExecStart=/usr/bin/crio\n");
    expect(existsSync(join(w.dest, "usr/bin/crio"))).toBe(true);
    expect(existsSync(join(w.dest, "usr/share/zsh/site-functions/_crio"))).toBe(true);
    expect(w.log()).toBe("");
    expect(w.run(["--uninstall"], { PREFIX: "/usr" }).code).toBe(0);
    expect(snapshot(w.dest)).toEqual([]);
  });

  test("an operator's crio.conf and CNI config are never overwritten or removed; crio.conf.new carries the default", () => {
    using w = world();
    mkdirSync(join(w.dest, "etc/crio"), { recursive: true });
    mkdirSync(join(w.dest, "etc/cni/net.d"), { recursive: true });
    writeFileSync(join(w.dest, "etc/crio/crio.conf"), '[crio.runtime]\nlog_level = "debug"\n');
    writeFileSync(join(w.dest, "etc/cni/net.d/05-mine.conflist"), '{"cniVersion":"1.0.0","name":"mine","plugins":[{"type":"loopback"}]}');
    const before = snapshot(w.dest);
    const r = w.run(["--no-packages"]);
    expect(r.code).toBe(0);
    expect(r.out).toContain("kept /etc/crio/crio.conf (changed by an operator); the current default is in /etc/crio/crio.conf.new");
    expect(r.out).toContain("CNI configuration present in /etc/cni/net.d: /etc/cni/net.d/05-mine.conflist");
    expect(readFileSync(join(w.dest, "etc/crio/crio.conf"), "utf8")).toBe('[crio.runtime]\nlog_level = "debug"\n');
    expect(readFileSync(join(w.dest, "etc/crio/crio.conf.new"), "utf8")).toBe(Bun.spawnSync([CRIO, "config", "--default"]).stdout.toString());
    expect(existsSync(join(w.dest, "etc/cni/net.d/10-crio-bridge.conflist"))).toBe(false);
    expect(w.run(["--uninstall"]).code).toBe(0);
    expect(snapshot(w.dest)).toEqual(before);
  });

  test("a crio.conf changed after install survives reinstall and uninstall; an unchanged one is upgraded in place", () => {
    using w = world();
    expect(w.run(["--no-packages"]).code).toBe(0);
    const conf = join(w.dest, "etc/crio/crio.conf");
    // An older install's default, still untouched: replaced by the current default.
    const manifestPath = join(w.dest, "var/lib/crio-install/manifest");
    const oldDefault = "# an older default\n";
    writeFileSync(conf, oldDefault);
    const sum = createHash("sha256").update(oldDefault).digest("hex");
    writeFileSync(manifestPath, readFileSync(manifestPath, "utf8").replace(/^file [0-9a-f]+ \/etc\/crio\/crio\.conf$/m, `file ${sum} /etc/crio/crio.conf`));
    expect(w.run(["--no-packages"]).out).toContain("installed /etc/crio/crio.conf\n");
    expect(readFileSync(conf, "utf8")).not.toBe(oldDefault);
    // Now the operator edits it.
    writeFileSync(conf, readFileSync(conf, "utf8") + "\n# mine\n");
    const edited = readFileSync(conf, "utf8");
    expect(w.run(["--no-packages"]).out).toContain("installed /etc/crio/crio.conf.new");
    const un = w.run(["--uninstall"]);
    expect(un.code).toBe(0);
    expect(readFileSync(conf, "utf8")).toBe(edited);
    expect(snapshot(w.dest).filter((l) => l.startsWith("f "))).toEqual([expect.stringMatching(/^f 644 etc\/crio\/crio\.conf [0-9a-f]+$/)]);
  });

  test("Fedora-likes get dnf with their package names; --crun and --nftables; installed packages are skipped", () => {
    using w = world({ installed: ["containers-common"] });
    writeFileSync(join(w.dir, "os-release"), 'NAME="Rocky Linux"\nID="rocky"\nID_LIKE="rhel centos fedora"\n');
    const r = w.run(["--crun", "--nftables"], { CRIO_OS_RELEASE: join(w.dir, "os-release") });
    expect(r.code).toBe(0);
    expect(w.log()).toBe("dnf install -y crun containernetworking-plugins nftables conntrack-tools\n");
    expect(readFileSync(join(w.dest, "etc/crio/crio.conf.d/10-runtime.conf"), "utf8")).toContain('default_runtime = "crun"');
    const eff = Bun.spawnSync([
      CRIO,
      "--config",
      join(w.dest, "etc/crio/crio.conf"),
      "--config-dir",
      join(w.dest, "etc/crio/crio.conf.d"),
      "config",
    ]).stdout.toString();
    expect(eff).toContain('default_runtime = "crun"');
    // Back to runc: the drop-in the earlier install wrote goes away.
    expect(w.run(["--no-packages"]).out).toContain("removed /etc/crio/crio.conf.d/10-runtime.conf");
    expect(existsSync(join(w.dest, "etc/crio/crio.conf.d"))).toBe(true);
    expect(w.run(["--uninstall"]).code).toBe(0);
    expect(snapshot(w.dest)).toEqual([]);
  });

  test("busybox sh runs it too (POSIX sh, no bashisms)", () => {
    using w = world();
    const r = w.run(["--no-packages"], {}, ["/bin/busybox", "sh"]);
    expect(r.out).toContain("done: crio");
    expect(r.code).toBe(0);
    expect(w.run(["--uninstall"], {}, ["/bin/busybox", "sh"]).code).toBe(0);
    expect(snapshot(w.dest)).toEqual([]);
  });
});

describe("where the binary comes from", () => {
  test("a checkout: builds with npm ci and bun run build, then reuses dist/crio while it is newer than the sources", () => {
    using w = world();
    const tree = join(w.dir, "checkout");
    mkdirSync(join(tree, "src"), { recursive: true });
    copyFileSync(SCRIPT, join(tree, "install.sh"));
    copyFileSync(join(REPO, "package.json"), join(tree, "package.json"));
    writeFileSync(join(tree, "src/main.ts"), "// placeholder\n");
    writeFileSync(join(tree, "build.ts"), "// placeholder\n");
    // npm ci creates node_modules/.bin/bun, whose `run build` produces dist/crio (a copy of the real one).
    w.shim(
      "npm",
      `echo "npm $*" >> ${join(w.dir, "pm.log")}\nmkdir -p node_modules/.bin\nprintf '#!/bin/sh\\necho "bun $*" >> ${join(w.dir, "pm.log")}\\nmkdir -p dist && cp ${CRIO} dist/crio\\n' > node_modules/.bin/bun\nchmod +x node_modules/.bin/bun`,
    );
    const r = w.run(["--no-packages"], { CRIO_BINARY: "" }, ["sh"], join(tree, "install.sh"));
    expect(r.out).toContain("building dist/crio");
    expect(r.code).toBe(0);
    expect(w.log()).toBe("npm ci --no-audit --no-fund\nbun run build\n");
    expect(readFileSync(join(w.dest, "usr/local/bin/crio"))).toEqual(readFileSync(CRIO));
    const again = w.run(["--no-packages"], { CRIO_BINARY: "" }, ["sh"], join(tree, "install.sh"));
    expect(again.out).toContain("dist/crio is newer than the sources: not rebuilding");
    expect(w.log()).toBe("npm ci --no-audit --no-fund\nbun run build\n");
  });

  test("CRIO_RELEASE_URL: {arch} is replaced, CRIO_RELEASE_SHA256 is checked", () => {
    using w = world();
    const arch = process.arch === "arm64" ? "arm64" : "x64";
    symlinkSync(CRIO, join(w.dir, `crio-linux-${arch}`));
    const url = `file://${w.dir}/crio-linux-{arch}`;
    // A copy outside the checkout: run from the repository, install.sh would build dist/crio instead.
    const script = join(w.dir, "install.sh");
    copyFileSync(SCRIPT, script);
    const bad = w.run(["--no-packages"], { CRIO_BINARY: "", CRIO_RELEASE_URL: url, CRIO_RELEASE_SHA256: "0".repeat(64) }, ["sh"], script);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('install.sh: step "download the crio binary" failed: file://');
    expect(bad.stderr).toContain(`, not CRIO_RELEASE_SHA256=${"0".repeat(64)}`);
    const sum = createHash("sha256").update(readFileSync(CRIO)).digest("hex");
    const ok = w.run(["--no-packages"], { CRIO_BINARY: "", CRIO_RELEASE_URL: url, CRIO_RELEASE_SHA256: sum }, ["sh"], script);
    expect(ok.out).toContain(`downloading file://${w.dir}/crio-linux-${arch}`);
    expect(ok.code).toBe(0);
    expect(readFileSync(join(w.dest, "usr/local/bin/crio"))).toEqual(readFileSync(CRIO));
  });

  test("piped into sh (no checkout), without CRIO_BINARY or CRIO_RELEASE_URL, it says what to set", () => {
    using w = world();
    const p = Bun.spawnSync(["sh"], {
      stdin: Bun.file(SCRIPT),
      env: { PATH: `${w.fake}:/usr/sbin:/usr/bin:/sbin:/bin`, DESTDIR: w.dest },
      stdout: "pipe",
      stderr: "pipe",
    });
    expect(p.exitCode).toBe(1);
    expect(p.stderr.toString()).toContain(
      'install.sh: step "find the crio binary" failed: no crio binary: set CRIO_BINARY=/path/to/crio, run install.sh from a source checkout, or set CRIO_RELEASE_URL=',
    );
  });
});

describe("failures name their step", () => {
  test.each([
    [["--no-packages"], { CRIO_BINARY: "/nonexistent/crio" }, 'step "find the crio binary" failed: CRIO_BINARY="/nonexistent/crio" is not a file'],
    [["--bogus"], {}, 'step "arguments" failed: unknown option "--bogus"'],
    [["--runtime", "kata"], {}, 'step "arguments" failed: --runtime must be runc or crun, not "kata"'],
    [[], { CRIO_OS_RELEASE: "/nonexistent/os-release" }, 'step "install distribution packages" failed: cannot read /nonexistent/os-release'],
  ] as Array<[string[], Record<string, string>, string]>)("%j %j", (args, env, message) => {
    using w = world();
    const r = w.run(args, env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`install.sh: ${message}`);
  });

  test("an unsupported distribution points at --no-packages; a failing package manager names itself", () => {
    using w = world();
    writeFileSync(join(w.dir, "os-release"), "ID=arch\n");
    const r = w.run([], { CRIO_OS_RELEASE: join(w.dir, "os-release") });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('step "install distribution packages" failed: unsupported distribution "arch"');
    expect(r.stderr).toContain("then rerun with --no-packages");
    w.shim("apt-get", 'echo "E: Unable to locate package $7" >&2; exit 100');
    const f = w.run();
    expect(f.code).toBe(1);
    expect(f.stderr).toContain('step "install distribution packages" failed: apt-get update failed');
  });

  test("a crio.conf that does not load stops the CNI step with the loader's message", () => {
    using w = world();
    mkdirSync(join(w.dest, "etc/crio"), { recursive: true });
    writeFileSync(join(w.dest, "etc/crio/crio.conf"), "[crio.runtime]\nlog_level = 7\n");
    const r = w.run(["--no-packages"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('step "install the CNI network" failed: the configuration in');
    expect(r.stderr).toContain("log_level");
  });
});

describe("crio.service", () => {
  test("install.sh embeds contrib/ verbatim, and systemd-analyze accepts the unit", () => {
    const script = readFileSync(SCRIPT, "utf8");
    const unit = readFileSync(join(REPO, "contrib/systemd/crio.service"), "utf8");
    expect(script).toContain(`unit_file() {\n\tcat <<'EOF'\n${unit}EOF\n}`);
    expect(script).toContain(`cni_conflist() {\n\tcat <<'EOF'\n${readFileSync(join(REPO, "contrib/cni/10-crio-bridge.conflist"), "utf8")}EOF\n}`);
    for (const line of [
      "Type=notify",
      "ExecStart=/usr/local/bin/crio",
      "ExecReload=/bin/kill -s HUP $MAINPID",
      "Restart=on-failure",
      "RestartSec=10",
      "KillMode=process",
      "LimitNOFILE=1048576",
      "LimitNPROC=infinity",
      "LimitCORE=infinity",
      "TasksMax=infinity",
      "OOMScoreAdjust=-999",
      "WantedBy=multi-user.target",
    ])
      expect(unit.split("\n")).toContain(line);
    const analyze = Bun.which("systemd-analyze");
    if (!analyze) return; // systemd-analyze is part of systemd; the text checks above still ran
    using t = tempDir("crio-unit-");
    writeFileSync(join(t.path, "crio.service"), unit.replace("ExecStart=/usr/local/bin/crio", `ExecStart=${CRIO}`));
    const v = Bun.spawnSync([analyze, "verify", join(t.path, "crio.service")], { stdout: "pipe", stderr: "pipe" });
    expect(v.stderr.toString()).toBe("");
    expect(v.exitCode).toBe(0);
  });
});

describe("uninstall with pods running (root: real daemon, runc, CNI)", () => {
  test("a DESTDIR tree whose daemon ran a pod: uninstall refuses while the daemon serves, then, the daemon stopped (KillMode=process: its pod runs on), wipes it and leaves no mount, process, runc container, cgroup, pin, lease or rule", async () => {
    using w = world();
    const net = testNet({ dualStack: false });
    const reg = await startRegistry();
    let daemon: ReturnType<typeof Bun.spawn> | undefined;
    let cri: CriClient | undefined;
    const dest = w.dest;
    const runroot = join(dest, "run/crio");
    const root = join(dest, "var/lib/crio");
    const runcRoot = join(dest, "run/runc");
    const socket = join(runroot, "crio.sock");
    try {
      await pushImage(reg, await busyboxImage());
      await pushImage(reg, await pauseImage());
      const inst = w.run(["--no-packages"]);
      expect(inst.code).toBe(0);
      // the operator's drop-in: every path of the daemon inside DESTDIR, a network of its own
      mkdirSync(join(w.dir, "net.d"));
      mkdirSync(join(dest, "etc/crio/crio.conf.d"));
      writeFileSync(join(w.dir, "net.d/10-test.conflist"), net.conflist);
      writeFileSync(join(dest, "etc/registries.conf"), `[[registry]]\nlocation = "${reg.host}"\ninsecure = true\n`);
      writeFileSync(join(dest, "etc/policy.json"), JSON.stringify({ default: [{ type: "insecureAcceptAnything" }] }));
      const q = JSON.stringify;
      writeFileSync(
        join(dest, "etc/crio/crio.conf.d/50-local.conf"),
        [
          "[crio]",
          `root = ${q(root)}`,
          `runroot = ${q(runroot)}`,
          `log_dir = ${q(join(dest, "var/log/crio/pods"))}`,
          `version_file = ${q(join(runroot, "version"))}`,
          `clean_shutdown_file = ${q(join(root, "clean.shutdown"))}`,
          "[crio.api]",
          `listen = ${q(socket)}`,
          "[crio.runtime]",
          `cgroup_manager = "cgroupfs"`,
          `log_level = "debug"`,
          "[crio.runtime.runtimes.runc]",
          `runtime_root = ${q(runcRoot)}`,
          "[crio.runtime.runtimes.crun]",
          `runtime_root = ${q(join(dest, "run/crun"))}`,
          "[crio.image]",
          `pause_image = ${q(imageRef(reg, "pause"))}`,
          `pause_command = "/pause"`,
          `signature_policy = ${q(join(dest, "etc/policy.json"))}`,
          `registries_conf = ${q(join(dest, "etc/registries.conf"))}`,
          `registries_conf_dir = ${q(join(dest, "etc/registries.conf.d"))}`,
          `certs_dir = ${q(join(dest, "etc/certs.d"))}`,
          "[crio.network]",
          `network_dir = ${q(join(w.dir, "net.d"))}`,
          "",
        ].join("\n"),
      );
      // crio.service's job, by hand (DESTDIR never touches systemd)
      const bin = join(dest, "usr/local/bin/crio");
      let logs = "";
      daemon = Bun.spawn([bin, "--config", join(dest, "etc/crio/crio.conf"), "--config-dir", join(dest, "etc/crio/crio.conf.d")], {
        stdin: "ignore",
        stdout: "ignore",
        stderr: "pipe",
        cwd: w.dir,
      });
      void (async () => {
        for await (const c of daemon.stderr as ReadableStream<Uint8Array>) logs += new TextDecoder().decode(c);
      })();
      await waitFor(() => existsSync(socket), 30_000, `the daemon's socket (${logs.slice(-500)})`);
      cri = criClient(socket);
      await waitFor(async () => (await cri!.status({}, { timeoutMs: 2_000 }).catch(() => undefined)) !== undefined, 30_000, "the daemon to serve");
      const busybox = imageRef(reg, "busybox");
      await cri.pullImage({ image: { image: busybox } });
      const pod = podConfig("uninstall", dest, { hostNetwork: false });
      const { podSandboxId } = await cri.runPodSandbox({ config: pod });
      const { containerId } = await cri.createContainer({ podSandboxId, config: ctrConfig("c", busybox, ["sleep", "3600"], {}, pod), sandboxConfig: pod });
      await cri.startContainer({ containerId });
      const ctrPid = Number(JSON.parse((await cri.containerStatus({ containerId, verbose: true })).info.info ?? "{}").pid);
      expect(ctrPid).toBeGreaterThan(1);
      expect(leases(net)).toHaveLength(1);
      expect(await rulesMentioning([podSandboxId])).not.toEqual([]);
      const ids = [podSandboxId, containerId];

      // refused while the daemon serves: nothing is removed
      const busy = w.run(["--uninstall"]);
      expect(busy.code).toBe(1);
      expect(busy.stderr).toContain('step "remove pods, containers and images (crio wipe -f)" failed');
      expect(busy.out).toContain("a crio daemon is running on");
      expect(existsSync(bin)).toBe(true);
      expect(existsSync(join(dest, "var/lib/crio-install/manifest"))).toBe(true);

      // `systemctl stop crio` with KillMode=process: SIGTERM to the daemon alone; the pod runs on
      cri.close();
      daemon.kill("SIGTERM");
      expect(await daemon.exited).toBe(0);
      process.kill(ctrPid, 0);
      expect(monitors(runroot)).not.toEqual([]);
      expect(mountsBelow(dest)).not.toEqual([]);
      // (each check below fails before the uninstall)
      expect([runcList(runcRoot).includes(containerId), cgroupsOf(ids).length > 0, pins(runroot).length > 0]).toEqual([true, true, true]);

      const un = w.run(["--uninstall"]);
      expect({ code: un.code, err: un.code ? un.out : "" }).toEqual({ code: 0, err: "" });
      expect(un.out).toMatch(/wiped 1 pods, 1 containers and [12] images/);
      const index = join(root, "images/images.json");
      expect(existsSync(index) ? Object.keys(JSON.parse(readFileSync(index, "utf8")).images ?? {}) : []).toEqual([]);
      for (const f of FILES) expect(existsSync(join(dest, f))).toBe(false);
      expect(existsSync(join(dest, "etc/crio/crio.conf.d/50-local.conf"))).toBe(true); // the operator's own file stays
      // nothing the daemon made is left
      expect(mountsBelow(dest)).toEqual([]);
      expect(alive(ctrPid)).toBe(false);
      expect(monitors(runroot)).toEqual([]);
      expect(runcList(runcRoot)).toEqual([]);
      expect(cgroupsOf(ids)).toEqual([]);
      expect(pins(runroot)).toEqual([]);
      expect(leases(net)).toEqual([]);
      expect(await rulesMentioning([...ids, `name: \\"${net.name}\\"`])).toEqual([]);
    } finally {
      cri?.close();
      if (daemon && daemon.exitCode === null) {
        daemon.kill("SIGKILL");
        await daemon.exited;
      }
      // a failed run: leave nothing behind on the machine either
      const bin = join(dest, "usr/local/bin/crio");
      if (existsSync(bin)) Bun.spawnSync([bin, "--config", join(dest, "etc/crio/crio.conf"), "--config-dir", join(dest, "etc/crio/crio.conf.d"), "wipe", "-f"]);
      for (const m of mountsBelow(dest).sort((a, b) => b.length - a.length)) Bun.spawnSync(["umount", "-l", m]);
      await reg.stop();
      await cleanupNet(net);
    }
  }, 180_000);
});

function mountsBelow(dir: string): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4] ?? "")
    .filter((m) => m === dir || m.startsWith(dir + "/"));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.startsWith("Z");
  } catch {
    return false;
  }
}

/** Monitor processes (`crio conmon`) whose command line names this runroot. */
function monitors(runroot: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync("/proc").filter((x) => /^\d+$/.test(x))) {
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, "utf8");
      if (cmd.includes("conmon") && cmd.includes(runroot)) out.push(Number(p));
    } catch {}
  }
  return out;
}

function runcList(runcRoot: string): string[] {
  return Bun.spawnSync(["runc", "--root", runcRoot, "list", "-q"]).stdout.toString().split("\n").filter(Boolean);
}

function cgroupsOf(ids: string[]): string[] {
  const find = Bun.spawnSync(["find", "/sys/fs/cgroup", "-maxdepth", "5", "-type", "d"]).stdout.toString().split("\n");
  return find.filter((d) => ids.some((id) => d.includes(id)));
}

function pins(runroot: string): string[] {
  const ns = join(runroot, "ns");
  if (!existsSync(ns)) return [];
  return readdirSync(ns).flatMap((k) => (statSync(join(ns, k)).isDirectory() ? readdirSync(join(ns, k)).map((f) => `${k}/${f}`) : []));
}

function leases(net: TestNet): string[] {
  const d = join(net.ipamDir, net.name);
  return existsSync(d) ? readdirSync(d).filter((f) => /^[0-9.:a-f]+$/.test(f) && f.includes(".")) : [];
}
