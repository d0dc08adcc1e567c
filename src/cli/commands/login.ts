import { formatDuration } from "../../engine/image/transfer";
import { Session } from "../../engine/session";
import { REGISTRY_HELP, parse, registryOptions, registrySessionOptions } from "../args";
import { UsageError } from "../errors";
import type { Command } from "./command";

const loginUsage = `Usage: sealant login REGISTRY -u USER (-p PASSWORD | --password-stdin) [--insecure] [--timeout DURATION] [--registries FILE]

Check the credentials against REGISTRY and store them in $SEALANT_HOME/auth.json (mode 0600).
Prefer --password-stdin: a password given with -p is visible to other users in the process list.

${REGISTRY_HELP.replace("default 1h", "default 2m")}`;

/** A login is one request or two: a registry that takes longer is not answering. */
const LOGIN_TIMEOUT_MS = 120_000;

export const login: Command = {
  usage: loginUsage,
  async run(args, signal) {
    const { values, positionals } = parse(
      args,
      {
        username: { type: "string", short: "u" },
        password: { type: "string", short: "p" },
        "password-stdin": { type: "boolean", default: false },
        ...registryOptions,
      },
      loginUsage,
    );
    if (positionals.length !== 1) throw new UsageError(`login needs exactly one REGISTRY\n\n${loginUsage}`);
    if (!values.username) throw new UsageError(`login needs -u USER\n\n${loginUsage}`);
    if (values.password !== undefined && values["password-stdin"]) throw new UsageError("use either -p or --password-stdin, not both");
    const password = values["password-stdin"] ? (await readStdin()).replace(/\r?\n$/, "") : values.password;
    if (!password) throw new UsageError(`login needs a password: -p PASSWORD or --password-stdin\n\n${loginUsage}`);
    const options = registrySessionOptions(values);
    if (values.password !== undefined) process.stderr.write("warning: a password given with -p is visible in the process list; prefer --password-stdin\n");
    const registry = positionals[0]!;
    // The registries file says how to reach it (CA, plain HTTP, proxy); the credentials are these.
    const session = await Session.open(options);
    const client = session.clientWithCredentials(registry, { username: values.username, password }, { retries: 1 });
    const timeoutMs = options.timeoutMs ?? LOGIN_TIMEOUT_MS;
    const deadline = timeoutMs > 0 ? AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]) : signal;
    try {
      await client.checkLogin(deadline);
    } catch (err) {
      if (deadline.aborted && !signal.aborted) throw new Error(`login ${registry}: no answer within ${formatDuration(timeoutMs)}`);
      throw err;
    } finally {
      client.close();
    }
    await session.credentials.login(registry, values.username, password);
    process.stdout.write(`login succeeded for ${registry}\n`);
  },
};

const logoutUsage = `Usage: sealant logout REGISTRY

Remove the credentials stored for REGISTRY.`;

export const logout: Command = {
  usage: logoutUsage,
  async run(args) {
    const { positionals } = parse(args, {}, logoutUsage);
    if (positionals.length !== 1) throw new UsageError(`logout needs exactly one REGISTRY\n\n${logoutUsage}`);
    const session = await Session.open();
    const removed = await session.credentials.logout(positionals[0]!);
    process.stdout.write(removed ? `removed credentials for ${positionals[0]}\n` : `no credentials stored for ${positionals[0]}\n`);
  },
};

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}
