"""End-to-end: the official MCP SDKs as agents (Python mcp 2.x and 1.x, TypeScript) through a real Envoy with toolgate over mTLS, in front of SDK servers; asserts what each SDK surfaced and what toolgate logged."""
import concurrent.futures
import json
import os
import subprocess
import unittest
import uuid

from harness import CERTS, ROOT, Gateway, args_digest, ecds_lib, wait_until

INTEROP = os.path.join(ROOT, "tests/interop")
# The interop servers' policies and tool catalog: configuration, like a user's own (test_own_server.py).
POLICIES = os.path.join(INTEROP, "policies")
# Where scripts/lib/common.sh's ensure_interop installs the pinned SDKs.
MCP2_PYTHON = os.environ.get("TOOLGATE_MCP2_PYTHON", os.path.join(ROOT, ".venv/bin/python"))
MCP1_PYTHON = os.environ.get("TOOLGATE_MCP1_PYTHON", os.path.join(ROOT, ".work/venv-mcp1/bin/python"))
NODE_MODULES = os.environ.get("TOOLGATE_NODE_MODULES", os.path.join(ROOT, ".work/node/node_modules"))
EVERYTHING = os.path.join(NODE_MODULES, "@modelcontextprotocol/server-everything/dist/index.js")

# The drivers: each connects with one SDK, runs steps and prints what the SDK surfaced.
CLIENTS = {
    "py2": [MCP2_PYTHON, os.path.join(INTEROP, "client_py2.py"), "--mode", "auto"],
    "py2-legacy": [MCP2_PYTHON, os.path.join(INTEROP, "client_py2.py"), "--mode", "legacy"],
    "py1": [MCP1_PYTHON, os.path.join(INTEROP, "client_py1.py")],
    "ts": ["node", os.path.join(INTEROP, "client_ts.mjs")],
}
# The exception each SDK raises for a JSON-RPC error answering one call.
RPC_ERROR_CLASS = {
    "py2": "mcp.shared.exceptions.MCPError",
    "py2-legacy": "mcp.shared.exceptions.MCPError",
    "py1": "mcp.shared.exceptions.McpError",
    "ts": "McpError",
}
# A policy's refusal (docs/decision-log.md): not -32001, which both Python and TypeScript
# SDKs raise for their own request timeout.
POLICY_REFUSAL = -32010
MODERN, LEGACY = "2026-07-28", "2025-11-25"
READER = "spiffe://toolgate.test/agent/reader"
STATEFUL, STATELESS = "/mcp", "/mcp/stateless"
MIB = 1024 * 1024


def setUpModule():
    missing = [path for path in (MCP2_PYTHON, MCP1_PYTHON, EVERYTHING) if not os.path.exists(path)]
    if missing:
        raise AssertionError(f"missing {', '.join(missing)}: install the pinned SDKs with "
                             "`source scripts/lib/common.sh; ensure_interop` (scripts/test does)")


def config(server, **extra):
    """The gateway's plugin configuration: SERVER's name for the policies, both endpoints MCP."""
    plugin = {"trust_domains": ["toolgate.test"], "server": server, "mcp_paths": [STATEFUL, STATELESS], **extra}
    plugin["policies"] = ecds_lib.read_policies(POLICIES, plugin)
    return plugin


def python_server_gateway(plugin_config):
    """A gateway in front of tests/interop/py_server.py. Its DNS-rebinding protection accepts
    only its own 127.0.0.1:PORT as Host: what envoy/envoy.yaml's MCP route rewrites Host to."""
    return Gateway(plugin_config, upstream=[
        MCP2_PYTHON, os.path.join(INTEROP, "py_server.py"), "--port", "{upstream_port}"])


def drive(gw, client, path, steps, cert="reader", timeout=150):
    """Runs CLIENT's driver against the gateway at PATH and returns its report (a dict)."""
    argv = CLIENTS[client] + ["--url", f"https://localhost:{gw.port}{path}", "--certs", CERTS, "--cert", cert,
                              "--steps", json.dumps(steps)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, TOOLGATE_NODE_MODULES=NODE_MODULES))
    if done.returncode != 0 or not done.stdout.strip():
        raise AssertionError(f"{client} driver failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout)
    report["stderr"] = done.stderr[-3000:]
    return report


def call(tool, **args):
    return {"op": "call", "tool": tool, "args": args}


def exchanges(report):
    """The report's HTTP exchanges, one short line each, for failure messages."""
    return "; ".join(f"{e['method']} {e['sent_mcp_method'] or ''} -> {e['status']}"
                     f"{' session ' + e['sent_session'][:8] if e['sent_session'] else ''}" for e in report["http"])


def text_of(step):
    """The first text block of a step's result (long texts come summarized as a dict)."""
    return step["result"]["content"][0]["text"]


class SdkAssertions(unittest.TestCase):
    """Assertions on a driver's report, shared by the server-specific cases below."""
    gw = None

    def show(self, report):
        """The report, shortened, for failure messages."""
        return json.dumps({k: report[k] for k in ("sdk", "mode", "protocol_version", "session_id", "fatal", "steps")},
                          default=str)[:6000]

    def records_since(self, count, condition, what):
        """The decision records logged after the first COUNT, once CONDITION(records) holds."""
        return wait_until(lambda: (lambda new: new if condition(new) else None)(self.gw.decisions()[count:]),
                          5, what)

    def assert_connected(self, report, protocol_version):
        self.assertIsNone(report["fatal"], self.show(report))
        self.assertEqual(report["protocol_version"], protocol_version, self.show(report))
        self.assertTrue(report["closed"], self.show(report))

    def assert_allowed(self, report, step, text):
        self.assertTrue(step["ok"], self.show(report))
        self.assertFalse(step["result"].get("isError", False), step)
        self.assertEqual(text_of(step), text)

    def assert_refused(self, report, step, client, reason, policies, resource, status=200):
        """A policy refusal surfaced as the SDK's JSON-RPC error for that one call, with
        toolgate's data, answered HTTP STATUS, and logged under its decision id."""
        self.assertFalse(step["ok"], f"the refused call succeeded: {self.show(report)}")
        error = step["error"]
        self.assertEqual(error["class"], RPC_ERROR_CLASS[client], error)
        self.assertEqual(error["code"], POLICY_REFUSAL, error)
        self.assertTrue(error["message"].startswith("toolgate") or "toolgate:" in error["message"], error)
        data = error["data"] or {}
        self.assertEqual(data.get("reason"), reason, error)
        self.assertEqual(data.get("policies"), policies, error)
        decision_id = data.get("decision_id")
        self.assertTrue(decision_id, error)
        exchange = [e for e in report["http"] if e["decision_id"] == decision_id]
        self.assertEqual([e["status"] for e in exchange], [status], exchanges(report))
        record = self.gw.decision(decision_id)
        self.assertEqual((record["decision"], record["reason"], record["resource"], record["principal"]),
                         ("deny", reason, resource, READER), record)
        self.assertEqual(record["policies"], policies, record)

    def assert_logged_allowed(self, resource, arguments, count):
        """COUNT allow records of RESOURCE called with exactly ARGUMENTS, by the reader."""
        digest = args_digest(arguments)

        def found():
            records = [r for r in self.gw.decisions() if r.get("arguments_digest") == digest]
            return records if len(records) >= count else None
        records = wait_until(found, 5, f"{count} decision records of {resource} with arguments {arguments}")
        self.assertEqual(len(records), count, records)
        for record in records:
            self.assertEqual((record["decision"], record["resource"], record["principal"], record["rpc_method"]),
                             ("allow", resource, READER, "tools/call"), record)
        return records

    def assert_session(self, report, stateful, modern=False):
        """Legacy with a session: every request after initialize carries it and closing sends
        DELETE, which toolgate lets through. Without one (stateless, 2026-07-28): no id, no
        DELETE; and in 2026-07-28 no GET stream either."""
        methods = [e["method"] for e in report["http"]]
        if stateful:
            session = report["session_id"]
            self.assertTrue(session, exchanges(report))
            opened = next(i for i, e in enumerate(report["http"]) if e["got_session"])
            later = report["http"][opened + 1:]
            self.assertTrue(later and all(e["sent_session"] == session for e in later), exchanges(report))
            deletes = [e for e in report["http"] if e["method"] == "DELETE"]
            self.assertEqual([(e["status"], e["sent_session"]) for e in deletes], [(200, session)], exchanges(report))
        else:
            self.assertIsNone(report["session_id"], exchanges(report))
            self.assertNotIn("DELETE", methods, exchanges(report))
        if modern:
            self.assertNotIn("GET", methods, exchanges(report))

    def assert_session_records(self, logged_before, report):
        """The decision log follows a legacy session: the id the initialize answer minted,
        bound to the reader (`opened`), and the DELETE that ended it (`ended`)."""
        session = report["session_id"]
        self.records_since(logged_before, lambda new: any(
            r["rpc_method"] == "initialize" and r["mcp_session"] == {"id": session, "binding": "opened"}
            for r in new), "the initialize record that bound the session")
        self.records_since(logged_before, lambda new: any(
            r["http_method"] == "DELETE" and r["decision"] == "allow"
            and r["mcp_session"] == {"id": session, "binding": "ended"} for r in new),
            "the allowed record of the session's DELETE, which ends the binding")

    def assert_modern_headers(self, report):
        """A 2026-07-28 client mirrors each request's method (and tool name) into headers, and toolgate accepts them."""
        posts = [e for e in report["http"] if e["method"] == "POST"]
        self.assertTrue(posts, exchanges(report))
        for exchange in posts:
            self.assertEqual(exchange["sent_protocol_version"], MODERN, exchanges(report))
            self.assertTrue(exchange["sent_mcp_method"], exchanges(report))
            self.assertNotEqual(exchange["status"], 400, exchanges(report))
        calls = [e for e in posts if e["sent_mcp_method"] == "tools/call"]
        self.assertTrue(calls and all(e["sent_mcp_name"] for e in calls), exchanges(report))


class PythonServer(SdkAssertions):
    """Every client against the Python SDK server, at both endpoints, through one gateway."""

    @classmethod
    def setUpClass(cls):
        cls.gw = python_server_gateway(config("interop"))
        cls.addClassCleanup(cls.gw.stop)
        cls.gw.start()

    def session(self, client, path, protocol_version):
        """One agent session: discover or initialize, list, allowed call, refused call, allowed
        call again, progress, an argument-level refusal, a 3 MiB result and, where the
        transport has a way back, a server-to-client request; then session end."""
        marker = uuid.uuid4().hex
        stateful = path == STATEFUL and protocol_version == LEGACY
        back_channel = path == STATEFUL or protocol_version == MODERN
        steps = [{"op": "list"}, call("echo", text=marker), call("delete_everything", confirm=True),
                 call("echo", text=marker), call("slow", seconds=2), call("slow", seconds=120),
                 call("big", mebibytes=3)]
        if back_channel:
            steps.append(call("confirm", note=marker))
        logged_before = len(self.gw.decisions())
        report = drive(self.gw, client, path, steps)
        listed, echo, refused, again, slow, too_slow, big = report["steps"][:7]
        with self.subTest("connect, then the session carries on to the end"):
            self.assert_connected(report, protocol_version)
            self.assertEqual(len(report["steps"]), len(steps), self.show(report))
        with self.subTest("tools/list"):
            self.assertTrue(listed["ok"], self.show(report))
            # Lists are filtered by policy (docs/lists.md): a forbidden tool is not listed.
            self.assertEqual(listed["result"]["tools"], ["echo", "slow", "big", "confirm"])
        with self.subTest("an allowed call"):
            self.assert_allowed(report, echo, f"echo: {marker}")
        with self.subTest("a refused call is that call's JSON-RPC error"):
            self.assert_refused(report, refused, client, "forbidden_by_policy", ["interop-never-delete-everything"],
                                "interop/delete_everything")
        with self.subTest("the same session calls on after the refusal"):
            self.assert_allowed(report, again, f"echo: {marker}")
            for record in self.assert_logged_allowed("interop/echo", {"text": marker}, 2):
                self.assertEqual((record["protocol_version"], record["upstream_status"]), (protocol_version, 200),
                                 record)
                self.assertEqual(record["mcp_session"],
                                 {"id": report["session_id"], "binding": "owner"} if stateful else None, record)
        with self.subTest("progress notifications on a streamed call"):
            self.assert_allowed(report, slow, "slow: done after 2 s")
            if path == STATEFUL:
                self.assertEqual([(p["progress"], p["total"]) for p in slow["progress"]], [(1, 2), (2, 2)], slow)
        with self.subTest("a refusal on the arguments"):
            self.assert_refused(report, too_slow, client, "not_permitted", [], "interop/slow")
        with self.subTest("a multi-MiB result"):
            self.assertTrue(big["ok"], self.show(report))
            summary = text_of(big)
            self.assertGreaterEqual(summary["length"], 3 * MIB, summary)
            self.assertTrue(summary["head"].startswith("toolgate interop: one line"), summary)
        if back_channel:
            with self.subTest("a server-to-client request (elicitation; input_required in 2026-07-28)"):
                confirm = report["steps"][7]
                self.assert_allowed(report, confirm, f"{marker} confirmed by interop-agent")
                self.assertEqual(report["server_requests"], [{"method": "elicitation/create",
                                                              "message": "Who is asking?"}])
                if protocol_version == MODERN:
                    # The retry carrying inputResponses is decided as the call it is, same digest.
                    self.assert_logged_allowed("interop/confirm", {"note": marker}, 2)
                else:
                    self.assert_logged_allowed("interop/confirm", {"note": marker}, 1)
                    self.records_since(logged_before, lambda new: any(
                        r["action"] == "response" and r["decision"] == "allow" for r in new),
                        "the allowed record of the client's answer to elicitation/create")
        with self.subTest("session end"):
            self.assert_session(report, stateful, modern=protocol_version == MODERN)
            if stateful:
                self.assert_session_records(logged_before, report)
        if protocol_version == MODERN:
            with self.subTest("2026-07-28: server/discover allowed, headers mirrored and accepted"):
                self.assert_modern_headers(report)
                self.records_since(logged_before, lambda new: any(
                    r["rpc_method"] == "server/discover" and r["decision"] == "allow" for r in new),
                    "the allowed record of server/discover")
        return report

    def test_python_mcp2_default_mode_stateful_sse(self):
        self.session("py2", STATEFUL, MODERN)

    def test_python_mcp2_default_mode_stateless_json(self):
        self.session("py2", STATELESS, MODERN)

    def test_python_mcp2_legacy_mode_stateful_sse(self):
        self.session("py2-legacy", STATEFUL, LEGACY)

    def test_python_mcp2_legacy_mode_stateless_json(self):
        self.session("py2-legacy", STATELESS, LEGACY)

    def test_python_mcp1_stateful_sse(self):
        self.session("py1", STATEFUL, LEGACY)

    def test_python_mcp1_stateless_json(self):
        self.session("py1", STATELESS, LEGACY)

    def test_typescript_stateful_sse(self):
        self.session("ts", STATEFUL, LEGACY)

    def test_typescript_stateless_json(self):
        self.session("ts", STATELESS, LEGACY)

    def test_calls_longer_than_30_seconds(self):
        """A 35 s tool call through the gateway, one per client, all at once: no timeout
        of the gateway's cuts it, and progress arrives all along."""
        clients = ["py2", "py2-legacy", "py1", "ts"]

        def run(client):
            try:
                return drive(self.gw, client, STATEFUL, [call("slow", seconds=35)], timeout=80)
            except (AssertionError, subprocess.TimeoutExpired) as error:  # reported per client below
                return error
        with concurrent.futures.ThreadPoolExecutor(len(clients)) as pool:
            reports = dict(zip(clients, pool.map(run, clients)))
        for client, report in reports.items():
            with self.subTest(client):
                if isinstance(report, Exception):
                    self.fail(f"{client}: {str(report)[:3000]}")
                self.assertIsNone(report["fatal"], self.show(report))
                step = report["steps"][0]
                self.assert_allowed(report, step, "slow: done after 35 s")
                self.assertGreaterEqual(step["seconds"], 35, step)
                self.assertEqual(len(step["progress"]), 35, step)
        with self.subTest("decision log"):
            self.assert_logged_allowed("interop/slow", {"seconds": 35}, len(clients))


class RefusalsAsToolResults(SdkAssertions):
    """With refusals.tools_call = "result", a refused tools/call is a tool result with
    isError, which every SDK hands back like any other result (the model reads it)."""

    @classmethod
    def setUpClass(cls):
        cls.gw = python_server_gateway(config("interop", refusals={"tools_call": "result"}))
        cls.addClassCleanup(cls.gw.stop)
        cls.gw.start()

    def check(self, client, protocol_version):
        marker = uuid.uuid4().hex
        report = drive(self.gw, client, STATELESS, [call("echo", text=marker), call("delete_everything", confirm=True),
                                                    call("echo", text=marker)])
        self.assert_connected(report, protocol_version)
        echo, refused, again = report["steps"]
        self.assert_allowed(report, echo, f"echo: {marker}")
        self.assertTrue(refused["ok"], self.show(report))
        result = refused["result"]
        self.assertTrue(result.get("isError"), result)
        self.assertIn("toolgate refused", text_of(refused))
        self.assertIn("forbidden_by_policy", text_of(refused))
        meta = result.get("_meta", {}).get("toolgate", {})
        self.assertEqual((meta.get("reason"), meta.get("policies")),
                         ("forbidden_by_policy", ["interop-never-delete-everything"]), result)
        record = self.gw.decision(meta["decision_id"])
        self.assertEqual((record["decision"], record["resource"]), ("deny", "interop/delete_everything"), record)
        self.assert_allowed(report, again, f"echo: {marker}")

    def test_python_mcp2_default_mode(self):
        self.check("py2", MODERN)

    def test_python_mcp2_legacy_mode(self):
        self.check("py2-legacy", LEGACY)

    def test_python_mcp1(self):
        self.check("py1", LEGACY)

    def test_typescript(self):
        self.check("ts", LEGACY)


class RefusalsAsHttp403(SdkAssertions):
    """With refusals.policy_status = "reason" a refusal keeps its HTTP status (403): what
    each SDK then makes of it, which is why 200 is the default."""

    @classmethod
    def setUpClass(cls):
        cls.gw = python_server_gateway(config("interop", refusals={"policy_status": "reason"}))
        cls.addClassCleanup(cls.gw.stop)
        cls.gw.start()

    def run_refused(self, client):
        marker = uuid.uuid4().hex
        report = drive(self.gw, client, STATELESS, [call("echo", text=marker), call("delete_everything", confirm=True),
                                                    call("echo", text=marker)])
        refused = [e for e in report["http"] if e["decision_id"]]
        self.assertEqual([e["status"] for e in refused], [403], exchanges(report))
        return report, marker

    def test_python_mcp1_ends_the_whole_session(self):
        report, _ = self.run_refused("py1")
        self.assertEqual(len(report["steps"]), 1, self.show(report))
        self.assertFalse(report["closed"], self.show(report))
        self.assertIn("403 Forbidden", json.dumps(report["fatal"]), self.show(report))

    def test_python_mcp2_reads_the_json_rpc_error_in_the_403(self):
        report, marker = self.run_refused("py2")
        self.assert_connected(report, MODERN)
        self.assert_refused(report, report["steps"][1], "py2", "forbidden_by_policy",
                            ["interop-never-delete-everything"], "interop/delete_everything", status=403)
        self.assert_allowed(report, report["steps"][2], f"echo: {marker}")

    def test_typescript_gets_the_status_and_the_body_as_text(self):
        report, marker = self.run_refused("ts")
        self.assert_connected(report, LEGACY)
        error = report["steps"][1]["error"]
        self.assertEqual((error["class"], error["code"], error.get("data")), ("StreamableHTTPError", 403, None), error)
        self.assertIn('"reason":"forbidden_by_policy"', error["message"])
        self.assert_allowed(report, report["steps"][2], f"echo: {marker}")


class EverythingServer(SdkAssertions):
    """Every client against @modelcontextprotocol/server-everything (streamable HTTP, sessions)."""

    @classmethod
    def setUpClass(cls):
        cls.gw = Gateway(config("everything"), upstream=["node", EVERYTHING, "streamableHttp"],
                         upstream_env={"PORT": "{upstream_port}"})
        cls.addClassCleanup(cls.gw.stop)
        cls.gw.start()

    def session(self, client):
        marker = uuid.uuid4().hex
        steps = [{"op": "list"}, call("echo", message=marker), call("get-env"), call("echo", message=marker),
                 call("trigger-long-running-operation", duration=2, steps=2),
                 call("trigger-sampling-request", prompt=marker), call("trigger-elicitation-request")]
        logged_before = len(self.gw.decisions())
        report = drive(self.gw, client, STATEFUL, steps)
        listed, echo, refused, again, progress, sampling, elicitation = report["steps"]
        with self.subTest("connect (server-everything speaks 2025-11-25; 2026-07-28 clients fall back)"):
            self.assert_connected(report, LEGACY)
        with self.subTest("tools/list"):
            self.assertTrue(listed["ok"], self.show(report))
            self.assertTrue({"echo", "trigger-long-running-operation"} <= set(listed["result"]["tools"]))
            self.assertNotIn("get-env", listed["result"]["tools"], "forbidden: filtered out of the list")
        with self.subTest("an allowed call"):
            self.assert_allowed(report, echo, f"Echo: {marker}")
        with self.subTest("a refused call is that call's JSON-RPC error"):
            self.assert_refused(report, refused, client, "forbidden_by_policy", ["everything-no-env"],
                                "everything/get-env")
        with self.subTest("the same session calls on after the refusal"):
            self.assert_allowed(report, again, f"Echo: {marker}")
            self.assert_logged_allowed("everything/echo", {"message": marker}, 2)
        with self.subTest("progress notifications"):
            self.assertTrue(progress["ok"], self.show(report))
            self.assertEqual([(p["progress"], p["total"]) for p in progress["progress"]], [(1, 2), (2, 2)], progress)
        with self.subTest("server-to-client requests: sampling and elicitation"):
            self.assertTrue(sampling["ok"] and elicitation["ok"], self.show(report))
            self.assertIn("LLM sampling result", text_of(sampling))
            self.assertIn("interop-agent", json.dumps(elicitation["result"]))
            self.assertEqual([r["method"] for r in report["server_requests"]],
                             ["sampling/createMessage", "elicitation/create"])
            self.records_since(logged_before, lambda new: sum(
                r["action"] == "response" and r["decision"] == "allow" for r in new) >= 2,
                "the allowed records of the client's two answers")
        with self.subTest("session end"):
            self.assert_session(report, stateful=True)
            self.assert_session_records(logged_before, report)
        return report

    def test_python_mcp2_default_mode(self):
        report = self.session("py2")
        # Toolgate let server/discover through: the server itself refused it, so the SDK fell back.
        discover = report["http"][0]
        self.assertEqual((discover["sent_mcp_method"], discover["status"]), ("server/discover", 400), exchanges(report))

    def test_python_mcp1(self):
        self.session("py1")

    def test_typescript(self):
        self.session("ts")


if __name__ == "__main__":
    unittest.main()
