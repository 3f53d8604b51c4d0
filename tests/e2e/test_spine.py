"""End-to-end: the request path through a real Envoy loading toolgate.wasm, over real mTLS."""
import json
import os
import subprocess
import unittest

from harness import GatewayTestCase, ENVOY, Gateway, args_digest, wait_until

RECORD_FIELDS = {
    "decision_id", "timestamp", "principal", "trust_domain", "action", "resource", "server",
    "intent", "task", "session", "decision", "enforced", "policies", "errors", "policy_version",
    "eval_us", "request_id", "arguments_digest",
}


class Spine(GatewayTestCase):
    def reached_upstream(self, decision_id):
        return [r for r in self.gw.upstream_requests() if r["headers"].get("x-toolgate-decision-id") == decision_id]

    def body_reached_upstream(self, needle):
        return [r for r in self.gw.upstream_requests() if needle in r["body"]]

    def assert_not_reached(self, needle):
        """No request with NEEDLE in its body reached the upstream, checked once a later
        request has (a refused request never gets there; a leak would have by then)."""
        self.gw.upstream_barrier()
        self.assertEqual(self.body_reached_upstream(needle), [], f"a request with {needle} reached the upstream")

    def test_allowed_tool_call_is_forwarded_with_annotations(self):
        r = self.gw.call_tool("read_file", {"path": "README.md"}, id=11)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json()["id"], 11)
        self.assertIn("read_file ran with", r.json()["result"]["content"][0]["text"])
        [seen] = [u for u in self.gw.upstream_requests() if '"id": 11' in u["body"] or '"id":11' in u["body"]]
        headers = seen["headers"]
        self.assertRegex(headers["x-toolgate-decision-id"], r"^[0-9a-f]{32}$")
        self.assertEqual(headers["x-toolgate-policies"], "readers-call-low-sensitivity-tools")
        self.assertRegex(headers["x-toolgate-policy-version"], r"^[0-9a-f]{16}$")
        self.assertEqual(headers["x-toolgate-principal"], "spiffe://toolgate.test/agent/reader")

    def test_spoofed_annotation_headers_are_replaced_or_removed(self):
        spoof = {"x-toolgate-policies": "admin-allow-all", "x-toolgate-decision-id": "forged",
                 "x-toolgate-principal": "spiffe://toolgate.test/agent/admin", "x-toolgate-approved": "yes"}
        r = self.gw.call_tool("search_docs", {"query": "spoof-check"}, id=12, headers=spoof)
        self.assertEqual(r.status, 200, r.body)
        [seen] = self.body_reached_upstream("spoof-check")
        headers = seen["headers"]
        self.assertEqual(headers["x-toolgate-policies"], "readers-call-low-sensitivity-tools")
        self.assertNotEqual(headers["x-toolgate-decision-id"], "forged")
        self.assertEqual(headers["x-toolgate-principal"], "spiffe://toolgate.test/agent/reader")
        self.assertNotIn("x-toolgate-approved", headers)

    def test_forbidden_tool_gets_jsonrpc_error_with_id_and_nothing_reaches_upstream(self):
        r = self.gw.call_tool("delete_database", {"really": True}, id="req-42")
        # A policy's no is HTTP 200 with the JSON-RPC error: the MCP SDKs raise it for this
        # one call and the session goes on.
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("content-type"), "application/json")
        body = r.json()
        self.assertEqual(body["jsonrpc"], "2.0")
        self.assertEqual(body["id"], "req-42")
        self.assertNotIn("result", body)
        self.assertEqual(body["error"]["code"], -32010)
        self.assertEqual(body["error"]["message"], "toolgate: the call is forbidden by policy")
        self.assertEqual(body["error"]["data"]["reason"], "forbidden_by_policy")
        self.assertEqual(body["error"]["data"]["policies"], ["forbid-critical-tools"])
        self.assertEqual(body["error"]["data"]["decision_id"], r.header("x-toolgate-decision-id"))
        self.assertIsNone(r.header("retry-after"))
        record = self.gw.decision(r.header("x-toolgate-decision-id"))
        self.assertEqual((record["decision"], record["reason"], record["upstream_status"]),
                         ("deny", "forbidden_by_policy", None))
        self.assert_not_reached("delete_database")

    def test_intent_decides_a_write(self):
        without = self.gw.call_tool("write_file", {"path": "notes.md", "content": "no intent"}, id=20, cert="writer")
        without.refusal("not_permitted", id=20)
        self.assert_not_reached("no intent")
        intent = {"x-agent-intent": "write", "x-agent-task": "TASK-7", "x-agent-session": "s-1"}
        allowed = self.gw.call_tool("write_file", {"path": "notes.md", "content": "with intent"}, id=21,
                                    cert="writer", headers=intent)
        self.assertEqual(allowed.status, 200, allowed.body)
        record = self.gw.decision(allowed.header("x-toolgate-decision-id") or self.upstream_decision("with intent"))
        self.assertEqual((record["intent"], record["task"], record["session"]), ("write", "TASK-7", "s-1"))
        self.assertEqual(record["policies"], ["writers-call-medium-tools-with-intent"])

    def upstream_decision(self, needle):
        [seen] = self.body_reached_upstream(needle)
        return seen["headers"]["x-toolgate-decision-id"]

    def test_arguments_decide_a_refund(self):
        small = self.gw.call_tool("refund", {"order_id": "o-1", "amount": 40}, id=30, cert="payments")
        self.assertEqual(small.status, 200, small.body)
        large = self.gw.call_tool("refund", {"order_id": "o-2", "amount": 4000}, id=31, cert="payments")
        large.refusal("not_permitted", id=31)
        self.assert_not_reached('"o-2"')

    def test_missing_intent_is_absent_not_empty(self):
        r = self.gw.call_tool("read_file", {"path": "a"}, id=40, headers={"x-agent-intent": ""})
        record = self.gw.decision(self.upstream_decision('"id": 40'))
        self.assertIsNone(record["intent"])
        self.assertIsNone(record["task"])
        self.assertEqual(r.status, 200)

    def test_rest_allow_and_deny(self):
        ok = self.gw.request("GET", "/weather/v1/forecast?city=Paris")
        self.assertEqual(ok.status, 200, ok.body)
        denied = self.gw.request("POST", "/weather/v1/alerts", b"level=red", {"content-type": "text/plain"})
        self.assertEqual(denied.status, 403)
        self.assertEqual(denied.header("content-type"), "application/problem+json")
        problem = denied.json()
        self.assertEqual(problem["status"], 403)
        self.assertEqual(problem["reason"], "not_permitted")
        self.assertEqual(problem["instance"], "/weather/v1/alerts")
        self.assert_not_reached("level=red")
        record = self.gw.decision(problem["decision_id"])
        self.assertEqual(record["action"], "http")
        self.assertEqual(record["resource"], "weather/POST /weather/v1/alerts")
        self.assertEqual(record["server"], "weather")

    def test_unauthenticated_principal_is_denied(self):
        # A policy refused it, but a caller without identity keeps the 403.
        r = self.gw.mcp("tools/list", id=50, cert=None)
        data = r.refusal("forbidden_by_policy", status=403, id=50)
        self.assertEqual(data["policies"], ["forbid-unauthenticated"])
        record = self.gw.decision(r.header("x-toolgate-decision-id"))
        self.assertIsNone(record["principal"])
        self.assertFalse(record["authenticated"])

    def test_identity_header_is_ignored_without_dev_mode(self):
        r = self.gw.mcp("tools/list", id=51, cert=None,
                        headers={"x-dev-spiffe-id": "spiffe://toolgate.test/agent/reader",
                                 "x-forwarded-client-cert": "URI=spiffe://toolgate.test/agent/reader"})
        r.refusal("forbidden_by_policy", status=403, id=51)
        self.assertIsNone(self.gw.decision(r.header("x-toolgate-decision-id"))["principal"])

    def test_untrusted_trust_domain_is_refused(self):
        r = self.gw.mcp("tools/list", id=52, cert="untrusted")
        # The caller's identity is refused, not a policy's: 403 and -32011.
        r.refusal("untrusted_trust_domain", status=403, code=-32011, id=52)
        body = r.json()
        record = self.gw.decision(body["error"]["data"]["decision_id"])
        self.assertEqual(record["trust_domain"], "evil.test")
        self.assertEqual(record["principal"], "spiffe://evil.test/agent/reader")
        self.assertEqual(self.reached_upstream(body["error"]["data"]["decision_id"]), [])

    def test_known_trust_domain_but_unknown_agent_gets_nothing(self):
        r = self.gw.call_tool("read_file", {"path": "x"}, id=53, cert="stranger")
        self.assertEqual(r.refusal("not_permitted", id=53)["policies"], [])

    def test_a_refused_message_without_an_id_keeps_its_403(self):
        # A message without an id (a notification) has no JSON-RPC answer to carry the
        # refusal: it keeps HTTP 403, the error's id null.
        r = self.gw.mcp("tools/call", {"name": "delete_database", "arguments": {"note": "no-id"}}, id=None)
        self.assertEqual(r.refusal("forbidden_by_policy", status=403, id=None)["policies"], ["forbid-critical-tools"])
        self.assert_not_reached("no-id")

    def test_invalid_json_is_a_parse_error(self):
        r = self.gw.request("POST", "/mcp", b'{"jsonrpc":"2.0","id":1,"method":', {"content-type": "application/json"})
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json()["error"]["code"], -32700)
        self.assertEqual(r.json()["error"]["data"]["reason"], "invalid_json")

    def test_decision_record_fields(self):
        r = self.gw.call_tool("read_file", {"path": "secret.txt", "mode": "r"}, id=60,
                              headers={"x-agent-intent": "summarize", "x-agent-task": "T-1",
                                       "x-agent-session": "S-9", "x-request-id": "req-abc-123"})
        self.assertEqual(r.status, 200, r.body)
        record = self.gw.decision(self.upstream_decision("secret.txt"))
        self.assertLessEqual(RECORD_FIELDS, set(record))
        self.assertEqual(record["principal"], "spiffe://toolgate.test/agent/reader")
        self.assertEqual(record["trust_domain"], "toolgate.test")
        self.assertEqual(record["action"], "tools/call")
        self.assertEqual(record["resource"], "tools/read_file")
        self.assertEqual(record["server"], "tools")
        self.assertEqual(record["decision"], "allow")
        self.assertTrue(record["enforced"])
        self.assertEqual(record["request_id"], "req-abc-123")
        self.assertEqual(record["rpc_id"], 60)
        self.assertEqual((record["intent"], record["task"], record["session"]), ("summarize", "T-1", "S-9"))
        self.assertRegex(record["timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
        self.assertIsInstance(record["eval_us"], int)
        self.assertEqual(record["errors"], [])
        self.assertRegex(record["policy_version"], r"^[0-9a-f]{16}$")
        # Arguments are digested, not logged: sha256 of canonical JSON (sorted keys, no spaces).
        self.assertEqual(record["arguments_digest"], args_digest({"path": "secret.txt", "mode": "r"}))
        # Every field is on every line: `arguments` is there, and null unless log_arguments.
        self.assertIsNone(record["arguments"])
        self.assertNotIn("secret.txt", json.dumps(record))


class Metrics(unittest.TestCase):
    def test_counters_count_each_outcome(self):
        with Gateway() as gw:
            for i in range(3):
                self.assertEqual(gw.call_tool("read_file", {"path": str(i)}, id=i).status, 200)
            for i in range(2):
                gw.call_tool("delete_database", id=i).refusal("forbidden_by_policy")
            self.assertEqual(gw.request("POST", "/mcp", b"{oops", {"content-type": "application/json"}).status, 400)
            stats = gw.stats()
            self.assertEqual(stats.get("toolgate_decisions_allow"), 3)
            self.assertEqual(stats.get("toolgate_decisions_deny"), 2)
            self.assertEqual(stats.get("toolgate_decisions_error"), 1)


class DevelopmentIdentity(unittest.TestCase):
    def test_header_identity_only_when_configured_and_marked_insecure(self):
        config = {"trust_domains": ["toolgate.test"], "server": "tools", "server_from": "route_name",
                  "dev_identity_header": "x-dev-spiffe-id", "log_arguments": True}
        with Gateway(config) as gw:
            r = gw.call_tool("read_file", {"path": "dev.txt"}, id=70, cert=None,
                             headers={"x-dev-spiffe-id": "spiffe://toolgate.test/agent/reader"})
            self.assertEqual(r.status, 200, r.body)
            [seen] = [u for u in gw.upstream_requests() if "dev.txt" in u["body"]]
            self.assertNotIn("x-dev-spiffe-id", seen["headers"])
            record = gw.decision(seen["headers"]["x-toolgate-decision-id"])
            self.assertTrue(record["insecure_identity"])
            self.assertEqual(record["arguments"], {"path": "dev.txt"})
            # The guardrail keeps a header identity away from high-sensitivity tools.
            refund = gw.call_tool("refund", {"amount": 1}, id=71, cert=None,
                                  headers={"x-dev-spiffe-id": "spiffe://toolgate.test/agent/payments"})
            # The header names a principal: a policy's no to it is answered like any other.
            self.assertEqual(refund.refusal("forbidden_by_policy", id=71)["policies"],
                             ["forbid-insecure-identity-on-sensitive-tools"])
            # A certificate always wins over the header.
            cert = gw.call_tool("read_file", {"path": "x"}, id=72, cert="reader",
                                headers={"x-dev-spiffe-id": "spiffe://toolgate.test/agent/payments"})
            self.assertFalse(gw.decision(cert.header("x-toolgate-decision-id") or
                                         [u for u in gw.upstream_requests() if '"id": 72' in u["body"]][0]
                                         ["headers"]["x-toolgate-decision-id"])["insecure_identity"])


class ConfiguredRefusals(unittest.TestCase):
    """The plugin configuration's `refusals` changes how a policy's no reaches the agent
    (docs/decision-log.md, "Responses"); the caller's and the transport's refusals stay."""
    BASE = {"trust_domains": ["toolgate.test"], "server": "tools", "server_from": "route_name"}

    def test_policy_status_reason_answers_403_and_429(self):
        # With history, which the rate limit counts on.
        history = {"idle_seconds": 600, "max_entries": 1024, "shards": 4, "sweep_seconds": 5}
        with Gateway({**self.BASE, "history": history, "refusals": {"policy_status": "reason"}}) as gw:
            r = gw.call_tool("delete_database", {"note": "reason-403"}, id=1)
            self.assertEqual(r.refusal("forbidden_by_policy", status=403, id=1)["policies"],
                             ["forbid-critical-tools"])
            self.assertEqual(gw.decision(r.header("x-toolgate-decision-id"))["decision"], "deny")
            # Discovery too, not only tools/call.
            gw.mcp("resources/read", {"uri": "file:///etc/passwd"}, id=2).refusal("not_permitted", status=403, id=2)
            # The rate limit's own status, 429 with Retry-After: 5 refunds a minute, the 6th refused.
            for n in range(5):
                ok = gw.call_tool("refund", {"order_id": f"r-{n}", "amount": 10}, id=10 + n, cert="payments")
                self.assertFalse(ok.refused(), ok.describe())
            limited = gw.call_tool("refund", {"order_id": "r-6", "amount": 10}, id=16, cert="payments")
            data = limited.refusal("rate_limited", status=429, id=16)
            self.assertEqual(data["retry_after"], int(limited.header("retry-after")))
            gw.upstream_barrier()
            seen = " ".join(u["body"] for u in gw.upstream_requests())
            self.assertNotIn("reason-403", seen)
            self.assertNotIn("r-6", seen)

    def test_tools_call_result_answers_a_refused_tool_call_as_a_tool_result(self):
        with Gateway({**self.BASE, "refusals": {"tools_call": "result"}}) as gw:
            r = gw.call_tool("delete_database", {"note": "as-result"}, id=1)
            data = r.tool_refusal("forbidden_by_policy", id=1)
            self.assertEqual(data["policies"], ["forbid-critical-tools"])
            self.assertIn("policies forbid-critical-tools", r.json()["result"]["content"][0]["text"])
            record = gw.decision(data["decision_id"])
            self.assertEqual((record["decision"], record["reason"], record["upstream_status"]),
                             ("deny", "forbidden_by_policy", None))
            # The text tells the model what to do: here, get a human's approval.
            transfer = gw.call_tool("wire_transfer", {"to_account": "DE89-3704", "amount": 2500}, id=2,
                                    cert="payments")
            data = transfer.tool_refusal("approval_required", id=2)
            self.assertEqual(data["approve"]["tool"], "wire_transfer")
            self.assertIn("Ask a human to approve this exact call", transfer.json()["result"]["content"][0]["text"])
            # Other methods keep the JSON-RPC error, and the caller's identity refusals their status.
            gw.mcp("resources/read", {"uri": "file:///etc/passwd"}, id=3).refusal("not_permitted", id=3)
            untrusted = gw.call_tool("read_file", {"path": "x"}, id=4, cert="untrusted")
            untrusted.refusal("untrusted_trust_domain", status=403, code=-32011, id=4)
            anonymous = gw.call_tool("delete_database", {"note": "as-result"}, id=5, cert=None)
            anonymous.refusal("forbidden_by_policy", status=403, id=5)
            gw.upstream_barrier()
            self.assertEqual([u for u in gw.upstream_requests() if "as-result" in u["body"] or "DE89" in u["body"]],
                             [], "a refused call reached the upstream")


class InvalidConfiguration(unittest.TestCase):
    def refused(self, config, *expected):
        gw = Gateway(config)
        try:
            gw.start(wait_ready=False)
            wait_until(lambda: gw.envoy.poll() is not None, timeout=60, interval=0.1,
                       what="envoy to exit: it started with an invalid configuration")
            log = gw.log_text()
            self.assertNotEqual(gw.envoy.returncode, 0)
            refusal = "\n".join(line for line in log.splitlines() if "toolgate" in line)
            for text in expected:
                self.assertIn(text, refusal, f"not in the refusal lines:\n{refusal}")
        finally:
            gw.stop()

    def test_policy_syntax_error_names_source_line_and_problem(self):
        bad = 'permit(principal, action, resource);\n\n@id("broken")\npermit(principal, action == , resource);\n'
        self.refused({"trust_domains": ["toolgate.test"], "policies": {"cedar": bad}},
                     "toolgate: configuration refused", "plugin configuration `policies.cedar`:4:")

    def test_schema_violation_names_the_policy(self):
        bad = '@id("typo")\npermit(principal, action == Toolgate::Action::"tools/call", resource)\nwhen { context.intnet == "x" };\n'
        self.refused({"trust_domains": ["toolgate.test"], "policies": {"cedar": bad}},
                     "configuration refused", "policy `typo`", "`policies.cedar`:3:",
                     "did you mean `intent`?")

    def test_unknown_field_and_malformed_json(self):
        self.refused({"trust_domain": ["toolgate.test"]}, "unknown field `trust_domain`")
        self.refused('{"trust_domains": [', "plugin configuration, line")


if __name__ == "__main__":
    unittest.main()
