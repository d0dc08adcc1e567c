import * as pulumi from "@pulumi/pulumi";
import { beforeEach, describe, expect, it } from "vitest";
import { Cluster } from "../../src/provider/cluster";
import { ClusterImage } from "../../src/provider/cluster-image";
import { ImageBuild } from "../../src/provider/image-build";

/*
 * What the resource classes send the Pulumi engine, under Pulumi's mocks (no engine, no
 * provider runs): the inputs as registered, a secret in its wire form `{ <secret sig>: ...,
 * value }`. The SDK sends a nested secret at its place, but the mocks hand the test each
 * top-level input whole, marked secret when anything in it is: so these tests see which inputs
 * hold a secret, and test/pulumi/e2e.test.ts judges the real state, place by place.
 */
interface Registered {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
}
const registered: Registered[] = [];
void pulumi.runtime.setMocks(
  {
    newResource(args) {
      registered.push({ type: args.type, name: args.name, inputs: args.inputs });
      return { id: `${args.name}-id`, state: { ...args.inputs } };
    },
    call() {
      return {};
    },
  },
  "sealant-test",
  "test",
  false,
);

const SECRET_SIG = "4dabf18193072939515e22adb298388d";
function isSecretValue(v: unknown): v is { value: unknown } {
  return typeof v === "object" && v !== null && SECRET_SIG in v;
}
function reveal(v: unknown): unknown {
  if (isSecretValue(v)) return reveal(v.value);
  if (Array.isArray(v)) return v.map(reveal);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, reveal(x)]));
  return v;
}
/** The inputs sent holding a secret. */
function secretInputs(inputs: Record<string, unknown>): string[] {
  return Object.keys(inputs)
    .filter((k) => isSecretValue(inputs[k]))
    .sort();
}
function value<T>(o: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => o.apply(resolve));
}
const inputsOf = async (r: pulumi.CustomResource) => {
  await value(r.urn);
  return registered.find((x) => x.name === (r as unknown as { __name: string }).__name)!.inputs;
};

beforeEach(() => {
  registered.length = 0;
});

const IMAGE = `example/etcd:3.4@sha256:${"ab".repeat(32)}`;
const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";

describe("Cluster secrets at every depth", () => {
  it("GIVEN per-host ssh given as plain strings WHEN registered THEN the hosts are sent holding a secret, as the cluster's ssh is", async () => {
    const c = new Cluster("plain-host-ssh", {
      name: "c",
      image: IMAGE,
      hosts: {
        "10.0.0.2": { roles: ["master"], labels: { zone: "a" }, ssh: { password: "host-pw-2" } },
        "10.0.0.3": { roles: ["master"] },
      },
      ssh: { user: "root", privateKey: KEY },
    });
    const inputs = await inputsOf(c);
    expect(secretInputs(inputs)).toEqual(["hosts", "ssh"]);
    expect(reveal(inputs["hosts"])).toEqual({
      "10.0.0.2": { roles: ["master"], labels: { zone: "a" }, ssh: { password: "host-pw-2" } },
      "10.0.0.3": { roles: ["master"] },
    });

    // Hosts without ssh settings hold no secret: they stay readable.
    const readable = new Cluster("no-host-ssh", {
      name: "c",
      image: IMAGE,
      hosts: { "10.0.0.2": { roles: ["master"], labels: { zone: "a" } } },
      ssh: { password: "pw" },
    });
    const readableInputs = await inputsOf(readable);
    expect(secretInputs(readableInputs)).toEqual(["ssh"]);
    expect(readableInputs["hosts"]).toEqual({ "10.0.0.2": { roles: ["master"], labels: { zone: "a" } } });
  });

  it("GIVEN registry.registries (the hosts' registries file model) with a login in a plain string and outputs inside WHEN registered THEN the registry is sent as a secret, every value in place", async () => {
    const c = new Cluster("user-registries", {
      name: "c",
      image: IMAGE,
      hosts: { "10.0.0.2": { roles: ["master"] } },
      registry: {
        registries: {
          mirrors: { "docker.io": { endpoint: [pulumi.output("https://m.example")] } },
          configs: {
            "m.example": pulumi.output({ auth: { username: "robot", password: "mirror-pw" }, tls: { insecure_skip_verify: true } }),
            "*": { proxy: "http://p.example:3128" },
          },
        },
      },
    });
    const inputs = await inputsOf(c);
    expect(secretInputs(inputs)).toEqual(["registry"]);
    expect(reveal(inputs["registry"])).toEqual({
      registries: {
        mirrors: { "docker.io": { endpoint: ["https://m.example"] } },
        configs: {
          "m.example": { auth: { username: "robot", password: "mirror-pw" }, tls: { insecure_skip_verify: true } },
          "*": { proxy: "http://p.example:3128" },
        },
      },
    });
  });

  it("GIVEN secrets and outputs nested anywhere (a host as an output, the hosts map as an output, env, registry, plugins) WHEN registered THEN every one is sent as a secret", async () => {
    const secret = (s: string) => pulumi.secret(s);
    const c = new Cluster("nested", {
      name: "c",
      image: pulumi.output(IMAGE),
      hosts: {
        "10.0.0.2": pulumi.output({ roles: ["master"], ssh: { password: "host-pw-out" } }),
        "10.0.0.3": { roles: [pulumi.output("master")], env: { TOKEN: secret("env-token") } },
      },
      ssh: { user: pulumi.output("root"), privateKey: secret(KEY), bastion: { host: "203.0.113.7", password: secret("bastion-pw") } },
      env: { TOKEN: secret("cluster-token"), PLAIN: "x" },
      registry: { username: "admin", password: secret("registry-pw") },
      plugins: [{ name: "p", action: "post-install", data: pulumi.interpolate`echo ${secret("plugin-token")}` }],
    });
    const inputs = await inputsOf(c);
    expect(secretInputs(inputs)).toEqual(["env", "hosts", "plugins", "registry", "ssh"]);
    expect(reveal(inputs)).toMatchObject({
      image: IMAGE,
      hosts: { "10.0.0.2": { roles: ["master"], ssh: { password: "host-pw-out" } }, "10.0.0.3": { roles: ["master"], env: { TOKEN: "env-token" } } },
      ssh: { user: "root", privateKey: KEY, bastion: { host: "203.0.113.7", password: "bastion-pw" } },
      env: { TOKEN: "cluster-token", PLAIN: "x" },
      registry: { username: "admin", password: "registry-pw" },
      plugins: [{ name: "p", action: "post-install", data: "echo plugin-token" }],
    });

    const whole = new Cluster("hosts-output", {
      name: "d",
      image: IMAGE,
      hosts: pulumi.output({ "10.0.0.5": { roles: ["master"], ssh: { password: "pw-5" } }, "10.0.0.6": { roles: ["node"] } }),
    });
    const wholeInputs = await inputsOf(whole);
    expect(secretInputs(wholeInputs)).toEqual(["hosts"]);
    expect(reveal(wholeInputs["hosts"])).toEqual({ "10.0.0.5": { roles: ["master"], ssh: { password: "pw-5" } }, "10.0.0.6": { roles: ["node"] } });
  });

  it("GIVEN registry credentials in plain strings and a secret build arg WHEN ImageBuild and ClusterImage register THEN both are sent as secrets", async () => {
    const b = new ImageBuild("build", {
      context: ".",
      tag: "app:1",
      buildArgs: { TOKEN: pulumi.secret("build-token"), PLAIN: "x" },
      registryAuth: { username: "ci", password: "ci-pw" },
    });
    const built = await inputsOf(b);
    expect(secretInputs(built)).toEqual(["buildArgs", "registryAuth"]);
    expect(reveal(built["buildArgs"])).toEqual({ TOKEN: "build-token", PLAIN: "x" });
    const i = new ClusterImage("pulled", { ref: "app:1", registryAuth: { username: pulumi.output("ci"), password: "ci-pw" } });
    expect(secretInputs(await inputsOf(i))).toEqual(["registryAuth"]);
  });
});
