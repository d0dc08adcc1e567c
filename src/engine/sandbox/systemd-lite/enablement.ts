import { existsSync, mkdirSync, symlinkSync, unlinkSync } from "node:fs";
import { dirname, join } from "node:path";
import { ETC_UNITS } from "./paths";
import { isLink, readdirSafe } from "./safe-read";
import type { Service } from "./unit-file";

// [Install]: enabling is links under /etc/systemd/system (*.wants, *.requires, aliases).

export function wantsLinks(name: string): string[] {
  const out: string[] = [];
  for (const e of readdirSafe(ETC_UNITS)) {
    if (!/\.(wants|requires)$/.test(e)) continue;
    const link = join(ETC_UNITS, e, name);
    if (isLink(link) || existsSync(link)) out.push(link);
  }
  return out;
}

export function enableUnit(svc: Service, quiet: boolean): void {
  const links: string[] = [];
  for (const t of svc.wantedBy) links.push(join(ETC_UNITS, `${t}.wants`, svc.name));
  for (const t of svc.requiredBy) links.push(join(ETC_UNITS, `${t}.requires`, svc.name));
  for (const a of svc.alias) links.push(join(ETC_UNITS, a));
  if (!links.length) {
    if (!quiet) {
      process.stderr.write(
        `The unit files have no installation config (WantedBy=, RequiredBy=, Also=,\nAlias= settings in the [Install] section, and DefaultInstance= for template\nunits). This means they are not meant to be enabled or disabled using systemctl.\n`,
      );
    }
    return;
  }
  for (const link of links) {
    if (isLink(link) || existsSync(link)) continue;
    mkdirSync(dirname(link), { recursive: true });
    symlinkSync(svc.fragment, link);
    if (!quiet) process.stderr.write(`Created symlink ${link} → ${svc.fragment}.\n`);
  }
}

export function disableUnit(svc: Service, quiet: boolean): void {
  const links = wantsLinks(svc.name);
  for (const a of svc.alias) if (isLink(join(ETC_UNITS, a))) links.push(join(ETC_UNITS, a));
  for (const link of links) {
    unlinkSync(link);
    if (!quiet) process.stderr.write(`Removed "${link}".\n`);
  }
}

export function enabledState(svc: Service): string {
  if (svc.masked) return "masked";
  if (wantsLinks(svc.name).length) return "enabled";
  if (svc.alias.some((a) => isLink(join(ETC_UNITS, a)))) return "enabled";
  return svc.hasInstall ? "disabled" : "static";
}

export function enabledUnits(): string[] {
  const names: string[] = [];
  for (const e of readdirSafe(ETC_UNITS).sort()) {
    if (!/\.(wants|requires)$/.test(e)) continue;
    for (const u of readdirSafe(join(ETC_UNITS, e)).sort()) if (u.endsWith(".service") && !names.includes(u)) names.push(u);
  }
  return names;
}
