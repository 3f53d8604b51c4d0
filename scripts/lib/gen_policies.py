#!/usr/bin/env python3
"""Writes a plugin configuration with N generated policies on top of the demo's (examples/demo/), for scripts/bench.

Nine in ten are tool-specific permits (`resource == Tool::"tools/gen_<i>"`), the shape of a
per-tool policy catalog; one in ten is a general forbid on an argument value, which every
tools/call request must evaluate.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ecds  # noqa: E402  (the demo folder as ECDS publishes it)

DEMO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../examples/demo")

n, out = int(sys.argv[1]), sys.argv[2]
policies = []
for i in range(n):
    if i % 10 == 9:
        policies.append(
            f'@id("gen-{i}")\nforbid (principal, action == Toolgate::Action::"tools/call", resource)\n'
            f'when {{ context has arguments.tools.read_file.path && context.arguments.tools.read_file.path == "/secret/{i}" }};\n')
    else:
        policies.append(
            f'@id("gen-{i}")\npermit (principal in Toolgate::AgentGroup::"readers", '
            f'action == Toolgate::Action::"tools/call", resource == Toolgate::Tool::"tools/gen_{i}")\n'
            f'when {{ context has intent && context.intent == "task-{i}" }};\n')
# Further top-level fields as JSON (e.g. '{"history": {}}').
config = {
    "trust_domains": ["toolgate.test"],
    "server": "tools",
    "dev_identity_header": "x-dev-spiffe-id",
    **(json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}),
}
config["policies"] = ecds.read_policies(DEMO, config)
if policies:
    config["policies"]["cedar"] += "// file: generated.cedar\n" + "\n".join(policies)
with open(out, "w", encoding="utf-8") as f:
    json.dump(config, f)
