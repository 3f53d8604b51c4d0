#!/usr/bin/env python3
"""scripts/bench's bookkeeping: reads wrk's output into a row, and prints the run's tables.

  bench_report.py row TABLE NAME WRK_OUTPUT CPU_TICKS CLK_TCK WASM_BYTES RSS_KB
      prints one tab-separated row (appended by scripts/bench to DIR/rows.tsv)
  bench_report.py tables DIR
      prints, from DIR/rows.tsv and DIR/pace.tsv, one table per TABLE (each compared with
      its first row, the bare Envoy of that table), the agent-pace table, the memory table,
      and with BENCH_PERF the profile split (DIR/NAME.dso, perf report's shares by binary)
"""
import os
import re
import sys


def ms(text, label):
    m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    value, unit = float(m.group(1)), m.group(2)
    return value * {"us": 0.001, "ms": 1, "s": 1000}[unit]


def row(table, name, path, ticks, hz, wasm_bytes, rss_kb):
    text = open(path, encoding="utf-8").read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    requests = int(re.search(r"(\d+) requests in", text).group(1))
    cpu_us = int(ticks) / int(hz) * 1e6 / requests
    print(f"{table}\t{name}\t{rps:.0f}\t{ms(text, 50):.3f}\t{ms(text, 99):.3f}\t{cpu_us:.1f}\t{wasm_bytes}\t{rss_kb}")


def read(path):
    try:
        with open(path, encoding="utf-8") as f:
            return [line.split("\t") for line in f.read().splitlines() if line]
    except FileNotFoundError:
        return []


def tables(folder):
    rows = read(f"{folder}/rows.tsv")
    for table in dict.fromkeys(r[0] for r in rows):
        mine = [r[1:] for r in rows if r[0] == table]
        bare_rps, bare_cpu = float(mine[0][1]), float(mine[0][4])
        print(f"\n{table} (same run; ratio = throughput / {mine[0][0]} throughput; CPU of the gateway Envoy, "
              f"+ what it adds over {mine[0][0]})\n")
        print(f"| {'setup':<21} | {'req/s':>8} | {'ratio':>6} | {'p50 ms':>7} | {'p99 ms':>7} | {'gateway CPU µs/req':>18} |")
        print(f"|{'-' * 23}|{'-' * 10}|{'-' * 8}|{'-' * 9}|{'-' * 9}|{'-' * 20}|")
        for i, (name, rps, p50, p99, cpu, _, _) in enumerate(mine):
            extra = "" if i == 0 else f" (+{float(cpu) - bare_cpu:.1f})"
            print(f"| {name:<21} | {float(rps):>8.0f} | {float(rps) / bare_rps:>5.2f}x | {float(p50):>7.3f} "
                  f"| {float(p99):>7.3f} | {cpu + extra:>18} |")
    pace = read(f"{folder}/pace.tsv")
    if pace:
        bare = pace[0]
        print(f"\nagent pace (one kept-alive connection, one call per interval; first = the first call "
              f"after Envoy is ready; added = minus {bare[0]})\n")
        print("| setup | calls | first call ms | p50 ms | p99 ms | added p50 ms | added p99 ms |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for name, first, p50, p99, calls in pace:
            print(f"| {name} | {calls} | {float(first):.3f} | {float(p50):.3f} | {float(p99):.3f} "
                  f"| {float(p50) - float(bare[2]):+.3f} | {float(p99) - float(bare[3]):+.3f} |")
    if rows:
        bare_rss = int(rows[0][7])
        print("\nmemory after the row's run (wasm: the worker VM's linear memory, gauge "
              "toolgate.vm.<id>.memory_bytes; RSS: the gateway Envoy process)\n")
        print("| setup | wasm memory per worker MiB | Envoy RSS MiB | RSS over bare MiB |")
        print("|---|---:|---:|---:|")
        for r in rows:
            wasm = f"{int(r[6]) / 2**20:.1f}" if r[6] != "-" else "-"
            print(f"| {r[1]} | {wasm} | {int(r[7]) / 1024:.1f} | {(int(r[7]) - bare_rss) / 1024:+.1f} |")
    profile(folder, rows)


def dso_shares(path):
    """perf report --sort dso: the gateway's samples by where the code lives."""
    shares = {"wasm": 0.0, "envoy": 0.0, "kernel": 0.0, "other": 0.0}
    for line in open(path, encoding="utf-8"):
        m = re.match(r"\s*([\d.]+)%\s+(.+?)\s*$", line)
        if not m:
            continue
        share, dso = float(m.group(1)), m.group(2)
        key = ("wasm" if dso.startswith("[JIT]") else "envoy" if dso == "envoy"
               else "kernel" if dso.startswith("[kernel") else "other")
        shares[key] += share
    return shares


def profile(folder, rows):
    calls = [r for r in rows if r[0] == "calls"]
    split = [(r[1], float(r[5]), dso_shares(f"{folder}/{r[1]}.dso")) for r in calls
             if os.path.exists(f"{folder}/{r[1]}.dso")]
    if not split:
        return
    print("\nwhere the gateway's CPU goes (perf samples of the measured run, as µs per request: "
          "wasm = the filter's code as V8 compiled it; Envoy = Envoy's own code with V8's "
          "runtime and the host side of every proxy-wasm call; kernel = sockets and scheduling)\n")
    print("| setup | CPU µs/req | wasm | Envoy | kernel | other |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, cpu, shares in split:
        cells = " | ".join(f"{cpu * shares[k] / 100:.1f}" for k in ("wasm", "envoy", "kernel", "other"))
        print(f"| {name} | {cpu:.1f} | {cells} |")


if __name__ == "__main__":
    if len(sys.argv) == 9 and sys.argv[1] == "row":
        row(*sys.argv[2:])
    elif len(sys.argv) == 3 and sys.argv[1] == "tables":
        tables(sys.argv[2])
    else:
        sys.exit(__doc__)
