"use strict";
// Optional CPU profiles of the sealant side of each measurement (BENCH_PROFILE=1): written as
// bench/.profiles/<name>.cpuprofile (open in Chrome DevTools or speedscope) and summarised as
// the functions with the most self time. Profiling slows the code down, so figures of a
// profiled run are not the ones to quote.
const fs = require("node:fs");
const path = require("node:path");
const inspector = require("node:inspector/promises");

const enabled = process.env.BENCH_PROFILE === "1";
const dir = path.join(__dirname, "..", ".profiles");
let session;

async function profiled(name, fn) {
  if (!enabled) return fn();
  if (!session) {
    session = new inspector.Session();
    session.connect();
    await session.post("Profiler.enable");
    await session.post("Profiler.setSamplingInterval", { interval: 200 });
  }
  await session.post("Profiler.start");
  let profile;
  try {
    return await fn();
  } finally {
    ({ profile } = await session.post("Profiler.stop"));
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, `${name}.cpuprofile`), JSON.stringify(profile));
    fs.writeFileSync(path.join(dir, `${name}.top.txt`), summarise(profile));
  }
}

/** Self time per function (name + file:line), the top 25, with the idle share. */
function summarise(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const dt = profile.timeDeltas;
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]);
    const ms = (dt[i] ?? 0) / 1000;
    total += ms;
    const cf = node.callFrame;
    const file = cf.url ? cf.url.replace(/^file:\/\//, "").replace(/^.*\/(dist|node_modules)\//, "$1/") : "";
    const key = `${cf.functionName || "(anonymous)"}  ${file}${file ? `:${cf.lineNumber + 1}` : ""}`;
    self.set(key, (self.get(key) ?? 0) + ms);
  }
  const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 25);
  return (
    [
      `total ${total.toFixed(0)} ms sampled`,
      ...rows.map(([k, ms]) => `${ms.toFixed(1).padStart(9)} ms ${((100 * ms) / total).toFixed(1).padStart(5)}%  ${k}`),
    ].join("\n") + "\n"
  );
}

module.exports = { profiled, profilingEnabled: enabled, profileDir: dir };
