import { describe, expect, it } from "vitest";
import { parseClusterfile, parseClusterSpec, renderTemplate, resolveHosts } from "../../../../src/engine/cluster/spec";
import { sealerCluster } from "./helpers";

/*
 * The variables sealer gives every host's env, with sealer's names and values (its last commit:
 * pkg/clusterfile/decoder.go checkAndFillCluster, pkg/infradriver/ssh_infradriver.go GetHostEnv,
 * common/common.go), as templates and scripts see them through the resolved hosts.
 */

const master = "    - ips: [ 10.0.0.1 ]\n      roles: [ master ]";

describe("sealer's variables in every host's env", () => {
  it("GIVEN the cluster's own registry THEN Registry* and LocalRegistry* name it, and HostIP is the host's", () => {
    const spec = parseClusterfile(sealerCluster(`${master}\n    - ips: [ 10.0.0.2 ]\n      roles: [ node ]`)).spec;
    const [m, n] = resolveHosts(spec);
    expect(m!.env).toMatchObject({
      RegistryDomain: "sea.hub",
      RegistryPort: "5000",
      RegistryURL: "sea.hub:5000",
      LocalRegistryDomain: "sea.hub",
      LocalRegistryPort: "5000",
      LocalRegistryURL: "sea.hub:5000",
      HostIP: "10.0.0.1",
    });
    expect(n!.env["HostIP"]).toBe("10.0.0.2");
    expect(Object.keys(m!.env).filter((k) => k.startsWith("External"))).toEqual([]);
  });

  it("GIVEN sealer's externalRegistry THEN Registry* and ExternalRegistry* name the external one; a Clusterfile's own RegistryURL is sealer's to set", () => {
    const text = sealerCluster(
      master,
      [
        "  env: [ RegistryURL=mine.example:1, SvcCIDR=10.96.0.0/16, PodCIDR=100.64.0.0/10 ]",
        "  registry:",
        "    externalRegistry: { domain: harbor.example.com, port: 8443 }",
        "  containerRuntime: { type: docker }",
      ].join("\n"),
    );
    const [m] = resolveHosts(parseClusterfile(text).spec);
    expect(m!.env).toMatchObject({
      RegistryDomain: "harbor.example.com",
      RegistryPort: "8443",
      RegistryURL: "harbor.example.com:8443",
      ExternalRegistryDomain: "harbor.example.com",
      ExternalRegistryPort: "8443",
      ExternalRegistryURL: "harbor.example.com:8443",
      KubeSvcIP: "10.96.0.1",
      DNSSvcIP: "10.96.0.10",
      ContainerRuntime: "docker",
      SvcCIDR: "10.96.0.0/16",
    });
    expect(Object.keys(m!.env).filter((k) => k.startsWith("LocalRegistry"))).toEqual([]);
    // What a sealer image's kubeadm template makes of it.
    expect(renderTemplate("imageRepository: {{ .RegistryURL }}/library\nclusterDNS: [{{ .DNSSvcIP }}]", m!.env)).toBe(
      "imageRepository: harbor.example.com:8443/library\nclusterDNS: [10.96.0.10]",
    );
  });

  it("GIVEN an external registry without a port THEN the URLs are the domain, RegistryPort empty and ExternalRegistryPort 0, as sealer formats them", () => {
    const spec = parseClusterSpec({
      name: "c",
      image: "x:1",
      hosts: [{ ips: ["10.0.0.1"], roles: ["master"] }],
      registry: { external: { domain: "harbor.example.com" } },
    });
    expect(resolveHosts(spec)[0]!.env).toMatchObject({
      RegistryURL: "harbor.example.com",
      RegistryPort: "",
      ExternalRegistryPort: "0",
      ExternalRegistryURL: "harbor.example.com",
    });
  });

  it("GIVEN IPv6 hosts and an IPv6 SvcCIDR THEN HostIPFamily is 6 and the service IPs are the range's 1st and 10th", () => {
    const spec = parseClusterSpec({
      name: "c",
      image: "x:1",
      hosts: [{ ips: ["fd00::1"], roles: ["master"] }],
      env: { SvcCIDR: "fd00:10:96::/112,10.96.0.0/16" },
    });
    expect(resolveHosts(spec)[0]!.env).toMatchObject({ HostIPFamily: "6", KubeSvcIP: "fd00:10:96::1", DNSSvcIP: "fd00:10:96::a", HostIP: "fd00::1" });
  });

  it("GIVEN a host group's own env THEN it overrides sealer's values for its hosts, HostIP included (sealer's Merge keeps the host's entries)", () => {
    const spec = parseClusterSpec({
      name: "c",
      image: "x:1",
      hosts: [{ ips: ["10.0.0.1"], roles: ["master"], env: { HostIP: "192.168.1.1", RegistryDomain: "reg.local" } }],
    });
    expect(resolveHosts(spec)[0]!.env).toMatchObject({ HostIP: "192.168.1.1", RegistryDomain: "reg.local", RegistryURL: "sea.hub:5000" });
  });
});
