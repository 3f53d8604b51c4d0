"""End-to-end: short-lived JWTs verified by Envoy's jwt_authn, authorized by toolgate."""
import json
import os
import subprocess
import sys
import time
import unittest

from harness import GatewayTestCase, JWT_KEYS, ROOT, Gateway, args_digest, wait_until

READER = "spiffe://toolgate.test/agent/reader"
WRITER = "spiffe://toolgate.test/agent/writer"
CONFIG = {"trust_domains": ["toolgate.test"], "server": "tools", "server_from": "route_name", "credentials": {}}


def mint(issuer="agents", **claims):
    out = subprocess.run([sys.executable, os.path.join(ROOT, "scripts/lib/jwt.py"), "mint", JWT_KEYS, issuer,
                          json.dumps(claims)], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def tool(name, **arguments):
    return {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}}


class Credentials(GatewayTestCase):
    CONFIG = CONFIG

    def call(self, token, body=None, cert="reader", headers=None):
        hdrs = dict(headers or {})
        if token:
            hdrs["authorization"] = f"Bearer {token}"
        r = self.gw.request("POST", "/mcp", body or tool("read_file", path="a"), hdrs, cert=cert)
        decision_id = r.header("x-toolgate-decision-id")
        if decision_id is None:  # forwarded: the id is on the upstream's copy
            decision_id = self.gw.upstream_requests()[-1]["headers"]["x-toolgate-decision-id"]
        return r, self.gw.decision(decision_id)

    def test_a_matching_short_lived_token_is_allowed_and_logged(self):
        r, record = self.call(mint(sub=READER, aud="tools", scope="tools:read", jti="jti-1"))
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(record["token"]["subject"], READER)
        self.assertEqual(record["token"]["audience"], ["tools"])
        self.assertEqual(record["token"]["scopes"], ["tools:read"])
        self.assertEqual(record["token"]["jti"], "jti-1")
        self.assertEqual(record["token"]["ttl_seconds"], 600)
        self.assertNotIn("authorization", self.gw.upstream_requests()[-1]["headers"])

    def test_missing_expired_and_forged_tokens(self):
        # The caller's credential is refused, not a policy's call: 401, whatever the body.
        r, record = self.call(None)
        self.assertEqual((r.status, record["reason"]), (401, "token_missing"))
        r.refusal("token_missing", status=401, code=-32011, id=1)
        now = int(time.time())
        r, record = self.call(mint(sub=READER, aud="tools", iat=now - 900, exp=now - 300))
        self.assertEqual((r.status, record["reason"]), (401, "token_invalid"))
        self.assertIn("expired", " ".join(record["errors"]).lower())
        forged = mint(sub=READER, aud="tools")[:-8] + "AAAAAAAA"
        r, record = self.call(forged)
        self.assertEqual((r.status, record["reason"]), (401, "token_invalid"))
        other_issuer = mint("approvals", sub=READER, aud="tools")
        r, record = self.call(other_issuer)
        self.assertEqual((r.status, record["reason"]), (401, "token_invalid"))

    def test_each_rule_allowed_and_denied(self):
        cases = [
            ("token-subject-is-the-caller", {"sub": WRITER, "aud": "tools"}, {}),
            ("token-ttl-at-most-15-minutes", {"sub": READER, "aud": "tools", "exp": int(time.time()) + 3600}, {}),
            ("token-task-is-the-declared-task", {"sub": READER, "aud": "tools", "task": "T-1"}, {"x-agent-task": "T-2"}),
            ("token-audience-is-the-server", {"sub": READER, "aud": ["weather"]}, {}),
        ]
        for policy, claims, headers in cases:
            r, record = self.call(mint(**claims), headers=headers)
            # A policy refused the token: HTTP 200 with the JSON-RPC error.
            data = r.refusal("forbidden_by_policy", id=1)
            self.assertIn(policy, data["policies"])
            self.assertIn(policy, record["policies"])
        r, record = self.call(mint(sub=READER, aud=["weather", "tools"], task="T-1"), headers={"x-agent-task": "T-1"})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(record["token"]["task"], "T-1")

    def test_delegation_chains_of_0_1_and_3_actors(self):
        write = tool("write_file", path="notes", content="x")
        intent = {"x-agent-intent": "write", "x-agent-task": "T-9"}

        def chain(*actors):
            act = None
            for actor in reversed(actors):
                act = {"sub": actor, **({"act": act} if act else {})}
            return mint(sub=WRITER, aud="tools", task="T-9", **({"act": act} if act else {}))
        r, record = self.call(chain(), write, cert="writer", headers=intent)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(record["token"]["delegation"], [])
        r, record = self.call(chain("spiffe://toolgate.test/agent/writer"), write, cert="writer", headers=intent)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(len(record["token"]["delegation"]), 1)
        three = ("user:alice", "spiffe://toolgate.test/agent/writer", READER)
        r, record = self.call(chain(*three), write, cert="writer", headers=intent)
        r.refusal("delegated_actor_not_permitted", id=1)
        self.assertEqual(record["reason"], "delegated_actor_not_permitted")
        self.assertEqual(record["token"]["delegation"], list(three))
        r, record = self.call(chain("a:1", "a:2", "a:3", "a:4"), write, cert="writer", headers=intent)
        self.assertIn("delegation-at-most-3-deep", r.refusal(id=1)["policies"])
        self.assertIn("delegation-at-most-3-deep", record["policies"])


class Approvals(unittest.TestCase):
    """wire_transfer is tagged requires_approval in the catalog; payments may call it with an approval."""

    def test_an_approval_bound_to_the_exact_call_lets_it_through(self):
        with Gateway() as gw:
            body = tool("wire_transfer", to_account="DE89-3704", amount=2500)
            denied = gw.request("POST", "/mcp", body, cert="payments")
            data = denied.refusal("approval_required", id=1)
            approve = data["approve"]
            self.assertEqual(approve, {"agent": "spiffe://toolgate.test/agent/payments", "server": "tools",
                                       "tool": "wire_transfer",
                                       "args_digest": args_digest(body["params"]["arguments"])})
            record = gw.decision(data["decision_id"])
            self.assertEqual(record["approval"]["approve"], approve)
            self.assertEqual(gw.upstream_requests(), [])

            # An orchestrator gets exactly that approved, and the agent retries with it.
            approval = mint("approvals", approver="alice@example.com", sub=approve["agent"],
                            server=approve["server"], tool=approve["tool"], args_digest=approve["args_digest"])
            ok = gw.request("POST", "/mcp", body, {"x-approval-token": approval}, cert="payments")
            self.assertEqual(ok.status, 200, ok.body)
            [seen] = gw.upstream_requests()
            self.assertNotIn("x-approval-token", seen["headers"])
            record = gw.decision(seen["headers"]["x-toolgate-decision-id"])
            self.assertEqual(record["approval"], {"status": "approved", "approver": "alice@example.com",
                                                  "approve": None})

            # The same approval for other arguments, another tool or another agent is denied.
            other_args = tool("wire_transfer", to_account="DE89-3704", amount=250000)
            for request_body, cert in [(other_args, "payments"), (tool("close_account", to_account="DE89-3704", amount=2500), "payments"),
                                       (body, "writer")]:
                r = gw.request("POST", "/mcp", request_body, {"x-approval-token": approval}, cert=cert)
                with self.subTest(tool=request_body["params"]["name"], cert=cert):
                    r.refusal(id=1)
            mismatch = gw.request("POST", "/mcp", other_args, {"x-approval-token": approval}, cert="payments")
            record = gw.decision(mismatch.refusal("approval_required", id=1)["decision_id"])
            self.assertIn("args_digest", " ".join(record["errors"]))
            # An approval signed by the agents' key, or expired, does not count.
            forged = mint("agents", sub=approve["agent"], server="tools", tool="wire_transfer",
                          args_digest=approve["args_digest"])
            now = int(time.time())
            expired = mint("approvals", sub=approve["agent"], server="tools", tool="wire_transfer",
                           args_digest=approve["args_digest"], iat=now - 600, exp=now - 60)
            for bad in (forged, expired):
                r = gw.request("POST", "/mcp", body, {"x-approval-token": bad}, cert="payments")
                r.refusal("approval_required", id=1)
            self.assertEqual(len(gw.upstream_requests()), 1)


class Revocation(unittest.TestCase):
    CONFIG = {**CONFIG, "credentials": {"required": False},
              "revocation": {"controllers": ["spiffe://toolgate.test/controller"], "ttl_seconds": 4}}

    def test_revoking_a_task_or_token_stops_it_on_every_worker_until_expiry(self):
        with Gateway(self.CONFIG, workers=2) as gw:
            task = {"x-agent-task": "T-7"}
            read = tool("read_file", path="r")
            self.assertEqual(gw.request("POST", "/mcp", read, task).status, 200)
            # Only the controller may revoke; the control request never reaches the upstream.
            refused = gw.request("POST", "/.toolgate/revoke", {"task": "T-7"}, cert="reader")
            self.assertEqual(refused.status, 403)
            self.assertEqual(refused.json()["reason"], "not_a_controller")
            revoked = gw.request("POST", "/.toolgate/revoke", {"task": "T-7", "jti": "jti-9"}, cert="controller")
            revoked_at = time.monotonic()
            self.assertEqual(revoked.status, 200, revoked.body)
            self.assertEqual(revoked.json()["revoked"], [{"task": "T-7"}, {"jti": "jti-9"}])
            self.assertFalse([u for u in gw.upstream_requests() if "revoke" in u["path"]])
            # Many connections spread over both workers: every one is refused.
            # Revocation refuses the caller, not a call: 403 stays.
            for _ in range(12):
                r = gw.request("POST", "/mcp", read, task)
                r.refusal("revoked", status=403, code=-32011, id=1)
            self.assertEqual(gw.request("POST", "/mcp", read, {"x-agent-task": "T-8"}).status, 200)
            token = mint(sub=READER, aud="tools", jti="jti-9")
            r = gw.request("POST", "/mcp", read, {"authorization": f"Bearer {token}"})
            r.refusal("revoked", status=403, code=-32011)
            record = gw.decision(r.header("x-toolgate-decision-id"))
            self.assertIn("toolgate/revoked/jti/jti-9 is revoked", record["errors"])
            # Entries expire after the configured TTL (the longest token lifetime): refused
            # until then, on whichever worker, then let through.
            def task_passes():
                r = gw.request("POST", "/mcp", read, task)
                if not r.refused():
                    self.assertEqual(r.status, 200, r.body)
                    return True
                r.refusal("revoked", status=403)
                return False
            wait_until(task_passes, timeout=10, what="the revocation of T-7 to expire", interval=0.2)
            # Whole seconds: in force while expires (revoked + 4) > now, so more than 3 s passed
            # (less the revoke's own round trip).
            self.assertGreaterEqual(time.monotonic() - revoked_at, 2.5, "the revocation ended before its TTL")


if __name__ == "__main__":
    unittest.main()
