"""End-to-end: lists filtered by policy (docs/lists.md) through a real Envoy with the demo policies and
the sample server's tools/list (examples/demo/mcp/tools.json): a reader's list lacks delete_database and the
write tools; the payments agent sees refund with its amount condition in _meta; the record says what was
hidden and why; an SSE list (with progress) is filtered in its event; shadow mode hides nothing but logs."""
import json
import time
import unittest
import uuid

from harness import GatewayTestCase

CONFIG = {
    "trust_domains": ["toolgate.test"],
    "server": "tools",
    # The route names the server (as envoy/toolgate.json does): the harness's barrier is a weather call.
    "server_from": "route_name",
}
ALL = ["read_file", "search_docs", "read_secret", "post_webhook", "write_file", "refund", "wire_transfer",
       "close_account", "delete_database"]


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class ListsCase(GatewayTestCase):
    def list_tools(self, cert, params=None, headers=None):
        request_id = unique("list")
        response = self.gw.mcp("tools/list", params, id=request_id, cert=cert,
                               headers={"x-request-id": request_id, **(headers or {})})
        return request_id, response

    def record(self, request_id):
        """The request's record once the list block is in it."""
        deadline = time.time() + 5
        while True:
            record = self.gw.decision_for_request(request_id)
            if record.get("list") or time.time() > deadline:
                return record
            time.sleep(0.05)


class Lists(ListsCase):
    CONFIG = json.dumps(CONFIG)

    def test_a_reader_does_not_see_delete_database_or_the_write_tools(self):
        request_id, response = self.list_tools("reader")
        self.assertEqual(response.status, 200, response.body)
        self.assertIsNone(response.header("content-length"), "a filtered list has no declared length")
        tools = response.json()["result"]["tools"]
        self.assertEqual([t["name"] for t in tools], ["read_file", "search_docs", "read_secret", "post_webhook"])
        self.assertNotIn("cacheScope", response.json()["result"], "a 2025 request: no cacheScope")
        record = self.record(request_id)
        listed = record["list"]
        self.assertEqual((listed["method"], listed["mode"], listed["items"], listed["listed"], listed["shadow"]),
                         ("tools/list", "conditions", 9, 4, False), listed)
        hidden = {h["name"]: h for h in listed["hidden"]}
        self.assertEqual(set(hidden), {"write_file", "refund", "wire_transfer", "close_account", "delete_database"})
        self.assertEqual(hidden["delete_database"]["reason"], "forbidden_by_policy")
        self.assertEqual(hidden["delete_database"]["policies"], ["forbid-critical-tools"])
        self.assertEqual(hidden["write_file"]["reason"], "not_permitted")
        self.assertIsNone(listed["refused"])
        self.assertEqual(record["decision"], "allow")

    def test_payments_sees_refund_with_its_amount_condition(self):
        request_id, response = self.list_tools("payments")
        self.assertEqual(response.status, 200, response.body)
        tools = {t["name"]: t for t in response.json()["result"]["tools"]}
        self.assertIn("refund", tools)
        self.assertNotIn("delete_database", tools)
        conditions = tools["refund"]["_meta"]["toolgate/conditions"]
        self.assertEqual(conditions["text"], "amount > 0 and amount <= 100")
        self.assertEqual(conditions["allow_if"], {"all_of": [{"arg": "amount", "op": ">", "value": 0},
                                                             {"arg": "amount", "op": "<=", "value": 100}]})
        self.assertTrue(conditions["exact"])
        self.assertEqual(tools["wire_transfer"]["_meta"]["toolgate/conditions"]["approval"], True)
        listed = self.record(request_id)["list"]
        self.assertGreaterEqual(listed["conditions"], 2, listed)
        self.assertIn("delete_database", [h["name"] for h in listed["hidden"]])

    def test_an_sse_list_is_filtered_in_its_event_and_progress_passes(self):
        request_id, response = self.list_tools("reader", params={"_meta": {"progressToken": "p1"}},
                                               headers={"accept": "application/json, text/event-stream"})
        self.assertEqual(response.status, 200, response.body)
        events = [json.loads(line[len("data: "):]) for line in response.body.decode().splitlines()
                  if line.startswith("data: ")]
        self.assertEqual([e.get("method") for e in events[:3]], ["notifications/progress"] * 3)
        self.assertEqual([t["name"] for t in events[-1]["result"]["tools"]],
                         ["read_file", "search_docs", "read_secret", "post_webhook"])
        self.assertEqual(len(self.record(request_id)["list"]["hidden"]), 5)

    def test_counters(self):
        self.list_tools("reader")
        stats = self.gw.stats()
        get = lambda name: stats.get(f"envoy_wasmcustom_toolgate_lists_{name}", stats.get(f"toolgate_lists_{name}", 0))
        self.assertGreaterEqual(get("filtered"), 1, {k: v for k, v in stats.items() if "lists" in k})
        self.assertGreaterEqual(get("hidden_items"), 5)


class ShadowLists(ListsCase):
    CONFIG = json.dumps(dict(CONFIG, servers={"tools": {"mode": "shadow"}}))

    def test_shadow_mode_hides_nothing_and_logs_what_it_would_hide(self):
        request_id, response = self.list_tools("reader")
        self.assertEqual(response.status, 200, response.body)
        self.assertEqual([t["name"] for t in response.json()["result"]["tools"]], ALL)
        listed = self.record(request_id)["list"]
        self.assertTrue(listed["shadow"])
        self.assertIn("delete_database", [h["name"] for h in listed["hidden"]])
        self.assertEqual(len(listed["hidden"]), 5)


if __name__ == "__main__":
    unittest.main()
