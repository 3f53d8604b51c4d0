"""End-to-end: `toolgate replay` and `toolgate explain` on what a real Envoy with toolgate.wasm logged and decided."""
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import ROOT, Gateway

def logged(gw, count, timeout=5):
    """The decision records, once at least `count` have been logged."""
    deadline = time.time() + timeout
    while len(gw.decisions()) < count and time.time() < deadline:
        time.sleep(0.05)
    return gw.decisions()


CLI = os.environ.get("TOOLGATE_CLI", os.path.join(ROOT, "target/debug/toolgate"))
POLICIES = os.path.join(ROOT, "examples/demo")


def toolgate(*args):
    if not os.path.exists(CLI):
        raise AssertionError(f"{CLI} is missing: build it with `cargo build -p toolgate-cli`")
    done = subprocess.run([CLI, *args], capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout + done.stderr


class ReplayRealDecisionLog(unittest.TestCase):
    def setUp(self):
        self.scratch = tempfile.mkdtemp(prefix="toolgate-cli-e2e-")
        self.addCleanup(shutil.rmtree, self.scratch, True)

    def proposed_policies(self, extra):
        folder = os.path.join(self.scratch, "proposed")
        os.makedirs(folder)
        for name in os.listdir(POLICIES):
            if os.path.isfile(os.path.join(POLICIES, name)):
                shutil.copy(os.path.join(POLICIES, name), folder)
        with open(os.path.join(folder, "proposed.cedar"), "w", encoding="utf-8") as f:
            f.write(extra)
        return folder

    def test_replay_of_an_envoy_decision_log_finds_the_changed_decisions(self):
        config = {"trust_domains": ["toolgate.test"], "server": "tools", "log_arguments": True}
        with Gateway(config) as gw:
            calls = [
                gw.call_tool("read_file", {"path": "a"}, id=1),                          # allow
                gw.call_tool("search_docs", {"query": "q"}, id=2),                       # allow
                gw.call_tool("refund", {"amount": 500, "order_id": "o"}, id=3, cert="payments"),  # deny
                gw.call_tool("read_file", {"path": "b"}, id=4, cert="untrusted"),        # refused before policy
            ]
            self.assertEqual([c.status for c in calls[:3]], [200, 200, 200])
            self.assertEqual([c.refused() for c in calls[:3]], [False, False, True])
            calls[2].refusal("not_permitted", id=3)
            records = {r["rpc_id"]: r for r in logged(gw, 4)}
            ids = [records[n]["decision_id"] for n in (1, 2, 3)]
            log = os.path.join(self.scratch, "decisions.log")
            shutil.copy(gw.log_path, log)

        code, out = toolgate("replay", "--policies", POLICIES, log)
        self.assertEqual(code, 0, out)
        self.assertIn("allow -> deny       0", out)

        proposed = self.proposed_policies(
            '@id("no-search")\n'
            'forbid (principal, action == Toolgate::Action::"tools/call", resource == Toolgate::Tool::"tools/search_docs");\n'
            '@id("refunds-up-to-1000")\n'
            'permit (principal in Toolgate::AgentGroup::"payments", action == Toolgate::Action::"tools/call",'
            ' resource == Toolgate::Tool::"tools/refund") when { context has arguments.tools.refund.amount'
            ' && context.arguments.tools.refund.amount <= 1000 };\n')
        code, out = toolgate("replay", "--policies", proposed, "--json", log)
        self.assertEqual(code, 1, out)
        summary = json.loads(out)
        self.assertEqual(summary["unchanged"], 1, out)
        self.assertEqual(summary["allow_to_deny"], 1, out)
        self.assertEqual(summary["deny_to_allow"], 1, out)
        self.assertGreaterEqual(summary["not_replayable"]["refused_before_policy"], 1, out)
        changed = {c["decision_id"]: c for c in summary["changes"]}
        self.assertEqual(changed[ids[1]]["now_policies"], ["no-search"])
        self.assertEqual(changed[ids[2]]["now"], "allow")
        self.assertEqual(changed[ids[2]]["now_policies"], ["refunds-up-to-1000"])

    def test_explain_agrees_with_what_envoy_decided(self):
        config = {"trust_domains": ["toolgate.test"], "server": "tools"}
        config_path = os.path.join(self.scratch, "toolgate.json")
        with open(config_path, "w", encoding="utf-8") as f:
            json.dump(config, f)
        body = {"jsonrpc": "2.0", "id": 9, "method": "tools/call",
                "params": {"name": "write_file", "arguments": {"path": "p", "content": "c"}}}
        with Gateway(config) as gw:
            for n, (intent, allowed) in enumerate([(None, False), ("write", True)], start=1):
                headers = {"x-agent-task": "T-1"}
                if intent:
                    headers["x-agent-intent"] = intent
                r = gw.request("POST", "/mcp", json.dumps(body), headers={**headers, "content-type": "application/json"},
                               cert="writer")
                if allowed:
                    self.assertEqual(r.status, 200, r.body)
                    self.assertFalse(r.refused(), r.body)
                else:
                    r.refusal("not_permitted", id=9)
                envoy_record = logged(gw, n)[-1]
                request = os.path.join(self.scratch, f"request-{n}.json")
                with open(request, "w", encoding="utf-8") as f:
                    json.dump({"peer": "spiffe://toolgate.test/agent/writer", "headers": headers, "body": body}, f)
                code, out = toolgate("explain", "--policies", POLICIES, "--config", config_path, "--json", request)
                self.assertEqual(code, 0 if allowed else 1, out)
                explained = json.loads(out)
                for field in ("decision", "reason", "policies", "action", "resource", "principal"):
                    self.assertEqual(explained[field], envoy_record[field], field)
                self.assertEqual(explained["cedar"]["context"]["task"], envoy_record["cedar"]["context"]["task"])


if __name__ == "__main__":
    unittest.main()
