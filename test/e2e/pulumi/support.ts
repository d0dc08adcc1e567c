import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { copyFile, mkdir, readFile, symlink, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { dump, load } from "js-yaml";

const ROOT = resolve(__dirname, "../../..");
export const PROGRAM = join(ROOT, "examples/pulumi-etcd");

/** The Pulumi CLI scripts/pulumi-cli.sh builds (setup runs it); its bin dir goes first on PATH. */
export function pulumiBin(): string {
  const bin = join(process.env.SEALANT_CACHE ?? join(homedir(), ".cache/sealant"), "pulumi-current/bin");
  if (!existsSync(join(bin, "pulumi")) || !existsSync(join(bin, "pulumi-language-nodejs"))) {
    throw new Error(`the Pulumi CLI is not built in ${bin}: run bash scripts/pulumi-cli.sh (scripts/setup.sh does)`);
  }
  return bin;
}

export interface Run {
  code: number;
  /** stdout and stderr, interleaved as they came. */
  output: string;
}

/**
 * A copy of the example program in its own directory with a file:// backend, its own
 * PULUMI_HOME and sealant home: stacks of it never meet other tests' or the user's.
 */
export class PulumiProject {
  readonly dir: string;
  private readonly env: NodeJS.ProcessEnv;

  /** `path`: the PATH after the Pulumi CLI's directory. @default the repo's @pulumi/pulumi, then this process's PATH */
  private constructor(
    readonly base: string,
    sealantHome: string,
    path = `${join(ROOT, "node_modules/@pulumi/pulumi")}:${process.env.PATH ?? ""}`,
  ) {
    this.dir = join(base, "program");
    this.env = {
      ...process.env,
      PATH: `${pulumiBin()}:${path}`,
      PULUMI_BACKEND_URL: `file://${join(base, "state")}`,
      PULUMI_CONFIG_PASSPHRASE: "sealant-e2e-passphrase",
      PULUMI_SKIP_UPDATE_CHECK: "true",
      PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
      PULUMI_HOME: join(base, "pulumi-home"),
      SEALANT_HOME: sealantHome,
      NO_COLOR: "1",
    };
  }

  /** The example program copied into `base`/program; node_modules is the repo's (which links `sealant`). */
  static async create(base: string, sealantHome: string): Promise<PulumiProject> {
    const p = new PulumiProject(base, sealantHome);
    await mkdir(p.dir, { recursive: true });
    await mkdir(join(base, "state"), { recursive: true });
    for (const f of ["Pulumi.yaml", "index.ts", "package.json", "tsconfig.json"]) await copyFile(join(PROGRAM, f), join(p.dir, f));
    await symlink(join(ROOT, "node_modules"), join(p.dir, "node_modules"));
    return p;
  }

  /**
   * A program already in `base`/program with node_modules of its own (one that npm installed
   * sealant into): nothing of this repo is on its PATH, so only its own packages run.
   */
  static installed(base: string, sealantHome: string): PulumiProject {
    const outside = (process.env.PATH ?? "").split(":").filter((d) => d && d !== ROOT && !d.startsWith(`${ROOT}/`));
    return new PulumiProject(base, sealantHome, outside.join(":"));
  }

  /** Runs `pulumi args... --non-interactive` (with `--stack stack`); `onOutput` sees output as it comes. */
  run(args: string[], opts: { stack?: string; input?: string; onOutput?(text: string): void } = {}): Promise<Run> {
    const full = [...args, "--non-interactive", ...(opts.stack ? ["--stack", opts.stack] : [])];
    return new Promise((done, fail) => {
      const child = spawn("pulumi", full, { cwd: this.dir, env: this.env, stdio: ["pipe", "pipe", "pipe"] });
      let output = "";
      const take = (d: Buffer) => {
        const text = d.toString();
        output += text;
        opts.onOutput?.(text);
      };
      child.stdout.on("data", take);
      child.stderr.on("data", take);
      child.on("error", fail);
      child.on("close", (code) => done({ code: code ?? 1, output }));
      child.stdin.end(opts.input ?? "");
    });
  }

  /** Like `run`, but a non-zero exit is an error carrying the whole output. */
  async ok(args: string[], opts: { stack?: string; input?: string; onOutput?(text: string): void } = {}): Promise<string> {
    const r = await this.run(args, opts);
    if (r.code !== 0) throw new Error(`pulumi ${args.join(" ")} exited ${r.code}:\n${r.output}`);
    return r.output;
  }

  async outputs(stack: string): Promise<Record<string, unknown>> {
    return JSON.parse(await this.ok(["stack", "output", "--json"], { stack })) as Record<string, unknown>;
  }

  /** A resource's outputs as the stack's state holds them (stack outputs change only on `up`; state on refresh too). */
  async resourceOutputs(stack: string, type: string): Promise<Record<string, unknown>> {
    const state = JSON.parse(await this.ok(["stack", "export"], { stack })) as {
      deployment: { resources?: { type: string; outputs?: Record<string, unknown> }[] };
    };
    const found = state.deployment.resources?.find((r) => r.type === type);
    if (!found) throw new Error(`no ${type} in stack ${stack}`);
    return found.outputs ?? {};
  }

  /**
   * Sets plain settings in Pulumi.<stack>.yaml by editing the file, as a person keeping one
   * file per environment would (what `stack init` wrote, e.g. the secrets salt, is kept).
   */
  async writeStackConfig(stack: string, config: Record<string, string | number>): Promise<void> {
    const file = join(this.dir, `Pulumi.${stack}.yaml`);
    const doc = ((existsSync(file) ? load(await readFile(file, "utf8")) : undefined) ?? {}) as { config?: Record<string, unknown> };
    doc.config = { ...doc.config, ...Object.fromEntries(Object.entries(config).map(([k, v]) => [`sealant-etcd:${k}`, String(v)])) };
    await writeFile(file, dump(doc));
  }

  /** `pulumi config set --secret key` with the value on stdin (never on a command line). */
  async setSecret(stack: string, key: string, value: string): Promise<void> {
    await this.ok(["config", "set", "--secret", key], { stack, input: value });
  }
}
