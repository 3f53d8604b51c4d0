"""End-to-end, raw HTTP: A2A tasks bound to the agent whose message created them, through a real
Envoy with two workers (the binding is in shared data: made on one worker, enforced on both), a
case variant of a method refused, and the record's `a2a` block. The upstream is
tests/e2e/a2a_upstream.py; the a2a-sdk client and server are driven in the A2A interop tests."""
import json
import os
import sys
import unittest

from harness import DEMO, Gateway, ecds_lib

HERE = os.path.dirname(os.path.abspath(__file__))
WORKERS = 2
PATH = "/mcp/a2a"  # under envoy.yaml's /mcp route, so it reaches the upstream

POLICIES = """
@id("readers-message-tools")
permit (principal in Toolgate::AgentGroup::"readers", action in Toolgate::Action::"a2a_messages", resource == Toolgate::Server::"tools");
"""


def plugin_config():
    config = {"trust_domains": ["toolgate.test"], "server": "tools",
              "a2a": {"jsonrpc_paths": [PATH], "tasks": {"max_entries": 256, "shards": 16, "ttl_seconds": 600}}}
    policies = ecds_lib.read_policies(DEMO, config)
    policies["cedar"] += POLICIES
    config["policies"] = policies
    return config


class A2aTasks(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.gw = Gateway(plugin_config(), workers=WORKERS,
                         upstream=[sys.executable, os.path.join(HERE, "a2a_upstream.py"), "--port", "{upstream_port}"])
        cls.addClassCleanup(cls.gw.stop)
        cls.gw.start()

    def rpc(self, method, params, cert, headers=None):
        """One request on a fresh TLS connection (the kernel spreads them over the workers)."""
        body = {"jsonrpc": "2.0", "id": 7, "method": method, "params": params}
        return self.gw.request("POST", PATH, body, headers=headers, cert=cert)

    def send_message(self, method="SendMessage"):
        message = {"role": "ROLE_USER", "messageId": "m-1", "parts": [{"text": "hello"}]}
        self.sent = getattr(self, "sent", 0) + 1
        request_id = f"a2a-{method}-{self.sent}-{id(self)}"
        sent = self.rpc(method, {"message": message}, "reader",
                        headers={"a2a-version": "1.0", "x-request-id": request_id})
        self.assertEqual(sent.status, 200, sent.body)
        sent.request_id = request_id
        return sent

    def test_a_task_is_its_creators_on_every_worker(self):
        sent = self.send_message()
        task_id = sent.json()["result"]["task"]["id"]
        record = self.gw.decision_for_request(sent.request_id)
        self.assertEqual(record["action"], "a2a/SendMessage")
        self.assertEqual(record["a2a"]["version"], "1.0")
        self.assertEqual(record["a2a"]["tasks_bound"], [task_id], record)
        # Fresh connections until the owner was let through, and the other agent refused, on
        # both workers (a decision id starts with its VM's seed).
        allowed_on, refused_on, tries = set(), set(), 0
        while (len(allowed_on) < WORKERS or len(refused_on) < WORKERS or tries < 3) and tries < 40:
            tries += 1
            mine = self.rpc("GetTask", {"id": task_id}, "reader")
            self.assertEqual(mine.status, 200, mine.body)
            result = mine.json()["result"]
            self.assertEqual(result["id"], task_id, mine.body)
            allowed_on.add(result["metadata"]["decision"][:16])
            theirs = self.rpc("GetTask", {"id": task_id}, "writer")
            self.assertEqual(theirs.status, 200, theirs.body)
            error = theirs.json()["error"]
            self.assertEqual(error["code"], -32001, error)  # A2A's TaskNotFoundError
            self.assertEqual(error["data"]["reason"], "task_not_owned", error)
            refused_on.add(theirs.header("x-toolgate-decision-id")[:16])
        self.assertEqual((len(allowed_on), len(refused_on)), (WORKERS, WORKERS),
                         f"not seen on both workers in {tries} tries")
        refused = self.gw.decision(theirs.header("x-toolgate-decision-id"))
        self.assertEqual(refused["action"], "a2a/GetTask")
        self.assertEqual(refused["a2a"]["task_id"], task_id)
        self.assertEqual(refused["a2a"]["task_binding"], "other")

    def test_the_v03_generation_and_a_stream_bind_too(self):
        sent = self.send_message("message/send")
        task_id = sent.json()["result"]["id"]
        self.assertEqual(self.rpc("tasks/get", {"id": task_id}, "reader").json()["result"]["id"], task_id)
        self.assertEqual(self.rpc("tasks/cancel", {"id": task_id}, "writer").json()["error"]["code"], -32001)
        streamed = self.send_message("SendStreamingMessage")
        first = next(line for line in streamed.body.decode().splitlines() if line.startswith("data: "))
        task_id = json.loads(first[len("data: "):])["result"]["task"]["id"]
        self.assertIn("result", self.rpc("GetTask", {"id": task_id}, "reader").json())
        self.assertEqual(self.rpc("GetTask", {"id": task_id}, "writer").json()["error"]["code"], -32001)

    def test_unknown_tasks_and_case_variants_are_refused(self):
        unknown = self.rpc("GetTask", {"id": "never-created"}, "reader")
        self.assertEqual(unknown.json()["error"]["code"], -32001, unknown.body)
        variant = self.rpc("sendmessage", {"message": {"role": "user", "parts": []}}, "reader")
        self.assertEqual(variant.status, 404, variant.body)
        self.assertEqual(variant.json()["error"]["code"], -32601, variant.body)


if __name__ == "__main__":
    unittest.main()
