/**
 * Local test hosts: each one a process tree in its own mount, UTS and PID namespaces, on an
 * overlay of the machine's / (its writes stay its own), with `sshd` as PID 1 on 127.0.10.N:22.
 * Used by tests, benchmarks, the demo and `sealant sandbox`; nothing else imports it.
 */
export {
  sandboxAdd,
  sandboxDir,
  sandboxDown,
  sandboxGet,
  sandboxList,
  sandboxRoot,
  sandboxUp,
  startHost,
  stopHost,
  type Sandbox,
  type SandboxCommonOptions,
  type SandboxHost,
  type SandboxRef,
  type SandboxSsh,
  type SandboxUpOptions,
} from "./sandbox";
export { DEFAULT_REAL_DIRS, IP_PREFIX } from "./host";
export { sshArgs } from "./ssh-args";
