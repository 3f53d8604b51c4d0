#!/usr/bin/env python3
"""Fills the ${NAME} placeholders of an Envoy config template from NAME=VALUE arguments.

PLUGIN_CONFIG is a JSON file whose content is inlined (indented for the YAML block);
HTTP_FILTERS is a YAML file of http_filters entries, inlined and itself rendered.
ECDS_DIR=DIR replaces the template's toolgate filter (between the `# toolgate-filter: begin`
and `end` marker lines) with envoy/toolgate-ecds.yaml: its config then comes from DIR.
"""
import json
import os
import re
import string
import sys

ECDS_FILTER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../envoy/toolgate-ecds.yaml")
FILTER_BLOCK = re.compile(r"^[ \t]*# toolgate-filter: begin\b.*?^[ \t]*# toolgate-filter: end\b[^\n]*\n",
                          re.MULTILINE | re.DOTALL)


def use_ecds(template_text, template):
    """The template with its static toolgate filter swapped for the ECDS one."""
    with open(ECDS_FILTER, encoding="utf-8") as f:
        ecds = f.read()
    swapped, count = FILTER_BLOCK.subn(lambda _: ecds, template_text)
    if count != 1:
        sys.exit(f"render.py: {template}: ECDS_DIR needs one '# toolgate-filter: begin' ... 'end' block, found {count}")
    return swapped


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: render.py TEMPLATE OUT NAME=VALUE...")
    template, out = sys.argv[1], sys.argv[2]
    values = dict(arg.split("=", 1) for arg in sys.argv[3:])
    if "PLUGIN_CONFIG" in values:
        with open(values["PLUGIN_CONFIG"], encoding="utf-8") as f:
            text = f.read()
        try:
            json.loads(text)
        except ValueError:
            pass  # invalid JSON is passed through on purpose: the filter must refuse it
        values["PLUGIN_CONFIG"] = text.strip().replace("\n", "\n" + " " * 20)
    values.setdefault("FAILURE_POLICY", "FAIL_RELOAD")
    values.setdefault("XFCC_MODE", "SANITIZE")
    # The risk_feed cluster's port: only polled when toolgate's config has a risk_feed
    # section, so callers without a feed get the discard port, where nothing listens.
    values.setdefault("RISK_FEED_PORT", "9")
    # The A2A agents' cluster: the upstream itself unless an agent runs apart (scripts/demo).
    if "UPSTREAM_PORT" in values:
        values.setdefault("AGENTS_PORT", values["UPSTREAM_PORT"])
    if "HTTP_FILTERS" in values:
        with open(values["HTTP_FILTERS"], encoding="utf-8") as f:
            values["HTTP_FILTERS"] = string.Template(f.read().rstrip("\n")).safe_substitute(values)
    with open(template, encoding="utf-8") as f:
        text = f.read()
    if "ECDS_DIR" in values:
        text = use_ecds(text, template)
    try:
        rendered = string.Template(text).substitute(values)
    except KeyError as e:
        sys.exit(f"render.py: {template}: no value for placeholder {e}; pass {e.args[0]}=...")
    with open(out, "w", encoding="utf-8") as f:
        f.write(rendered)


if __name__ == "__main__":
    main()
