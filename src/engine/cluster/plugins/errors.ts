/** Where a plugin failed, in the user's terms: the Plugin document, its module, and the phase and host when it was running. */
export interface PluginWhere {
  plugin: string;
  module: string;
  phase?: string;
  host?: string;
}

/** A MODULE plugin that cannot be loaded, has the wrong shape, failed, threw or timed out: one message that names it. */
export class PluginError extends Error {
  constructor(
    readonly where: PluginWhere,
    readonly reason: string,
    /** "module-changed": a pinned module's files are no longer what was resolved (callers say what to do in their terms). */
    readonly code?: "module-changed",
  ) {
    const at = [where.phase && `at ${where.phase}`, where.host && `on ${where.host}`].filter(Boolean).join(" ");
    super(`plugin ${where.plugin} (module ${where.module})${at ? ` ${at}` : ""}: ${reason}`);
    this.name = "PluginError";
  }
}
