"""End-to-end: shadow mode, fail-open routes, and recovery after a VM failure, through real Envoy."""
import os
import time
import unittest

from harness import CRASH_WASM, Gateway

BASE = {"trust_domains": ["toolgate.test"], "server": "tools", "server_from": "route_name"}
ALERT = b"level=red"
# VmFailure.attempt's answers from a healthy filter: forwarded, and a policy's no (HTTP 200).
ALLOWED, FORBIDDEN = "200", "200 forbidden_by_policy"


def config(**extra):
    return {**BASE, **extra}


def tool(name, id=1, arguments=None):
    return {"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": name, "arguments": arguments or {}}}


class ShadowMode(unittest.TestCase):
    def post_alert(self, gw):
        return gw.request("POST", "/weather/v1/alerts", ALERT, {"content-type": "text/plain"})

    def test_switching_a_route_between_enforce_and_shadow(self):
        # Shadow: the call goes through, the record keeps the real decision, the upstream is told.
        with Gateway(config(routes={"weather": {"mode": "shadow"}})) as gw:
            r = self.post_alert(gw)
            self.assertEqual(r.status, 201, r.body)
            [seen] = [u for u in gw.upstream_requests() if u["body"] == ALERT.decode()]
            self.assertEqual(seen["headers"]["x-toolgate-would-deny"], "not_permitted")
            record = gw.decision(seen["headers"]["x-toolgate-decision-id"])
            self.assertEqual((record["decision"], record["enforced"], record["mode"]), ("deny", False, "shadow"))
            self.assertEqual(record["reason"], "not_permitted")
            self.assertEqual(record["route"], "weather")
            # An allowed call in shadow mode is a plain allow, with no would-deny annotation.
            ok = gw.request("GET", "/weather/v1/forecast")
            self.assertEqual(ok.status, 200)
            [get] = [u for u in gw.upstream_requests() if u["method"] == "GET"]
            self.assertNotIn("x-toolgate-would-deny", get["headers"])
            # Other routes stay enforced.
            denied = gw.request("POST", "/mcp", tool("delete_database"))
            denied.refusal("forbidden_by_policy", id=1)
            stats = gw.stats()
            self.assertEqual(stats.get("toolgate_decisions_shadow_deny"), 1)
            self.assertEqual(stats.get("toolgate_decisions_deny"), 1)
            self.assertEqual(stats.get("toolgate_decisions_allow"), 1)
        # Enforce: the same call on the same route is blocked.
        with Gateway(config(routes={"weather": {"mode": "enforce"}})) as gw:
            r = self.post_alert(gw)
            self.assertEqual(r.status, 403)
            self.assertEqual(r.json()["reason"], "not_permitted")
            self.assertEqual(gw.upstream_requests(), [])
            self.assertTrue(gw.decision(r.header("x-toolgate-decision-id"))["enforced"])

    def test_a_whole_server_in_shadow_mode(self):
        with Gateway(config(servers={"tools": {"mode": "shadow"}})) as gw:
            r = gw.request("POST", "/mcp", tool("delete_database", id=4))
            self.assertEqual(r.status, 200, r.body)
            [seen] = gw.upstream_requests()
            self.assertEqual(seen["headers"]["x-toolgate-would-deny"], "forbidden_by_policy")
            record = gw.decision(seen["headers"]["x-toolgate-decision-id"])
            self.assertEqual(record["policies"], ["forbid-critical-tools"])
            self.assertFalse(record["enforced"])


class FailOpen(unittest.TestCase):
    def test_only_evaluation_errors_pass_and_each_is_logged(self):
        with Gateway(config(routes={"tools": {"fail_open": True}})) as gw:
            broken = gw.request("POST", "/mcp", b'{"jsonrpc":"2.0","id":1,', {"content-type": "application/json"})
            self.assertNotEqual(broken.status, 403)
            [seen] = gw.upstream_requests()
            self.assertEqual(seen["headers"]["x-toolgate-fail-open"], "invalid_json")
            record = gw.decision(seen["headers"]["x-toolgate-decision-id"])
            self.assertEqual((record["decision"], record["enforced"], record["reason"]), ("deny", False, "invalid_json"))
            # A policy denial is never failed open.
            gw.request("POST", "/mcp", tool("delete_database")).refusal("forbidden_by_policy", id=1)
            self.assertEqual(len(gw.upstream_requests()), 1)
            # Other routes fail closed.
            closed = gw.request("POST", "/weather/v1/alerts", b'{"jsonrpc":"2.0",', {"content-type": "application/json"})
            self.assertEqual(closed.status, 400)
            self.assertEqual(len(gw.upstream_requests()), 1)
            self.assertEqual(gw.stats().get("toolgate_decisions_fail_open"), 1)


class VmFailure(unittest.TestCase):
    def test_failure_policy_recovers_the_filter_and_denies_while_it_does(self):
        self.assertTrue(os.path.exists(CRASH_WASM),
                        f"{CRASH_WASM} is missing: scripts/test builds it (cargo build --features test-crash)")
        with Gateway(wasm=CRASH_WASM) as gw:
            self.assertEqual(self.attempt(gw, tool("read_file", id=1)), ALLOWED)
            crashed = self.attempt(gw, tool("read_file", id=2), {"x-toolgate-test-crash": "1"})
            # A healthy filter answers 200 either way (forwarded, or a policy's no).
            self.assertFalse(crashed.startswith("200"), f"the trapped VM answered as if healthy: {crashed}")
            # Until the VM is back, nothing passes unchecked: forbidden calls never reach the upstream.
            statuses, deadline = [], time.time() + 30
            while time.time() < deadline:
                forbidden = self.attempt(gw, tool("delete_database", id=3))
                allowed = self.attempt(gw, tool("read_file", id=4, arguments={"path": "after"}))
                statuses.append((forbidden, allowed))
                if forbidden == FORBIDDEN and allowed == ALLOWED:
                    break
                time.sleep(0.3)
            self.assertEqual(statuses[-1], (FORBIDDEN, ALLOWED), f"the filter did not recover: {statuses}")
            self.assertGreaterEqual(gw.stats().get("envoy_wasm_toolgate_vm_reload_success", 0), 1,
                                    "Envoy did not reload the VM")
            bodies = [u["body"] for u in gw.upstream_requests()]
            self.assertFalse([b for b in bodies if "delete_database" in b], "a forbidden call got through")

    @staticmethod
    def attempt(gw, body, headers=None):
        """The answer, as "STATUS" or "STATUS REASON" for toolgate's JSON-RPC refusal (a
        policy's no is HTTP 200 too), or the connection error."""
        try:
            r = gw.request("POST", "/mcp", body, headers)
        except (ConnectionError, OSError) as e:  # a reset connection is a refusal too
            return f"connection error: {type(e).__name__}"
        error = r.rpc_error()
        reason = (error.get("data") or {}).get("reason") if error else None
        return f"{r.status} {reason}" if reason else str(r.status)


if __name__ == "__main__":
    unittest.main()
