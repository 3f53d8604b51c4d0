#!/usr/bin/env python3
"""Prints the timings of docs/performance.md's scaling table from the last `cargo bench -p toolgate --bench decide`.

(That table is under "Scaling the policy set".)

criterion prints a mean per benchmark; this reads the medians it saved under
target/criterion/<group>/<name>/<policies>/new/estimates.json.
"""
import json
import pathlib
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")
columns = [("decide",), ("authorize", "sliced"), ("authorize", "unsliced")]


def median_us(*parts):
    path = root.joinpath(*parts, "new", "estimates.json")
    if not path.exists():
        return "-"
    ns = json.loads(path.read_text())["median"]["point_estimate"]
    return f"{ns / 1000:,.1f}"


print("| generated policies | `Gate::decide` (sliced) | Cedar, sliced | Cedar, unsliced |")
print("|---:|---:|---:|---:|")
for n in ("10", "1000", "10000"):
    print(f"| {int(n):,} | " + " | ".join(median_us(*c, n) for c in columns) + " |")
