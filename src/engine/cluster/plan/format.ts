import type { Plan } from "./types";

/** The plan as people read it: the summary, then each phase with its steps. */
export function formatPlan(plan: Plan): string {
  const lines = [`Plan for cluster ${plan.cluster}:`, ...plan.summary.map((s) => `  ${s}`), ...(plan.warnings ?? []).map((w) => `  warning: ${w}`)];
  plan.phases.forEach((p, i) => {
    lines.push(`${i + 1}. ${p.title}${p.mode === "serial" && p.steps.length > 1 ? " (one host at a time)" : ""}`);
    for (const s of p.steps) lines.push(`     ${s.description}`);
  });
  return lines.join("\n");
}
