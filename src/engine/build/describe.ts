import type { Instruction } from "./kubefile";

/** An instruction as the build's progress and the image history show it. */
export function describe(ins: Instruction): string {
  switch (ins.kind) {
    case "COPY":
    case "ADD":
      return `${ins.kind} ${ins.sources.join(" ")} ${ins.dest}`;
    case "RUN":
      return `RUN ${typeof ins.command === "string" ? ins.command : JSON.stringify(ins.command)}`;
    case "APP":
    case "CNI":
    case "CSI":
      return `${ins.kind} ${ins.name} ${ins.sources.map((s) => (s.type === "local" ? `local://${s.path}` : s.url)).join(" ")}`;
    case "ENV":
    case "LABEL":
      return `${ins.kind} ${Object.entries(ins.pairs)
        .map(([k, v]) => `${k}=${v}`)
        .join(" ")}`;
    case "APPENV":
      return `APPENV ${ins.app} ${Object.entries(ins.pairs)
        .map(([k, v]) => `${k}=${v}`)
        .join(" ")}`;
    case "APPCMDS":
      return `APPCMDS ${ins.app} ${JSON.stringify(ins.commands)}`;
    case "LAUNCH":
      return `LAUNCH ${JSON.stringify(ins.apps)}`;
    case "CMDS":
    case "CMD":
      return `${ins.kind} ${JSON.stringify(ins.commands)}`;
    case "KUBEVERSION":
      return `KUBEVERSION ${ins.version}`;
    case "MAINTAINER":
      return `MAINTAINER ${ins.maintainer}`;
    case "FROM":
      return `FROM ${ins.image}`;
    case "ARG":
      return `ARG ${ins.args.map((a) => a.name).join(" ")}`;
  }
}
