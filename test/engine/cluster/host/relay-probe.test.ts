import { describe, expect, it } from "vitest";
import { clusterHost } from "../../../../src/engine/cluster/host/connect";
import { sshdBlocker } from "../../../../src/engine/cluster/host/relay-probe";
import { parseClusterSpec, resolveHosts } from "../../../../src/engine/cluster/spec";

/** A host of a parsed Clusterfile, logging in as `user`. */
function host(user: string) {
  const spec = parseClusterSpec({ name: "x", image: "example/app:1", hosts: [{ ips: ["10.0.0.2"], roles: ["master"] }], ssh: { user } });
  return clusterHost(resolveHosts(spec)[0]!);
}

/** `sshd -T` output as OpenSSH prints it (lower-case keywords), with these settings. */
const settings = (lines: Record<string, string>) =>
  Object.entries({
    port: "22",
    pubkeyauthentication: "yes",
    permitrootlogin: "without-password",
    authorizedkeysfile: ".ssh/authorized_keys .ssh/authorized_keys2",
    ...lines,
  })
    .map(([k, v]) => `${k} ${v}`)
    .join("\n");

describe("whether a receiver's sshd takes the relay's key", () => {
  it("GIVEN sshd's defaults, or the user's own file spelt another way THEN nothing blocks", () => {
    expect(sshdBlocker(settings({}), host("root"))).toBeUndefined();
    for (const f of ["%h/.ssh/authorized_keys", "~/.ssh/authorized_keys", "/etc/ssh/keys/%u .ssh/authorized_keys"])
      expect(sshdBlocker(settings({ authorizedkeysfile: f }), host("root")), f).toBeUndefined();
    expect(sshdBlocker(settings({ permitrootlogin: "forced-commands-only" }), host("root"))).toBeUndefined();
    expect(sshdBlocker(settings({ permitrootlogin: "no" }), host("deploy"))).toBeUndefined();
  });

  it("GIVEN keys read elsewhere, none, no public keys, or no root login for a root login user THEN it says why", () => {
    expect(sshdBlocker(settings({ authorizedkeysfile: "/etc/ssh/keys/%u" }), host("root"))).toBe(
      "10.0.0.2's sshd reads keys from /etc/ssh/keys/%u, not the login user's ~/.ssh/authorized_keys where relaying authorises the sender",
    );
    expect(sshdBlocker(settings({ authorizedkeysfile: "none" }), host("root"))).toMatch(/reads keys from none/);
    expect(sshdBlocker(settings({ pubkeyauthentication: "no" }), host("deploy"))).toBe("10.0.0.2's sshd does not take public-key logins");
    expect(sshdBlocker(settings({ permitrootlogin: "no" }), host("root"))).toBe("10.0.0.2's sshd does not let root log in");
  });
});
