import { ETC_HOSTS_LOCK, underHostLock } from "../../../ssh/host-lock";
import { delimiterFor, shellQuote } from "../../../ssh/shell";

/** Shell pieces every kubernetes runtime command is built from. */
export const ADMIN_CONF = "/etc/kubernetes/admin.conf";
export const CA_CERT = "/etc/kubernetes/pki/ca.crt";

/** Shell helpers every command starts with. */
export const PRELUDE = `set -eu
export KUBECONFIG=${ADMIN_CONF}
# the API server answering ready (it restarts for a while after a control plane's upgrade)
wait_api() {
  for i in $(seq 1 60); do kubectl get --raw /readyz > /dev/null 2>&1 && return 0; sleep 2; done
  echo "the API server did not answer ready within 120 s" >&2; return 1
}
# the node registered with this IP (kubectl's wide listing: NAME STATUS ROLES AGE VERSION INTERNAL-IP ...)
node_of() { kubectl get nodes -o wide --no-headers | awk -v ip="$1" '$6 == ip { print $1; exit }'; }
# one line of /etc/hosts, ours, replaced whole under the host's /etc/hosts lock (other clusters
# edit the file too); renamed into place, or written in place when /etc/hosts is a bind mount
hosts_line() {
${underHostLock(
  ETC_HOSTS_LOCK,
  "/etc/hosts",
  `tmp=$(mktemp /etc/.hosts.sealant-XXXXXX 2> /dev/null || mktemp)
grep -v " $1 # sealant-kubernetes$" /etc/hosts > "$tmp" || true
[ -z "$2" ] || echo "$2 $1 # sealant-kubernetes" >> "$tmp"
chmod 644 "$tmp"
mv -f "$tmp" /etc/hosts 2> /dev/null || { cat "$tmp" > /etc/hosts; rm -f "$tmp"; }`,
)}
}
`;

/**
 * A heredoc writing `text` to `path` with mode 600: the text's `$` and backquotes are escaped,
 * except `${SEALANT_...}` placeholders, which the shell fills from the command's (secret) env.
 * The delimiter is random and occurs nowhere in the text: a line of the user's YAML can never
 * end the heredoc early and have the rest run as commands.
 */
export function writeFile(path: string, text: string): string {
  const escaped = text.replace(/[\\$`]/g, "\\$&").replace(/\\\$\{(SEALANT_[A-Z0-9_]+)\}/g, "${$1}");
  const dir = path.slice(0, path.lastIndexOf("/"));
  // The temp file is hidden: the kubelet reads every other file in its manifests dir, half-written ones too.
  const tmp = `${dir}/.${path.slice(path.lastIndexOf("/") + 1)}.tmp`;
  const end = delimiterFor(escaped, "SEALANT_EOF_");
  return `(umask 077; mkdir -p ${shellQuote(dir)}; cat > ${shellQuote(tmp)} <<${end}
${escaped}
${end}
mv -f ${shellQuote(tmp)} ${shellQuote(path)})\n`;
}
