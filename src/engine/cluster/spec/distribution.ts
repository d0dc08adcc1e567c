import { z } from "zod";

export const DISTRIBUTION_MODES = ["auto", "direct", "relay"] as const;

/** How hosts get the image's layers. */
export const distributionSchema = z.strictObject({
  /**
   * direct: the operator sends every host the layers it lacks; relay: the operator sends each
   * layer to one host and hosts pass layers on to each other over their own network, each
   * while it still arrives; auto: relay when a distribute phase sends the image to 3 hosts or
   * more, else direct.
   *
   * Why 3: when the operator's link is the limit (a laptop, a VPN, a jump host), direct costs
   * about one host's time per host — the rate-limited bench (bench/README.md, 100 Mbit/s,
   * 64 MiB) took 9.7x one host's time at 10 hosts direct and 1.2x by relay — so from 3 hosts
   * relay saves the operator at least two copies, while a relay costs each host a key, an
   * authorised entry and one ssh hop (well under a second on a LAN). Below 3, one relayed host
   * gains less than its hop.
   * Auto never insists: where hosts cannot reach each other on their cluster IPs, or a host's
   * sshd does not read the login user's ~/.ssh/authorized_keys, the host gets the image
   * directly, said as an info line (with `relay` it is a warning).
   * @default "auto"
   */
  mode: z.enum(DISTRIBUTION_MODES).default("auto"),
  /** relay (and auto when it relays): how many hosts each host passes the layers on to. @default 3 */
  fanout: z.number().int().min(1).max(64).default(3),
});
