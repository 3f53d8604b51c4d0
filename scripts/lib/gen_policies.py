#!/usr/bin/env python3
"""Writes scripts/bench's policy sets from one generator, so the Cedar and native sets stay equivalent.

  gen_policies.py N OUT [EXTRA_JSON] [--native FILTERS_YAML] [--cedar FILE]

OUT: a toolgate plugin configuration, the demo's policies (examples/demo/) plus N
generated ones. Nine in ten are tool-specific permits for the readers with an intent
condition (`resource == Tool::"tools/gen_<i>"`, `context.intent == "task-<i>"`), the
shape of a per-tool policy catalog; one in ten is a general forbid on an argument value
(`read_file`'s `path == "/secret/<i>"`), which every tools/call must evaluate.
EXTRA_JSON: further top-level fields (e.g. '{"history": {}}'). --cedar FILE: more Cedar
appended (a benchmark's own policies).

--native FILTERS_YAML: the same rules for Envoy's own filters, as the http_filters list
scripts/bench puts before the router: `envoy.filters.http.mcp` (which writes the
request's `method`, `params.name` and `params.arguments.path` to the `envoy.filters.http.mcp` dynamic
metadata), then `rbac` filters matching that metadata. With N = 0: one DENY rule on the
tool name (the guardrail `forbid-critical-tools`: the demo's critical tools by name).
With N > 0 also: the N/10 argument forbids in that DENY filter, and an ALLOW filter with
the N*9/10 per-tool permits (the tool name, the reader's identity header and the intent
header `x-agent-intent`), the demo's `readers-call-low-sensitivity-tools` (the
low-sensitivity tools by name) and `agents-may-use-the-protocol` (any method but
tools/call). RBAC tries an ALLOW filter's policies in name order and stops at the first
that matches; `readers-...` sorts after `gen-...`, so an allowed reader's call is
checked against every generated permit first, as a linear rule list would.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ecds  # noqa: E402  (the demo folder as ECDS publishes it)

DEMO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../examples/demo")
IDENTITY_HEADER = "x-dev-spiffe-id"
INTENT_HEADER = "x-agent-intent"
# Where Envoy 1.40's MCP filter puts what it parsed (its filter name; older docs say `mcp_proxy`).
MCP_NAMESPACE = "envoy.filters.http.mcp"


def rules(n):
    """The generated rules, one per policy: ("forbid_path", i, path) or ("permit_tool", i, tool, intent)."""
    for i in range(n):
        if i % 10 == 9:
            yield ("forbid_path", i, f"/secret/{i}")
        else:
            yield ("permit_tool", i, f"gen_{i}", f"task-{i}")


def cedar(rule):
    if rule[0] == "forbid_path":
        _, i, path = rule
        return (f'@id("gen-{i}")\nforbid (principal, action == Toolgate::Action::"tools/call", resource)\n'
                f'when {{ context has arguments.tools.read_file.path && '
                f'context.arguments.tools.read_file.path == "{path}" }};\n')
    _, i, tool, intent = rule
    return (f'@id("gen-{i}")\npermit (principal in Toolgate::AgentGroup::"readers", '
            f'action == Toolgate::Action::"tools/call", resource == Toolgate::Tool::"tools/{tool}")\n'
            f'when {{ context has intent && context.intent == "{intent}" }};\n')


# --- the native (Envoy MCP filter + RBAC) form ---

def metadata_is(path, value):
    """An RBAC permission: the MCP filter's dynamic metadata at PATH (dotted) equals VALUE."""
    return {"metadata": {"filter": MCP_NAMESPACE, "path": [{"key": k} for k in path.split(".")],
                         "value": {"string_match": {"exact": value}}}}


def tool_call(*rules_):
    return {"and_rules": {"rules": [metadata_is("method", "tools/call"), *rules_]}}


def tool_named(names):
    return {"or_rules": {"rules": [metadata_is("params.name", name) for name in names]}}


def header_is(name, value):
    return {"header": {"name": name, "string_match": {"exact": value}}}


def demo_facts():
    """The demo's readers (identities) and tools by sensitivity, from examples/demo/entities.json."""
    with open(os.path.join(DEMO, "entities.json"), encoding="utf-8") as f:
        entities = json.load(f)
    readers, tools = [], {}
    for e in entities:
        uid = e["uid"]
        if uid["type"] == "Toolgate::Agent" and {"type": "Toolgate::AgentGroup", "id": "readers"} in e["parents"]:
            readers.append(uid["id"])
        if uid["type"] == "Toolgate::Tool" and uid["id"].startswith("tools/"):
            tools.setdefault(e["attrs"].get("sensitivity"), []).append(uid["id"].split("/", 1)[1])
    return readers, tools


def native_filters(n):
    readers, tools = demo_facts()
    reader = {"or_ids": {"ids": [header_is(IDENTITY_HEADER, r) for r in readers]}}
    deny = {"forbid-critical-tools": {"permissions": [tool_call(tool_named(tools["critical"]))],
                                      "principals": [{"any": True}]}}
    allow = {}
    for rule in rules(n):
        if rule[0] == "forbid_path":
            _, i, path = rule
            deny[f"gen-{i}"] = {"permissions": [tool_call(metadata_is("params.name", "read_file"),
                                                          metadata_is("params.arguments.path", path))],
                                "principals": [{"any": True}]}
        else:
            _, i, tool, intent = rule
            allow[f"gen-{i}"] = {"permissions": [tool_call(metadata_is("params.name", tool))],
                                 "principals": [{"and_ids": {"ids": [reader, header_is(INTENT_HEADER, intent)]}}]}
    if n:
        allow["readers-call-low-sensitivity-tools"] = {"permissions": [tool_call(tool_named(tools["low"]))],
                                                       "principals": [reader]}
        allow["agents-may-use-the-protocol"] = {
            "permissions": [{"not_rule": metadata_is("method", "tools/call")}], "principals": [{"any": True}]}
    filters = [{
        "name": "envoy.filters.http.mcp",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.mcp.v3.Mcp",
            # Like toolgate, refuse what is not MCP rather than let it through unchecked.
            "traffic_mode": "REJECT_NO_MCP",
            "parser_config": {"methods": [{"method": "tools/call", "extraction_rules": [
                {"path": "params.name"}, {"path": "params.arguments.path"}]}]},
        },
    }]
    for name, action, policies in (("deny", "DENY", deny), ("allow", "ALLOW", allow)):
        if policies:
            filters.append({"name": f"envoy.filters.http.rbac.{name}", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
                "rules": {"action": action, "policies": policies}}})
    filters.append({"name": "envoy.filters.http.router", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}})
    # JSON is YAML: one flow-style entry per line, indented as envoy/bench/gateway.yaml's list.
    return "".join(f"          - {json.dumps(f)}\n" for f in filters)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int)
    parser.add_argument("out")
    parser.add_argument("extra", nargs="?", default="{}")
    parser.add_argument("--native", metavar="FILTERS_YAML")
    parser.add_argument("--cedar", metavar="FILE")
    args = parser.parse_args()
    config = {
        "trust_domains": ["toolgate.test"],
        "server": "tools",
        "dev_identity_header": IDENTITY_HEADER,
        **json.loads(args.extra),
    }
    config["policies"] = ecds.read_policies(DEMO, config)
    generated = "\n".join(cedar(rule) for rule in rules(args.n))
    if generated:
        config["policies"]["cedar"] += "// file: generated.cedar\n" + generated
    if args.cedar:
        with open(args.cedar, encoding="utf-8") as f:
            config["policies"]["cedar"] += f"\n// file: {os.path.basename(args.cedar)}\n" + f.read()
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(config, f)
    if args.native:
        with open(args.native, "w", encoding="utf-8") as f:
            f.write(native_filters(args.n))


if __name__ == "__main__":
    main()
