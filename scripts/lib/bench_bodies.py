#!/usr/bin/env python3
"""Writes the canned upstream answers of scripts/bench's list and result rows into DIR.

  bench_bodies.py DIR
DIR/list.json: a 50-tool tools/list result, examples/demo/mcp/tools.json's tools five
times over and five the demo's catalog does not know (as filter/benches/answers.rs).
DIR/result.json: a tools/call result whose text is 64 KiB written to be hard on the
detectors (a URL and the word "bearer" on every sentence) and ends with an AWS access key
id (the documented example), so the answer is redacted and re-encoded.
"""
import json
import os
import sys

DEMO_TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../examples/demo/mcp/tools.json")
SENTENCE = "The quick brown fox jumps over the lazy dog; see https://example.com/docs and bearer of news. "
KEY = "AKIAIOSFODNN7EXAMPLE"

out = sys.argv[1]
with open(DEMO_TOOLS, encoding="utf-8") as f:
    tools = json.load(f)["result"]["tools"] * 5
tools += [{"name": f"unknown_{k}", "inputSchema": {"type": "object"}} for k in range(5)]
assert len(tools) == 50
with open(os.path.join(out, "list.json"), "w", encoding="utf-8") as f:
    json.dump({"jsonrpc": "2.0", "id": 1, "result": {"tools": tools}}, f)
text = SENTENCE * (64 * 1024 // len(SENTENCE) + 1) + KEY
with open(os.path.join(out, "result.json"), "w", encoding="utf-8") as f:
    json.dump({"jsonrpc": "2.0", "id": 1,
               "result": {"content": [{"type": "text", "text": text}], "isError": False}}, f)
