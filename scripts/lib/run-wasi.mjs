// Runs a wasm32-wasip1 program under Node's V8 (the engine Envoy embeds), e.g. the profile example:
//   node scripts/lib/run-wasi.mjs target/wasm32-wasip1/release/examples/profile.wasm [ARGS...]
import { readFile } from "node:fs/promises";
import { WASI } from "node:wasi";
import process from "node:process";

const [file, ...args] = process.argv.slice(2);
const wasi = new WASI({ version: "preview1", args: [file, ...args], env: {}, preopens: { "/": "/" } });
const module = await WebAssembly.compile(await readFile(file));
// The proxy-wasm host functions the filter imports are never called by a plain program.
const env = new Proxy({}, { get: () => () => 0 });
const instance = await WebAssembly.instantiate(module, { ...wasi.getImportObject(), env });
// The filter's proxy-wasm entry point also exports _initialize, which WASI.start refuses.
const { _initialize, ...exports } = instance.exports;
wasi.start({ exports });
