// Runs the pipeline micro-benchmark (benches/pipeline.rs) compiled to wasm32-wasip1 under Node's
// V8 — the engine Envoy embeds, with TurboFan only as Envoy configures it (--no-liftoff) — so the
// filter's own code is timed as it runs in Envoy, without Envoy's host calls:
//
//     node --no-liftoff --no-warnings bench/wasm-pipeline.mjs <pipeline.wasm> [--bench]
//
// The proxy-wasm imports the library declares are never called by the benchmark; each is a stub
// that answers Ok, so the module links.
import { readFileSync } from "node:fs";
import { WASI } from "node:wasi";

const [file, ...args] = process.argv.slice(2);
const wasi = new WASI({ version: "preview1", args: ["pipeline", ...args], env: {}, returnOnExit: true });
const module = await WebAssembly.compile(readFileSync(file));
const env = {};
for (const { module: from, name, kind } of WebAssembly.Module.imports(module)) {
  if (from === "env" && kind === "function") env[name] = () => 0;
}
const instance = await WebAssembly.instantiate(module, { wasi_snapshot_preview1: wasi.wasiImport, env });
// A command module that also exports the filter's `_initialize` (from proxy-wasm's main!): hide
// it, or Node's WASI refuses to start the command.
const { _initialize, ...exports } = instance.exports;
process.exitCode = wasi.start({ exports });
