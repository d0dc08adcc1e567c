"use strict";
// Preloaded into every Node process a `pulumi` command starts (NODE_OPTIONS=--require this
// file; bench/pulumi.js sets it, with BENCH_PULUMI_PROBE naming a file): the program's process
// and the dynamic-provider process. Without BENCH_PULUMI_PROBE it does nothing. It records, one
// JSON line per event, appended to that file:
//   load - the first require of a `sealant/provider/impl/*` module (the provider methods
//          require it at their first call; this loads the engine): module, ms;
//   call - each call of that module's provider functions (check, diff, create, update, read,
//          remove): module, fn, ms, and what it decided (diff: changes/replaces; check: plan);
//   ssh  - each ssh2 Client.connect (host) and Client.exec (host, command's first 80 chars),
//          i.e. what any sealant code in these processes opens towards the hosts.
// Nothing is loaded eagerly: the hook only looks at module names, so a process that never
// requires sealant pays for one string test per require.
const fs = require("node:fs");
const Module = require("node:module");

const out = process.env.BENCH_PULUMI_PROBE;
if (out) {
  const write = (rec) => fs.appendFileSync(out, `${JSON.stringify({ pid: process.pid, ...rec })}\n`);
  const FNS = ["check", "diff", "create", "update", "read", "remove"];
  const patched = new Set();
  const load = Module._load;
  Module._load = function (request, ...rest) {
    const impl = typeof request === "string" && request.startsWith("sealant/provider/impl/") ? request.slice("sealant/provider/impl/".length) : undefined;
    const first = (impl || request === "ssh2") && !patched.has(request);
    const t0 = first ? performance.now() : 0;
    const m = load.call(this, request, ...rest);
    if (!first) return m;
    patched.add(request);
    if (impl) {
      write({ event: "load", module: impl, ms: performance.now() - t0 });
      for (const fn of FNS) if (typeof m[fn] === "function") m[fn] = timed(impl, fn, m[fn]);
    } else {
      patchSsh2(m);
    }
    return m;
  };

  const timed = (module, fn, f) =>
    async function (...args) {
      const t0 = performance.now();
      let result;
      try {
        result = await f.apply(this, args);
        return result;
      } finally {
        const ms = performance.now() - t0;
        const decided =
          fn === "diff" && result
            ? { changes: result.changes, replaces: result.replaces }
            : fn === "check" && result
              ? { plan: result.inputs?.plan, failures: result.failures?.length ?? 0 }
              : {};
        write({ event: "call", module, fn, ms, ...decided });
      }
    };

  const patchSsh2 = (ssh2) => {
    const proto = ssh2.Client.prototype;
    const connect = proto.connect;
    proto.connect = function (cfg) {
      this.__benchHost = cfg?.host;
      write({ event: "ssh", op: "connect", host: cfg?.host });
      return connect.call(this, cfg);
    };
    const exec = proto.exec;
    proto.exec = function (command, ...rest) {
      write({ event: "ssh", op: "exec", host: this.__benchHost, command: String(command).slice(0, 80) });
      return exec.call(this, command, ...rest);
    };
  };
}
