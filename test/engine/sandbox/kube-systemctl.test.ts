/**
 * The systemctl stand-in's unit-file handling (pure parts: parsing, drop-ins, command lines,
 * environment files, the start script); the real behaviour runs in kube-sandbox.test.ts.
 */
import { mkdtemp, mkdir, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseEnvironmentFile, serviceEnvironment } from "../../../src/engine/sandbox/systemd-lite/environment";
import { startScript } from "../../../src/engine/sandbox/systemd-lite/start-script";
import { loadService } from "../../../src/engine/sandbox/systemd-lite/unit-file";
import { parseExecLine, parseTimespan, parseUnitText, splitWords } from "../../../src/engine/sandbox/systemd-lite/unit-syntax";

let root: string;
let etc: string;
let lib: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "sealant-systemctl-"));
  etc = join(root, "etc");
  lib = join(root, "lib");
  await mkdir(join(lib, "kubelet.service.d"), { recursive: true });
  await mkdir(join(etc, "kubelet.service.d"), { recursive: true });
  // kubeadm's packaged kubelet unit and drop-in (as in the Debian/RPM packages)
  await writeFile(
    join(lib, "kubelet.service"),
    `[Unit]
Description=kubelet: The Kubernetes Node Agent
Wants=network-online.target
After=network-online.target containerd.service

[Service]
ExecStart=/usr/bin/kubelet
Restart=always
StartLimitInterval=0
RestartSec=10

[Install]
WantedBy=multi-user.target
`,
  );
  await writeFile(
    join(lib, "kubelet.service.d", "10-kubeadm.conf"),
    `# Note: This dropin only works with kubeadm and kubelet v1.11+
[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
`,
  );
  // an /etc drop-in sorts after /lib's and overrides the same name
  await writeFile(join(etc, "kubelet.service.d", "20-extra.conf"), `[Service]\nRestartSec=2\nWorkingDirectory=-/var/lib/kubelet\n`);
  await writeFile(join(etc, "web@.service"), `[Service]\nExecStart=/usr/bin/web --name %i --unit %n\n`);
  await symlink("/dev/null", join(etc, "masked.service"));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("systemctl stand-in: unit files", () => {
  it("GIVEN kubeadm's kubelet unit with its drop-ins WHEN loaded THEN ExecStart= is reset and replaced, environment and restart settings merged in order", () => {
    const svc = loadService("kubelet", [etc, lib])!;
    expect(svc.name).toBe("kubelet.service");
    expect(svc.fragment).toBe(join(lib, "kubelet.service"));
    expect(svc.dropIns).toEqual([join(lib, "kubelet.service.d", "10-kubeadm.conf"), join(etc, "kubelet.service.d", "20-extra.conf")]);
    expect(svc.execStart).toEqual(["/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS"]);
    expect(svc.environment).toEqual([
      ["KUBELET_KUBECONFIG_ARGS", "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"],
      ["KUBELET_CONFIG_ARGS", "--config=/var/lib/kubelet/config.yaml"],
    ]);
    expect(svc.environmentFiles).toEqual(["-/var/lib/kubelet/kubeadm-flags.env", "-/etc/default/kubelet"]);
    expect([svc.restart, svc.restartSec, svc.workingDirectory, svc.description]).toEqual([
      "always",
      2,
      "-/var/lib/kubelet",
      "kubelet: The Kubernetes Node Agent",
    ]);
    expect(svc.wantedBy).toEqual(["multi-user.target"]);
    expect(svc.after).toEqual(["network-online.target", "containerd.service"]);
  });

  it("GIVEN the kubelet's environment files WHEN a start is prepared THEN $VAR splits into words, missing optional files are skipped", () => {
    const svc = loadService("kubelet", [etc, lib])!;
    const files: Record<string, string> = {
      "/var/lib/kubelet/kubeadm-flags.env": `KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///run/containerd/containerd.sock --node-ip=10.231.0.11"\n`,
    };
    const { env, missing } = serviceEnvironment(svc, (p) => files[p]);
    expect(missing).toEqual([]);
    expect(parseExecLine(svc.execStart[0]!, env).argv).toEqual([
      "/usr/bin/kubelet",
      "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf",
      "--kubeconfig=/etc/kubernetes/kubelet.conf",
      "--config=/var/lib/kubelet/config.yaml",
      "--container-runtime-endpoint=unix:///run/containerd/containerd.sock",
      "--node-ip=10.231.0.11",
    ]);
    const script = startScript(svc, env, { state: "/run/sealant-systemd/kubelet.service", cgroup: "/sys/fs/cgroup/systemd/system.slice/kubelet.service" });
    expect(script).toContain("cd '/var/lib/kubelet' 2> /dev/null || cd /");
    expect(script).toMatch(
      /\nexec env -i 'PATH=[^']+' 'KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=\/etc\/kubernetes\/bootstrap-kubelet.conf --kubeconfig=\/etc\/kubernetes\/kubelet.conf' .* '\/usr\/bin\/kubelet' '--bootstrap-kubeconfig=/,
    );
    expect(script).toContain("echo $$ > '/sys/fs/cgroup/systemd/system.slice/kubelet.service/cgroup.procs'");
  });

  it("GIVEN a required environment file that is missing WHEN a start is prepared THEN it is named", () => {
    const svc = loadService("kubelet", [etc, lib])!;
    svc.environmentFiles.push("/etc/required.env");
    expect(serviceEnvironment(svc, () => undefined).missing).toEqual(["/etc/required.env"]);
  });

  it("GIVEN a template and a masked unit WHEN loaded THEN %i/%n are the instance's and the mask is reported", () => {
    expect(loadService("web@blue.service", [etc, lib])!.execStart).toEqual(["/usr/bin/web --name blue --unit web@blue.service"]);
    expect(loadService("masked", [etc, lib])!.masked).toBe(true);
    expect(loadService("nothing-here", [etc, lib])).toBeUndefined();
  });

  it("GIVEN systemd's syntax WHEN parsed THEN sections, continuations, quotes, escapes, prefixes and time spans follow systemd", () => {
    expect(parseUnitText("[Service]\n# c\nExecStart=/bin/a \\\n  --b \\\n  --c\n; x\nType=oneshot\n")).toEqual({
      Service: [
        ["ExecStart", "/bin/a  --b  --c"],
        ["Type", "oneshot"],
      ],
    });
    expect(splitWords(`a "b c" 'd e' f\\ g "h\\"i" $X`)).toEqual([
      { text: "a" },
      { text: "b c" },
      { text: "d e" },
      { text: "f g" },
      { text: 'h"i' },
      { text: "$X", bareVar: "X" },
    ]);
    const env = new Map([
      ["A", "1 2"],
      ["B", "x"],
    ]);
    expect(parseExecLine("-/bin/echo $A ${A} pre${B}post $$A", env)).toEqual({ argv: ["/bin/echo", "1", "2", "1 2", "prexpost", "$A"], ignoreFailure: true });
    expect(parseExecLine(":/bin/echo $A", env).argv).toEqual(["/bin/echo", "$A"]);
    expect(parseExecLine("/bin/echo $MISSING end", env).argv).toEqual(["/bin/echo", "end"]);
    expect([parseTimespan("10", 0), parseTimespan("100ms", 0), parseTimespan("1min 30s", 0), parseTimespan("infinity", 0), parseTimespan("bogus", 7)]).toEqual([
      10,
      0.1,
      90,
      Infinity,
      7,
    ]);
    expect(parseEnvironmentFile(`# c\nA=1\nB="two words"\nC='x y'\nexport D=4\nbad line\n`)).toEqual([
      ["A", "1"],
      ["B", "two words"],
      ["C", "x y"],
      ["D", "4"],
    ]);
  });
});
