"use strict";
// Benchmark 4: planning a change of a 1,000-host cluster (goal < 100 ms). planCluster is pure:
// desired and current clusters in, ordered phases out, so it is timed on plain objects, as
// `sealant plan` and `pulumi preview` call it after reading the record. A few untimed calls
// first (so the figure is not the JIT's first look at the code), then the median of many.
const { planCluster, formatPlan } = require("../dist/engine/cluster/plan");

const HOSTS = 1000;
const RUNS = 21;
const digest = (c) => `sha256:${c.repeat(64)}`;
const ipOf = (i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
/** 3 masters, the rest nodes. */
const hosts = (from, n) => Array.from({ length: n }, (_, k) => ({ ip: ipOf(from + k), roles: from + k < 3 ? ["master"] : ["node"] }));

function desired(list, imageDigest, maxUnavailable = 1) {
  return {
    name: "big",
    image: `bench/big@${imageDigest}`,
    imageDigest,
    hosts: list,
    upgrade: { maxUnavailable },
    configDigest: digest("c"),
    plugins: [],
    launch: false,
  };
}

/** The record of a cluster created with image `a`: every host a member with every step done. */
function current(list) {
  const img = "a".repeat(12);
  const done = [`distribute@${img}`, `render@${img}.${"c".repeat(12)}`, "hook:init-host", "hook:bootstrap", "hook:check"];
  return {
    name: "big",
    imageDigest: digest("a"),
    configDigest: digest("c"),
    hosts: list.map((h) => ({ ...h, member: true, imageDigest: digest("a"), done: [...done] })),
  };
}

function timePlan(d, c, { median, round }) {
  for (let i = 0; i < 3; i++) planCluster(d, c);
  const ms = [];
  let plan;
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    plan = planCluster(d, c);
    ms.push(performance.now() - t0);
  }
  const steps = plan.phases.reduce((s, p) => s + p.steps.length, 0);
  // Formatting is what a preview prints: timed once, for scale.
  const t0 = performance.now();
  const text = formatPlan(plan);
  return {
    medianMs: round(median(ms), 2),
    maxMs: round(Math.max(...ms), 2),
    phases: plan.phases.length,
    steps,
    formatMs: round(performance.now() - t0, 2),
    lines: text.split("\n").length,
    summary: plan.summary,
  };
}

function benchPlan(opts) {
  const cluster = hosts(0, HOSTS);
  const cur = current(cluster);
  return {
    hosts: HOSTS,
    runs: RUNS,
    addTen: timePlan(desired([...cluster, ...hosts(HOSTS, 10)], digest("a")), cur, opts),
    rollingUpgrade: timePlan(desired(cluster, digest("b")), cur, opts),
    rollingUpgradeBy50: timePlan(desired(cluster, digest("b"), 50), cur, opts),
    noChange: timePlan(desired(cluster, digest("a")), cur, opts),
  };
}

module.exports = { benchPlan };
