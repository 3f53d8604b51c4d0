"""End-to-end: pinned tool definitions and filtered lists through a real Envoy with toolgate over mTLS, an official MCP SDK server (Python mcp 2.x, tests/interop/py_server.py) behind it and the official Python SDK client in front; asserts what the SDK's ListToolsResult and exceptions show, and what toolgate logged and counted."""
import json
import os
import shutil
import subprocess
import tempfile
import unittest
import urllib.request

from harness import ROOT, Gateway, wait_until
from test_interop import INTEROP, MCP2_PYTHON, POLICIES, STATEFUL, STATELESS, SdkAssertions, call, config, drive

CLI = os.environ.get("TOOLGATE_CLI", os.path.join(ROOT, "target/debug/toolgate"))
ECDS_SUCCESS = "envoy_extension_config_discovery_http_filter_toolgate_update_success"
CHANGED = ["forbid-changed-tool-definition"]


def toolgate(*args):
    if not os.path.exists(CLI):
        raise AssertionError(f"{CLI} is missing: build it with `cargo build -p toolgate-cli`")
    done = subprocess.run([CLI, *args], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise AssertionError(f"toolgate {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def upstream_list(gw):
    """The tools/list answer as the server sends it, read from the server itself (not through the gateway)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{gw.upstream_port}{STATELESS}", method="POST",
        data=json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode(),
        headers={"content-type": "application/json", "accept": "application/json, text/event-stream",
                 "mcp-protocol-version": "2025-11-25"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def pins(tmp, name, listed):
    """`toolgate schema-from-mcp --pin` on LISTED over a copy of the interop catalog: the catalog."""
    folder = os.path.join(tmp, name)
    shutil.copytree(POLICIES, folder)
    list_file = os.path.join(tmp, f"{name}-tools.json")
    with open(list_file, "w", encoding="utf-8") as f:
        json.dump(listed, f)
    toolgate("schema-from-mcp", "--server", "interop", "--pin", "--entities",
             os.path.join(folder, "entities.json"), list_file)
    with open(os.path.join(folder, "entities.json"), encoding="utf-8") as f:
        catalog = {e["uid"]["id"]: e["attrs"] for e in json.load(f)}
    return folder, catalog


class PinnedDefinitions(SdkAssertions):
    """A rug pull (the server changes a tool's description between lists) refused, and a
    filtered list with conditions in `_meta` as the SDK client reads it."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="toolgate-pinning-")
        plain = os.path.join(cls.tmp, "v1")
        shutil.copytree(POLICIES, plain)
        # Two workers: the list and the call may land on either; shared data is per process.
        cls.gw = Gateway(config("interop"), ecds=plain, workers=2, upstream=[
            MCP2_PYTHON, os.path.join(INTEROP, "py_server.py"), "--port", "{upstream_port}", "--rug-pull"])
        cls.gw.__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.gw.__exit__(None, None, None)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_a_filtered_list_with_conditions_in_meta_read_by_the_sdk_client(self):
        logged = len(self.gw.decisions())
        report = drive(self.gw, "py2", STATEFUL, [{"op": "list"}])
        self.assertIsNone(report["fatal"], self.show(report))
        listed = report["steps"][0]
        self.assertTrue(listed["ok"], self.show(report))
        tools = listed["result"]["tools"]
        # Forbidden: absent from the SDK's ListToolsResult; permitted: there.
        self.assertNotIn("delete_everything", tools)
        self.assertTrue({"echo", "slow", "big", "confirm"} <= set(tools), tools)
        # `slow` is permitted for at most 60 seconds: its conditions in _meta, as the SDK exposes them.
        conditions = listed["result"]["meta"].get("slow", {}).get("toolgate/conditions")
        self.assertEqual(conditions, {
            "allow_if": {"arg": "seconds", "op": "<=", "value": 60}, "exact": True,
            "text": "seconds <= 60"}, listed["result"])
        self.assertNotIn("toolgate/conditions", listed["result"]["meta"].get("echo", {}))
        records = self.records_since(logged, lambda new: any(r.get("list") for r in new), "the list record")
        record = next(r for r in records if r.get("list"))
        hidden = {h["name"]: h for h in record["list"]["hidden"]}
        self.assertEqual(hidden["delete_everything"]["reason"], "forbidden_by_policy", record)
        self.assertEqual(record["list"]["conditions"], 1, record)

    def test_a_rug_pulled_tool_is_dropped_from_the_list_and_refused(self):
        # Pin from the server's first list (as a person would, after reviewing it).
        first = upstream_list(self.gw)
        pinned_folder, catalog = pins(self.tmp, "pinned", first)
        pin = catalog["interop/forecast"]["definition_digest"]
        self.assertTrue(pin.startswith("sha256:"), catalog)
        # Reviewed attributes of the catalog kept.
        self.assertEqual(catalog["interop/echo"]["sensitivity"], "high")
        successes = self.gw.stats().get(ECDS_SUCCESS, 0)
        self.gw.publish(pinned_folder)
        wait_until(lambda: self.gw.stats().get(ECDS_SUCCESS, 0) > successes, 20, "the pinned catalog applied")

        logged = len(self.gw.decisions())
        report = drive(self.gw, "py2", STATEFUL, [
            {"op": "list"}, call("forecast", city="Paris"), call("pull_rug"),
            {"op": "list"}, call("forecast", city="Paris")])
        self.assertIsNone(report["fatal"], self.show(report))
        before, allowed, pulled, after, refused = report["steps"]
        with self.subTest("pinned and matching: listed, called"):
            self.assertTrue(before["ok"], self.show(report))
            self.assertIn("forecast", before["result"]["tools"])
            self.assertEqual(before["result"]["descriptions"]["forecast"], "The weather forecast for CITY.")
            self.assert_allowed(report, allowed, "sunny in Paris")
            self.assert_allowed(report, pulled, "pulled")
        with self.subTest("changed: dropped from the list the SDK client reads"):
            self.assertTrue(after["ok"], self.show(report))
            self.assertNotIn("forecast", after["result"]["tools"])
            self.assertIn("echo", after["result"]["tools"])
        with self.subTest("changed: the call refused with its own reason, as the SDK raised it"):
            self.assert_refused(report, refused, "py2", "tool_definition_changed", CHANGED, "interop/forecast")
            self.assertIn("changed since it was reviewed and pinned", refused["error"]["message"])

        # The decision records: the old (pinned) and new (seen) digests.
        _, changed_catalog = pins(self.tmp, "changed", upstream_list(self.gw))
        seen = changed_catalog["interop/forecast"]["definition_digest"]
        self.assertNotEqual(seen, pin)
        records = self.records_since(
            logged, lambda new: sum(1 for r in new if r.get("resource") == "interop/forecast") >= 2
            and sum(1 for r in new if r.get("list")) >= 2, "the records of the lists and calls")
        calls = [r for r in records if r.get("resource") == "interop/forecast"]
        self.assertEqual(calls[0]["tool_definition"], {"state": "pinned", "pinned": pin, "seen": pin}, calls[0])
        self.assertEqual(calls[0]["cedar"]["context"]["tool_definition"], "pinned")
        self.assertEqual(calls[1]["tool_definition"], {"state": "changed", "pinned": pin, "seen": seen}, calls[1])
        self.assertEqual((calls[1]["decision"], calls[1]["reason"], calls[1]["policies"]),
                         ("deny", "tool_definition_changed", CHANGED))
        lists = [r["list"] for r in records if r.get("list")]
        dropped = [h for h in lists[-1]["hidden"] if h["name"] == "forecast"]
        self.assertEqual(dropped, [{"name": "forecast", "reason": "tool_definition_changed", "policies": CHANGED}],
                         lists[-1])
        stats = self.gw.stats()
        get = lambda name: stats.get(f"envoy_wasmcustom_toolgate_definitions_{name}",
                                     stats.get(f"toolgate_definitions_{name}", 0))
        self.assertEqual(get("changed_refused"), 1, {k: v for k, v in stats.items() if "definitions" in k})
        self.assertEqual(get("changed_hidden"), 1, {k: v for k, v in stats.items() if "definitions" in k})


if __name__ == "__main__":
    unittest.main()
