import { execFile } from "node:child_process";
import { promises as fs } from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import type * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";

const execFileP = promisify(execFile);

/**
 * A registry behind TLS whose certificate a private CA signs (as a company's Harbor behind its
 * own CA): a node https front (certificates made by openssl) that hands every request to a real
 * plain-HTTP docker-registry on loopback, telling it the original scheme and host
 * (X-Forwarded-Proto / Host) so the upload locations it returns point back at the front. The
 * front counts the requests it serves, so tests can tell which endpoint served an image.
 */
export interface PrivateCaRegistry {
  /** 127.0.0.1:port of the TLS front. */
  host: string;
  port: number;
  /** The CA's certificate (PEM): trusting it is what the test is about. */
  caPem: string;
  /** The CA's certificate as a file. */
  caFile: string;
  /** Requests served, as "METHOD path". */
  requests: string[];
  stop(): Promise<void>;
}

/** `backend`: host:port of a plain registry on loopback. `names`: the certificate's extra names (`DNS:registry.test`). */
export async function startPrivateCaFront(backend: string, names: string[] = []): Promise<PrivateCaRegistry> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "sealant-private-ca-"));
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  const caKey = path.join(dir, "ca.key");
  const caFile = path.join(dir, "ca.crt");
  await execFileP("openssl", [
    "req",
    "-x509",
    ...ec,
    "-keyout",
    caKey,
    "-out",
    caFile,
    "-days",
    "2",
    "-subj",
    "/CN=sealant test private CA",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  const key = path.join(dir, "tls.key");
  const csr = path.join(dir, "tls.csr");
  const crt = path.join(dir, "tls.crt");
  const ext = path.join(dir, "tls.ext");
  const san = ["IP:127.0.0.1", "DNS:localhost", ...names].join(",");
  await fs.writeFile(ext, `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n`);
  await execFileP("openssl", ["req", "-new", ...ec, "-keyout", key, "-out", csr, "-subj", "/CN=registry"]);
  await execFileP("openssl", ["x509", "-req", "-in", csr, "-CA", caFile, "-CAkey", caKey, "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", crt]);
  const requests: string[] = [];
  const [backendHost, backendPort] = [backend.replace(/:\d+$/, ""), Number(/:(\d+)$/.exec(backend)![1])];
  const sockets = new Set<net.Socket>();
  const server = https.createServer({ key: await fs.readFile(key), cert: await fs.readFile(crt) }, (req, res) => {
    requests.push(`${req.method} ${req.url}`);
    const upstream = http.request(
      { host: backendHost, port: backendPort, method: req.method, path: req.url, headers: { ...req.headers, "x-forwarded-proto": "https" }, agent: false },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on("error", () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  server.on("secureConnection", (s: net.Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    port,
    caPem: await fs.readFile(caFile, "utf8"),
    caFile,
    requests,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}
