/** Running commands on hosts and copying trees to them over SSH. */
export type {
  Connection,
  ExecOptions,
  ExecResult,
  UploadEntry,
  UploadTar,
  UploadTarFile,
  UploadSource,
  UploadOptions,
  UploadProgress,
  UploadResult,
} from "./connection";
export { failureOf } from "./connection";
export { SshConnection, type SshConnectionOptions } from "./ssh-connection";
export { BulkPool, bulkPool } from "./bulk";
export { CIPHERS, type SshEndpoint, type RetryOptions, type Negotiated } from "./dial";
export { SshError, RemoteCommandError, SshConnectError, HostKeyError, type ConnectFailureKind, type HostKeyInfo, type RemoteCommandFailure } from "./errors";
export {
  keyFingerprint,
  keyTypeOf,
  parseKnownHosts,
  knownHostName,
  entryMatchesHost,
  formatKnownHostsLine,
  verifyHostKey,
  type HostKeyOptions,
  type HostKeyPolicy,
  type KnownHostEntry,
} from "./host-keys";
export { Hosts, HostsError, ConnectionPool, hostName, DEFAULT_PARALLEL_LIMIT, type HostLike, type HostFailure, type ParallelOptions } from "./hosts";
export { FakeConnection, type FakeAnswer, type FakeCommand, type FakeConnectionOptions, type FakeReply, type FakeRule, type FakeUpload } from "./fake";
export { packEntries } from "./upload";
export { envSecrets, isSecretName, redact, REDACTED } from "./redact";
export { delimiterFor, shellQuote, wireCommand, wrapCommand, type SudoMode, type Wire } from "./shell";
