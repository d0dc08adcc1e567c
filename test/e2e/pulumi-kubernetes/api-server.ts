/**
 * A real Kubernetes API server on loopback, the cheapest thing the Kubernetes provider for Pulumi
 * can talk to: the kube-apiserver scripts/kubernetes.sh builds, on the etcd scripts/kube-images.sh
 * builds (both from the Go module proxy, cached; setup.sh runs them), with a private CA made by
 * openssl, a client certificate in system:masters and RBAC on — the shape of the kubeconfig a
 * sealant cluster hands out. No nodes: objects are stored and served, nothing schedules them (a
 * ConfigMap needs nothing more). One controller, the garbage collector: the provider deletes with
 * foreground propagation, which leaves an object with a `foregroundDeletion` finalizer that only
 * the garbage collector removes (without it a delete waits forever).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { existsSync, readdirSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { homedir } from "node:os";
import { join } from "node:path";
import { execP } from "../../support/tools";

const CACHE = process.env["SEALANT_CACHE"] ?? join(homedir(), ".cache/sealant");
const KUBERNETES = "v1.31.4";

export interface ApiServer {
  /** https://127.0.0.1:port */
  server: string;
  /** A kubeconfig for an administrator (client certificate in system:masters), data embedded. */
  kubeconfig: string;
  kubeconfigFile: string;
  /** A kubeconfig for the same server and CA with a newly issued administrator certificate (its text differs). */
  reissuedKubeconfig(): Promise<string>;
  /** The real kubectl against this server. */
  kubectl(...args: string[]): Promise<string>;
  stop(): Promise<void>;
}

function cached(path: string, script: string): string {
  if (!existsSync(path)) throw new Error(`${path} not found: run bash scripts/${script} (scripts/setup.sh does)`);
  return path;
}

function etcdBinary(): string {
  const addons = join(CACHE, "kube-addons");
  const dir = existsSync(addons) ? readdirSync(addons).find((d) => d.startsWith("etcd-v")) : undefined;
  return cached(join(addons, dir ?? "etcd-v3.5.15", "bin/etcd"), `kube-images.sh ${KUBERNETES}`);
}

/** A loopback port nobody listens on right now. */
function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const s = createServer();
    s.on("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => done(port));
    });
  });
}

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

/** A key and a certificate for `subject` signed by the CA in `dir`, with the X.509 extensions `ext`. */
async function issue(dir: string, name: string, subject: string, ext: string): Promise<void> {
  const p = (s: string) => join(dir, `${name}.${s}`);
  await writeFile(p("ext"), ext);
  await execP("openssl", ["req", "-new", ...EC, "-keyout", p("key"), "-out", p("csr"), "-subj", subject]);
  await execP("openssl", [
    "x509",
    "-req",
    "-in",
    p("csr"),
    "-CA",
    join(dir, "ca.crt"),
    "-CAkey",
    join(dir, "ca.key"),
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    p("ext"),
    "-out",
    p("crt"),
  ]);
}

function issueAdmin(dir: string, name: string): Promise<void> {
  return issue(
    dir,
    name,
    "/O=system:masters/CN=sealant-test-admin",
    "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n",
  );
}

async function makePki(dir: string): Promise<void> {
  await execP("openssl", [
    "req",
    "-x509",
    ...EC,
    "-keyout",
    join(dir, "ca.key"),
    "-out",
    join(dir, "ca.crt"),
    "-days",
    "2",
    "-subj",
    "/CN=sealant test kubernetes CA",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  await issue(
    dir,
    "apiserver",
    "/CN=kube-apiserver",
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
  );
  await issueAdmin(dir, "admin");
  const sa = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  await writeFile(join(dir, "sa.key"), sa.privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
  await writeFile(join(dir, "sa.pub"), sa.publicKey.export({ type: "spki", format: "pem" }));
}

async function kubeconfigFor(dir: string, server: string, user = "admin"): Promise<string> {
  const b64 = async (f: string) => (await readFile(join(dir, f))).toString("base64");
  return [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "  - name: test",
    "    cluster:",
    `      server: ${server}`,
    `      certificate-authority-data: ${await b64("ca.crt")}`,
    "users:",
    "  - name: admin",
    "    user:",
    `      client-certificate-data: ${await b64(`${user}.crt`)}`,
    `      client-key-data: ${await b64(`${user}.key`)}`,
    "contexts:",
    "  - name: admin@test",
    "    context: { cluster: test, user: admin }",
    "current-context: admin@test",
    "",
  ].join("\n");
}

function start(bin: string, args: string[], log: string): ChildProcess {
  const child = spawn("sh", ["-c", 'exec "$0" "$@" >> "$LOG" 2>&1', bin, ...args], { env: { ...process.env, LOG: log }, stdio: "ignore" });
  child.on("error", () => undefined);
  return child;
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((done) => child.once("exit", () => done()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  await gone;
  clearTimeout(timer);
}

/** Starts etcd and kube-apiserver with their state in `dir`; resolves once /readyz answers ok. */
export async function startApiServer(dir: string): Promise<ApiServer> {
  const apiserver = cached(join(CACHE, `kubernetes-${KUBERNETES}`, "bin/kube-apiserver"), `kubernetes.sh ${KUBERNETES}`);
  const controllerManager = cached(join(CACHE, `kubernetes-${KUBERNETES}`, "bin/kube-controller-manager"), `kubernetes.sh ${KUBERNETES}`);
  const kubectlBin = cached(join(CACHE, `kubernetes-${KUBERNETES}`, "bin/kubectl"), `kubernetes.sh ${KUBERNETES}`);
  const etcd = etcdBinary();
  const pki = join(dir, "pki");
  await mkdir(pki, { recursive: true });
  await makePki(pki);
  const [clientPort, peerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
  const children: ChildProcess[] = [];
  const stop = async () => {
    for (const c of children.reverse()) await stopProcess(c);
  };
  try {
    const peer = `http://127.0.0.1:${peerPort}`;
    const client = `http://127.0.0.1:${clientPort}`;
    children.push(
      start(
        etcd,
        [
          "--name",
          "test",
          "--data-dir",
          join(dir, "etcd"),
          "--listen-client-urls",
          client,
          "--advertise-client-urls",
          client,
          "--listen-peer-urls",
          peer,
          "--initial-advertise-peer-urls",
          peer,
          "--initial-cluster",
          `test=${peer}`,
        ],
        join(dir, "etcd.log"),
      ),
    );
    children.push(
      start(
        apiserver,
        [
          `--etcd-servers=${client}`,
          "--bind-address=127.0.0.1",
          "--advertise-address=127.0.0.1",
          `--secure-port=${apiPort}`,
          `--tls-cert-file=${join(pki, "apiserver.crt")}`,
          `--tls-private-key-file=${join(pki, "apiserver.key")}`,
          `--client-ca-file=${join(pki, "ca.crt")}`,
          "--authorization-mode=RBAC",
          "--service-account-issuer=https://kubernetes.default.svc",
          `--service-account-key-file=${join(pki, "sa.pub")}`,
          `--service-account-signing-key-file=${join(pki, "sa.key")}`,
          "--service-cluster-ip-range=10.96.0.0/12",
          // A loopback address may not be a Service endpoint: no "kubernetes" Endpoints, no error loop.
          "--endpoint-reconciler-type=none",
          `--cert-dir=${join(dir, "certs")}`,
        ],
        join(dir, "kube-apiserver.log"),
      ),
    );
    const server = `https://127.0.0.1:${apiPort}`;
    const kubeconfig = await kubeconfigFor(pki, server);
    const kubeconfigFile = join(dir, "kubeconfig");
    await writeFile(kubeconfigFile, kubeconfig, { mode: 0o600 });
    children.push(
      start(
        controllerManager,
        [`--kubeconfig=${kubeconfigFile}`, "--controllers=garbagecollector", "--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=0"],
        join(dir, "kube-controller-manager.log"),
      ),
    );
    const kubectl = async (...args: string[]) =>
      (await execP(kubectlBin, ["--kubeconfig", kubeconfigFile, "--request-timeout=20s", ...args], { maxBuffer: 16 << 20 })).stdout;
    const deadline = Date.now() + 110_000;
    for (;;) {
      for (const c of children) if (c.exitCode !== null) throw new Error(`${c.spawnargs[3]} exited ${c.exitCode}: see ${dir}/*.log`);
      const ready = await kubectl("get", "--raw", "/readyz").catch(() => "");
      if (ready.trim() === "ok") break;
      if (Date.now() > deadline) throw new Error(`kube-apiserver not ready after 110 s: see ${join(dir, "kube-apiserver.log")}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
    let issued = 0;
    const reissuedKubeconfig = async () => {
      const name = `admin-${++issued}`;
      await issueAdmin(pki, name);
      return kubeconfigFor(pki, server, name);
    };
    return { server, kubeconfig, kubeconfigFile, reissuedKubeconfig, kubectl, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
