import { describe, expect, it } from "vitest";
import { effectiveEnv, parseClusterfile, renderTemplate, resolveHosts, TemplateError } from "../../../../src/engine/cluster/spec";
import { sealerCluster } from "./helpers";

describe("env precedence", () => {
  it("host env over cluster env over image env", () => {
    // GIVEN the same keys at three levels
    const image = { A: "image", B: "image", C: "image" };
    const cluster = { B: "cluster", C: "cluster" };
    const host = { C: "host" };
    // THEN the most specific wins, and nothing is lost
    expect(effectiveEnv(image, cluster, host)).toEqual({ A: "image", B: "cluster", C: "host" });
    expect(effectiveEnv(undefined, cluster, undefined)).toEqual(cluster);
  });

  it("gives every host of a sealer Clusterfile its env, ssh and roles", () => {
    // GIVEN sealer's storage-device example: masters override StorageDevice, ssh user per group
    const { spec } = parseClusterfile(
      sealerCluster(
        `    - ips: [ 192.168.0.2 ]
      roles: [ master ]
      env: [ StorageDevice=/dev/vde ]
      ssh: { user: admin, port: 2222 }
    - ips: [ 192.168.0.3 ]
      roles: [ node ]`,
        "  env: [ EtcdDevice=/dev/vdb, StorageDevice=/dev/vdc ]",
      ),
    );
    // WHEN resolved with the image's env
    const hosts = resolveHosts(spec, { StorageDevice: "/dev/sda", ImageOnly: "1" });
    // THEN host > cluster > image (with what sealer gives every host), and the group's ssh fields win over the cluster's
    const sealer = (ip: string) => ({
      HostIP: ip,
      RegistryDomain: "sea.hub",
      RegistryPort: "5000",
      RegistryURL: "sea.hub:5000",
      LocalRegistryDomain: "sea.hub",
      LocalRegistryPort: "5000",
      LocalRegistryURL: "sea.hub:5000",
    });
    expect(hosts.map((h) => [h.ip, h.roles, h.env, h.ssh.user, h.ssh.port, h.ssh.password])).toEqual([
      [
        "192.168.0.2",
        ["master"],
        { StorageDevice: "/dev/vde", EtcdDevice: "/dev/vdb", ImageOnly: "1", ...sealer("192.168.0.2") },
        "admin",
        2222,
        "s3cret-Pa55",
      ],
      ["192.168.0.3", ["node"], { StorageDevice: "/dev/vdc", EtcdDevice: "/dev/vdb", ImageOnly: "1", ...sealer("192.168.0.3") }, "root", 22, "s3cret-Pa55"],
    ]);
  });
});

describe("renderTemplate", () => {
  it("renders the Go-template forms cluster images use", () => {
    // GIVEN sealer's kubeadm template with spacing variants, a default, a pipeline, if/else and trim markers
    const tmpl = [
      "networking:",
      "  podSubnet: {{ .PodCIDR }}",
      "  serviceSubnet: {{.SvcCIDR}}",
      '  dnsDomain: {{ default "cluster.local" .DNSDomain }}',
      "  token: {{ .Token | b64enc | quote }}",
      '  dir: {{ index . "etcd-dir" }}',
      "{{- if .ExtraSAN }}",
      "certSANs: [{{ .ExtraSAN }}]",
      "{{- else }}",
      "certSANs: []",
      "{{- end }}",
      "{{/* a comment */}}",
    ].join("\n");
    const env = { PodCIDR: "100.64.0.0/10", SvcCIDR: "10.96.0.0/22", Token: "abc", "etcd-dir": "/data/etcd", ExtraSAN: "" };
    // WHEN rendered
    const out = renderTemplate(tmpl, env, { file: "etc/kubeadm.yaml.tmpl" });
    // THEN
    expect(out).toBe(
      [
        "networking:",
        "  podSubnet: 100.64.0.0/10",
        "  serviceSubnet: 10.96.0.0/22",
        "  dnsDomain: cluster.local",
        '  token: "YWJj"',
        "  dir: /data/etcd",
        "certSANs: []",
        "",
      ].join("\n"),
    );
  });

  it("names the file, the line and every missing variable", () => {
    // GIVEN a template using two variables the env does not have
    const tmpl = 'a: {{ .PodCIDR }}\nb: {{ default "x" .Optional }}\nc: {{ .SvcCIDR | upper }}\n';
    // WHEN rendered with neither
    let err: unknown;
    try {
      renderTemplate(tmpl, {}, { file: "etc/kubeadm.yaml.tmpl" });
    } catch (e) {
      err = e;
    }
    // THEN both are named, with file and line; the defaulted one is fine
    expect(err).toBeInstanceOf(TemplateError);
    expect((err as TemplateError).message).toBe(
      [
        "etc/kubeadm.yaml.tmpl: 2 problems:",
        '  etc/kubeadm.yaml.tmpl:1: missing variable "PodCIDR" (not in the image, cluster or host env)',
        '  etc/kubeadm.yaml.tmpl:3: missing variable "SvcCIDR" (not in the image, cluster or host env)',
      ].join("\n"),
    );
    expect(() => renderTemplate("{{ range .X }}{{ end }}", {}, { file: "t.tmpl" })).toThrow(
      "t.tmpl:1: {{ range }} is not supported in sealant's templates (supported: .VAR, pipelines, if/else/end)",
    );
    expect(() => renderTemplate("x\n{{ .A ", {}, { file: "t.tmpl" })).toThrow('t.tmpl:2: unclosed action: "{{" without "}}"');
  });
});
