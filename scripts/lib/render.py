#!/usr/bin/env python3
"""Fills the ${NAME} placeholders of an Envoy config template from NAME=VALUE arguments.

PLUGIN_CONFIG is a JSON file whose content is inlined (indented for the YAML block);
HTTP_FILTERS is a YAML file of http_filters entries, inlined and itself rendered.
"""
import json
import string
import sys


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
    if "HTTP_FILTERS" in values:
        with open(values["HTTP_FILTERS"], encoding="utf-8") as f:
            values["HTTP_FILTERS"] = string.Template(f.read().rstrip("\n")).safe_substitute(values)
    with open(template, encoding="utf-8") as f:
        try:
            rendered = string.Template(f.read()).substitute(values)
        except KeyError as e:
            sys.exit(f"render.py: {template}: no value for placeholder {e}; pass {e.args[0]}=...")
    with open(out, "w", encoding="utf-8") as f:
        f.write(rendered)


if __name__ == "__main__":
    main()
