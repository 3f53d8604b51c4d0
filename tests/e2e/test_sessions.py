"""End-to-end: MCP sessions bound to the agent that opened them, through a real Envoy with two
workers (the binding is in shared data: opened on one worker, enforced on both), and the
upstream's status in the decision record."""
import unittest

from harness import Gateway, wait_until

READER = "spiffe://toolgate.test/agent/reader"
WORKERS = 2
SESSION = "mcp-session-id"


def counter(gw, name):
    stats = gw.stats()
    for key in (f"toolgate_{name}", f"envoy_wasmcustom_toolgate_{name}"):
        if key in stats:
            return stats[key]
    return 0


class Sessions(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.gw = Gateway(workers=WORKERS)
        cls.addClassCleanup(cls.gw.stop)
        cls.gw.start()

    def record(self, response):
        """The decision record of a response: refusals name their decision id, allowed calls
        carry it only upstream, so those are found by the request id the test sent."""
        decision_id = response.header("x-toolgate-decision-id")
        if decision_id:
            return self.gw.decision(decision_id)
        return self.gw.decision_for_request(response.request_id)

    def send(self, method, cert, session, rpc=None, path="/mcp"):
        """One request on a fresh TLS connection (the kernel spreads them over the workers)."""
        request_id = f"sessions-{method}-{cert}-{self.sent}"
        self.sent += 1
        headers = {"x-request-id": request_id}
        if session is not None:
            headers[SESSION] = session
        if rpc is not None:
            body = {"jsonrpc": "2.0", "id": self.sent, "method": rpc}
            response = self.gw.request("POST", path, body, headers=headers, cert=cert)
        else:
            if method == "GET":
                headers["accept"] = "text/event-stream"
            response = self.gw.request(method, path, headers=headers, cert=cert)
        response.request_id = request_id
        return response

    def setUp(self):
        self.sent = 0

    def open_session(self):
        opened = self.send("POST", "reader", None, rpc="initialize")
        self.assertEqual(opened.status, 200, opened.body)
        session = opened.header(SESSION)
        self.assertTrue(session, f"the sample server minted no session: {opened.headers}")
        record = self.record(opened)
        self.assertEqual(record["mcp_session"], {"id": session, "binding": "opened"}, record)
        self.assertEqual(record["upstream_status"], 200)
        return session, record["decision_id"][:16]

    def upstream_in_session(self, session):
        return [r for r in self.gw.upstream_requests() if r["headers"].get(SESSION) == session]

    def test_another_agent_cannot_post_stream_or_delete_in_the_session_on_either_worker(self):
        gw = self.gw
        session, opened_on = self.open_session()
        bound_before = counter(gw, "sessions_bound")
        self.assertGreaterEqual(bound_before, 1)
        refused_on, tries = set(), 0
        # Until the writer was refused on both workers, each of the three ways, a few times over.
        while (len(refused_on) < WORKERS or tries < 3) and tries < 30:
            tries += 1
            for method, rpc in (("POST", "tools/list"), ("GET", None), ("DELETE", None)):
                refused = self.send(method, "writer", session, rpc=rpc)
                self.assertEqual(refused.status, 403, f"{method}: {refused.body[:300]!r}")
                record = self.record(refused)
                self.assertEqual(record["reason"], "session_not_owned", record)
                self.assertEqual(record["mcp_session"], {"id": session, "binding": "other"}, record)
                self.assertIsNone(record["upstream_status"], record)
                self.assertNotIn(READER, refused.body.decode(), "the owner is not told to others")
                # The MCP endpoint speaks JSON-RPC, body-less GET and DELETE included.
                error = refused.json()["error"]
                self.assertEqual(error["code"], -32011)
                self.assertEqual(error["data"]["reason"], "session_not_owned")
                refused_on.add(record["decision_id"][:16])
        self.assertEqual(len(refused_on), WORKERS, f"refused on {refused_on} only, after {tries} rounds")
        gw.upstream_barrier()
        self.assertEqual([r["method"] for r in self.upstream_in_session(session)], [],
                         "a refused request reached the upstream")
        self.assertGreaterEqual(counter(gw, "sessions_not_owned"), 3 * tries)

        # The owner carries on, on both workers.
        owned_on = set()
        for _ in range(30):
            for method, rpc in (("POST", "tools/list"), ("GET", None)):
                allowed = self.send(method, "reader", session, rpc=rpc)
                self.assertEqual(allowed.status, 200, allowed.body[:300])
                record = self.record(allowed)
                self.assertEqual(record["mcp_session"], {"id": session, "binding": "owner"}, record)
                self.assertEqual(record["cedar"]["context"]["mcp_session_id"], session)
                owned_on.add(record["decision_id"][:16])
            if len(owned_on) == WORKERS:
                break
        self.assertEqual(len(owned_on), WORKERS, owned_on)
        # Ending it: the owner's accepted DELETE removes the binding; the id is then unknown.
        ended = self.send("DELETE", "reader", session)
        self.assertEqual(ended.status, 200, ended.body)
        self.assertEqual(self.record(ended)["mcp_session"], {"id": session, "binding": "ended"})
        wait_until(lambda: counter(gw, "sessions_ended") >= 1, what="toolgate_sessions_ended")
        after = self.send("GET", "writer", session)
        self.assertEqual(after.status, 200, after.body)
        self.assertEqual(self.record(after)["mcp_session"], {"id": session, "binding": "unknown"})
        print(f"\n  session opened on {opened_on}; writer refused on {sorted(refused_on)} "
              f"in {tries} rounds; owner served on {sorted(owned_on)}")

    def test_a_session_id_that_is_not_visible_ascii_is_refused(self):
        before = len(self.gw.upstream_requests())
        refused = self.send("GET", "reader", "has space")
        self.assertEqual(refused.status, 400, refused.body)
        self.assertEqual(self.record(refused)["reason"], "invalid_header")
        self.gw.upstream_barrier()
        self.assertEqual(len(self.gw.upstream_requests()), before)


class UpstreamStatus(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.gw = Gateway()
        cls.addClassCleanup(cls.gw.stop)
        cls.gw.start()

    def test_allowed_then_refused_by_the_server_is_visible_in_the_record(self):
        gw = self.gw
        refused_upstream = gw.request("GET", "/weather/v1/forecast?status=503",
                                      headers={"x-request-id": "upstream-503"})
        self.assertEqual(refused_upstream.status, 503, refused_upstream.body)
        record = gw.decision_for_request("upstream-503")
        self.assertEqual((record["decision"], record["upstream_status"]), ("allow", 503), record)

        ok = gw.request("GET", "/weather/v1/forecast", headers={"x-request-id": "upstream-200"})
        self.assertEqual(ok.status, 200)
        self.assertEqual(gw.decision_for_request("upstream-200")["upstream_status"], 200)

        # toolgate's own answer (a policy refusal, HTTP 200 with the JSON-RPC error) is no upstream's.
        denied = gw.call_tool("no_such_tool", headers={"x-request-id": "toolgate-refusal"})
        denied.refusal("not_permitted")
        record = gw.decision_for_request("toolgate-refusal")
        self.assertEqual((record["decision"], record["upstream_status"]), ("deny", None), record)


if __name__ == "__main__":
    unittest.main()
