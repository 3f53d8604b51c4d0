#!/usr/bin/env python3
"""Writes a plugin configuration with N generated policies on top of the defaults, for scripts/bench.

Nine in ten are tool-specific permits (`resource == Tool::"tools/gen_<i>"`), the shape of a
per-tool policy catalog; one in ten is a general forbid on an argument value, which every
tools/call request must evaluate.
"""
import json
import sys

n, out = int(sys.argv[1]), sys.argv[2]
policies = []
for i in range(n):
    if i % 10 == 9:
        policies.append(
            f'@id("gen-{i}")\nforbid (principal, action == Toolgate::Action::"tools/call", resource)\n'
            f'when {{ context has arguments && context.arguments has path && context.arguments.path == "/secret/{i}" }};\n')
    else:
        policies.append(
            f'@id("gen-{i}")\npermit (principal in Toolgate::AgentGroup::"readers", '
            f'action == Toolgate::Action::"tools/call", resource == Toolgate::Tool::"tools/gen_{i}")\n'
            f'when {{ context has intent && context.intent == "task-{i}" }};\n')
config = {
    "trust_domains": ["toolgate.test"],
    "server": "tools",
    "dev_identity_header": "x-dev-spiffe-id",
    "policies": {"cedar": "\n".join(policies)},
}
with open(out, "w", encoding="utf-8") as f:
    json.dump(config, f)
