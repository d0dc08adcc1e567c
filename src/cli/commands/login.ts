import { RegistryClient } from "../../engine/image/registry";
import { staticCredentials } from "../../engine/image/credentials";
import { isLoopbackRegistry } from "../../engine/image/reference";
import { Session } from "../../engine/session";
import { parse } from "../args";
import { UsageError } from "../errors";
import type { Command } from "./command";

const loginUsage = `Usage: sealant login REGISTRY -u USER (-p PASSWORD | --password-stdin) [--insecure]

Check the credentials against REGISTRY and store them in $SEALANT_HOME/auth.json (mode 0600).`;

export const login: Command = {
  usage: loginUsage,
  async run(args, signal) {
    const { values, positionals } = parse(
      args,
      {
        username: { type: "string", short: "u" },
        password: { type: "string", short: "p" },
        "password-stdin": { type: "boolean", default: false },
        insecure: { type: "boolean", default: false },
      },
      loginUsage,
    );
    if (positionals.length !== 1) throw new UsageError(`login needs exactly one REGISTRY\n\n${loginUsage}`);
    if (!values.username) throw new UsageError(`login needs -u USER\n\n${loginUsage}`);
    if (values.password !== undefined && values["password-stdin"]) throw new UsageError("use either -p or --password-stdin, not both");
    const password = values["password-stdin"] ? (await readStdin()).replace(/\r?\n$/, "") : values.password;
    if (!password) throw new UsageError(`login needs a password: -p PASSWORD or --password-stdin\n\n${loginUsage}`);
    const registry = positionals[0]!;
    const client = new RegistryClient(registry, {
      insecure: values.insecure && !isLoopbackRegistry(registry),
      credentials: staticCredentials({ username: values.username, password }),
      retries: 1,
    });
    try {
      await client.checkLogin(signal);
    } finally {
      client.close();
    }
    const session = await Session.open();
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
