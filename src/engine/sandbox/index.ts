/**
 * Local test hosts: each one a process tree in its own mount, UTS and PID namespaces, on an
 * overlay of the machine's / (its writes stay its own), with `sshd` as PID 1 on 127.0.10.N:22.
 * In Kubernetes mode (`sandboxUp(n, { kubernetes: true })`) each host also has its own network
 * namespace on a private bridge, cgroup and IPC namespaces, and a systemd stand-in: enough for
 * kubeadm, containerd and the kubelet (see kube-host.ts).
 * Used by tests, benchmarks, the demo and `sealant sandbox`; nothing else imports it.
 */
export { sandboxAdd, sandboxDown, sandboxGet, sandboxList, sandboxUp } from "./sandbox";
export { sandboxDir, sandboxRoot } from "./dirs";
export { startHost, stopHost } from "./host-power";
export type { Sandbox, SandboxCommonOptions, SandboxHost, SandboxKubernetes, SandboxRef, SandboxSsh, SandboxUpOptions } from "./types";
export { DEFAULT_REAL_DIRS, IP_PREFIX } from "./host";
export { KUBE_REAL_DIRS, KUBE_SYSCTLS } from "./kube-host";
export { KUBE_MAX_INDEX, KUBE_NET_PREFIX } from "./network";
export { hostExec, type HostExecOptions, type HostExecResult } from "./exec";
export { sshArgs } from "./ssh-args";
