"""End-to-end: the official A2A Python SDK (a2a-sdk) as agents through a real Envoy with toolgate over mTLS, in front of an A2A agent built with the same SDK; asserts what the SDK surfaced and what toolgate logged."""
import json
import os
import subprocess
import tempfile
import unittest
import urllib.request
import uuid

from harness import CERTS, ROOT, Gateway, ecds_lib, wait_until

A2A = os.path.join(ROOT, "tests/a2a")
# Where scripts/lib/common.sh's ensure_a2a installs the pinned SDK.
A2A_PYTHON = os.environ.get("TOOLGATE_A2A_PYTHON", os.path.join(ROOT, ".work/venv-a2a/bin/python"))
# The policy CLI (scripts/test builds it with the tests).
CLI = os.environ.get("TOOLGATE_CLI", os.path.join(ROOT, "target/debug/toolgate"))
# The agent's policies: configuration, like a user's own.
POLICIES = os.path.join(A2A, "policies")
PATH = "/a2a"
SERVER = "planner"
READER = "spiffe://toolgate.test/agent/reader"
WRITER = "spiffe://toolgate.test/agent/writer"
WORKERS = 2
# What the SDK (a2a-sdk 1.x) raises, per refusal: a JSON-RPC error whose code it does not
# map to one of A2A's own errors (toolgate's -32010) is an A2AClientError with the code and
# message in its text and `data` dropped; task_not_owned is A2A's TaskNotFoundError
# (-32001), which the SDK raises as such, so another agent's task looks like no task at all.
SDK_ERROR = "a2a.client.errors.A2AClientError"
TASK_NOT_FOUND = "a2a.utils.errors.TaskNotFoundError"
NOT_OWNED_TEXT = "toolgate: task not found: no task of yours has this id"
# On HTTP+JSON refusals are A2A's error format (a google.rpc.Status with an ErrorInfo): the
# SDK's REST transport raises TaskNotFoundError for task_not_owned, with the ErrorInfo's
# metadata (toolgate's reason and decision id) as its `data`.


def setUpModule():
    if not os.path.exists(A2A_PYTHON):
        raise AssertionError(f"missing {A2A_PYTHON}: install the pinned A2A SDK with "
                             "`source scripts/lib/common.sh; ensure_a2a` (scripts/test does)")


def config(**extra):
    a2a = {"jsonrpc_paths": [PATH], "http_json_prefixes": [PATH + "/rest"],
           "agent_card_paths": [PATH + "/.well-known/agent-card.json"]}
    plugin = {"trust_domains": ["toolgate.test"], "server": SERVER, "a2a": a2a, **extra}
    plugin["policies"] = ecds_lib.read_policies(POLICIES, plugin)
    return plugin


def agent_gateway(plugin_config, workers=WORKERS):
    """A gateway in front of tests/a2a/server.py, whose card names the gateway's URL."""
    return Gateway(plugin_config, workers=workers, upstream=[
        A2A_PYTHON, os.path.join(A2A, "server.py"), "--port", "{upstream_port}",
        "--public-url", "https://localhost:{gateway_port}" + PATH, "--name", SERVER])


def send(text, **options):
    return {"op": "send", "text": text, **options}


class A2aSdk(unittest.TestCase):
    gw = None

    @classmethod
    def setUpClass(cls):
        cls.gw = agent_gateway(config())
        cls.addClassCleanup(cls.gw.stop)
        cls.gw.start()

    def drive(self, cert, steps, version="1.0", binding="JSONRPC", fresh=False, timeout=120):
        """Runs the SDK driver as agent CERT and returns its report; the card is always step 0."""
        argv = [A2A_PYTHON, os.path.join(A2A, "client.py"), "--url", f"https://localhost:{self.gw.port}{PATH}",
                "--certs", CERTS, "--cert", cert, "--protocol-version", version, "--binding", binding,
                "--request-id-prefix", f"{cert}-{uuid.uuid4().hex[:10]}",
                "--steps", json.dumps([{"op": "card"}] + steps)] + (["--fresh-connections"] if fresh else [])
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0 or not done.stdout.strip():
            raise AssertionError(f"the A2A driver failed ({done.returncode}):\n{done.stdout[-3000:]}\n"
                                 f"{done.stderr[-3000:]}\nagent log:\n{self.gw.upstream_log_text()[-2000:]}")
        report = json.loads(done.stdout)
        self.assertIsNone(report["fatal"], self.show(report))
        self.assertTrue(report["steps"][0]["ok"], self.show(report))
        return report

    def show(self, report):
        return json.dumps({k: report.get(k) for k in ("protocol_version", "binding", "cert", "fatal", "steps", "http")},
                          default=str)[:6000]

    def record(self, step):
        """The decision record of one driver step, found by the x-request-id it sent."""
        return self.gw.decision_for_request(step["request_id"])

    def allowed_record(self, step):
        """The decision record of an allowed step, whose request reached the agent."""
        record = self.record(step)
        self.assertEqual((record["decision"], record["upstream_status"]), ("allow", 200), record)
        return record

    def exchange(self, report, step):
        """The one HTTP exchange a (non-card) step made."""
        exchanges = [e for e in report["http"] if e["request_id"] == step["request_id"]]
        self.assertEqual(len(exchanges), 1, self.show(report))
        return exchanges[0]

    def assert_completed(self, report, step, artifacts):
        self.assertTrue(step["ok"], self.show(report))
        self.assertEqual(step["result"]["final_state"], "TASK_STATE_COMPLETED", step)
        task = [e for e in step["result"]["events"] if e["kind"] == "task"][-1]
        self.assertEqual(task["artifacts"], artifacts, step)

    def assert_sdk_refused(self, report, step, error_class, text, reason, status=200):
        """The SDK raised ERROR_CLASS with TEXT for this one call, the exchange was answered
        STATUS with toolgate's decision id, and nothing reached the agent; returns the record."""
        self.assertFalse(step["ok"], f"the refused call succeeded: {self.show(report)}")
        error = step["error"]
        self.assertEqual((error["class"], error["text"]), (error_class, text), error)
        exchange = self.exchange(report, step)
        self.assertEqual(exchange["status"], status, exchange)
        self.assertTrue(exchange["decision_id"], exchange)
        record = self.gw.decision(exchange["decision_id"])
        self.assertEqual((record["decision"], record["reason"]), ("deny", reason), record)
        self.assertEqual(record["request_id"], step["request_id"])
        self.assertIsNone(record["upstream_status"], "a refused call reached the agent")
        return record

    def assert_a2a(self, record, action, method, binding="jsonrpc", version="1.0", task=None, standing=None,
                   bound=()):
        """The record's action and its `a2a` block: the method as sent, binding, A2A-Version
        header, the task the call named and where it stood, and the tasks its answer bound."""
        self.assertEqual(record["action"], action, record)
        a2a = record.get("a2a") or {}
        self.assertEqual((a2a.get("method"), a2a.get("binding"), a2a.get("version")), (method, binding, version), record)
        self.assertEqual((a2a.get("task_id"), a2a.get("task_binding")), (task, standing), record)
        self.assertEqual(a2a.get("tasks_bound"), list(bound), record)

    # -- the card ---------------------------------------------------------------
    def test_the_agent_card_through_the_gateway(self):
        report = self.drive("reader", [])
        card = report["steps"][0]["result"]
        self.assertEqual(card["name"], SERVER)
        self.assertEqual(card["skills"], ["echo", "count", "wait"])
        self.assertTrue(card["streaming"])
        self.assertTrue(all(i["url"].startswith(f"https://localhost:{self.gw.port}{PATH}") for i in card["interfaces"]),
                        card["interfaces"])
        fetched = report["http"][0]
        self.assertEqual((fetched["method"], fetched["path"], fetched["status"]),
                         ("GET", f"{PATH}/.well-known/agent-card.json", 200), fetched)
        record = self.allowed_record(report["steps"][0])
        self.assertEqual((record["principal"], record["policies"]), (READER, ["agents-may-discover-a2a-agents"]), record)
        self.assert_a2a(record, "a2a/GetAgentCard", f"GET {PATH}/.well-known/agent-card.json", binding="agent_card",
                        version=None)

    def test_schema_from_a2a_reads_the_sdk_agents_card(self):
        """`toolgate schema-from-a2a` on the card the SDK agent serves through the gateway:
        the agent as a Server tagged a2a, its skills as Skill entities."""
        if not os.path.exists(CLI):
            raise AssertionError(f"{CLI} is missing: build it with `cargo build -p toolgate-cli`")
        card = self.gw.request("GET", f"{PATH}/.well-known/agent-card.json")
        self.assertEqual(card.status, 200, card.body[:300])
        with tempfile.TemporaryDirectory(prefix="toolgate-a2a-") as scratch:
            path = os.path.join(scratch, f"{SERVER}.json")
            with open(path, "wb") as f:
                f.write(card.body)
            done = subprocess.run([CLI, "schema-from-a2a", "--json", path], capture_output=True, text=True, timeout=60)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        entities = {(e["uid"]["type"], e["uid"]["id"]): e for e in json.loads(done.stdout)["entities"]}
        self.assertIn(("Toolgate::Server", SERVER), entities, entities)
        self.assertIn("a2a", entities[("Toolgate::Server", SERVER)]["attrs"].get("tags", []), entities)
        skills = {key[1]: e for key, e in entities.items() if key[0] == "Toolgate::Skill"}
        self.assertEqual(sorted(skills), [f"{SERVER}/count", f"{SERVER}/echo", f"{SERVER}/wait"], entities)
        self.assertEqual(skills[f"{SERVER}/count"]["attrs"], {"name": "Count", "tags": ["test", "streaming"]})
        self.assertEqual(skills[f"{SERVER}/count"]["parents"], [{"type": "Toolgate::Server", "id": SERVER}])

    # -- SendMessage -------------------------------------------------------------
    def test_send_message_allowed_and_refused_and_the_client_goes_on(self):
        report = self.drive("writer", [send("hello"), send("here is the file", file="secret numbers"),
                                       send("hello again")])
        allowed, refused, again = report["steps"][1:]
        self.assert_completed(report, allowed, ["echo: hello"])
        record = self.assert_sdk_refused(report, refused, SDK_ERROR,
                                         "JSON-RPC Error -32010: toolgate: the call is forbidden by policy",
                                         "forbidden_by_policy")
        self.assertEqual((record["principal"], record["policies"]), (WRITER, ["planner-takes-no-files"]), record)
        self.assert_a2a(record, "a2a/SendMessage", "SendMessage")
        self.assertEqual(record["cedar"]["context"]["a2a"]["message"]["file_parts"], 1, record)
        # The same SDK client, on the same connection, carries on.
        self.assert_completed(report, again, ["echo: hello again"])
        self.assertEqual(len({e["request_id"] for e in report["http"]}), 4)
        for step in (allowed, again):
            record = self.allowed_record(step)
            self.assertEqual(record["policies"], ["agents-may-message-the-planner"], record)
            self.assert_a2a(record, "a2a/SendMessage", "SendMessage", bound=[step["result"]["task_id"]])

    def test_a_streamed_message_passes_with_its_events(self):
        report = self.drive("reader", [send("count 4", stream=True)])
        step = report["steps"][1]
        self.assertTrue(step["ok"], self.show(report))
        events = step["result"]["events"]
        task_id = step["result"]["task_id"]
        self.assertEqual([e["kind"] for e in events],
                         ["task", "status_update"] + ["artifact_update"] * 4 + ["status_update"], events)
        self.assertEqual([e["text"] for e in events if e["kind"] == "artifact_update"], ["1", "2", "3", "4"])
        self.assertEqual([e["state"] for e in events if "state" in e],
                         ["TASK_STATE_SUBMITTED", "TASK_STATE_WORKING", "TASK_STATE_COMPLETED"])
        self.assertTrue(all(e.get("task_id", e.get("id")) == task_id for e in events), events)
        exchange = self.exchange(report, step)
        self.assertTrue(exchange["content_type"].startswith("text/event-stream"), exchange)
        self.assert_a2a(self.allowed_record(step), "a2a/SendStreamingMessage", "SendStreamingMessage", bound=[task_id])

    # -- tasks belong to the agent that created them ----------------------------------
    def test_another_agent_cannot_get_or_cancel_a_task_on_either_worker_and_the_owner_can(self):
        owner = self.drive("reader", [send("wait 90", return_immediately=True)])
        created = owner["steps"][1]
        self.assertTrue(created["ok"], self.show(owner))
        task = created["result"]["task_id"]
        created_on = self.allowed_record(created)["decision_id"][:16]

        # Without the gateway the agent answers anyone (the SDK's server scopes tasks by its
        # own user, and behind a gateway every caller is the same unauthenticated one).
        self.assertEqual(self.direct_get_task(task)["result"]["id"], task)

        def refused(report, step):
            record = self.assert_sdk_refused(report, step, TASK_NOT_FOUND, NOT_OWNED_TEXT, "task_not_owned")
            self.assertEqual(record["principal"], WRITER)
            method = {"get": "GetTask", "cancel": "CancelTask"}[step["op"]]
            self.assert_a2a(record, f"a2a/{method}", method, task=task, standing="other")
            return record
        refused_on = self.on_every_worker("writer", [{"op": "get", "task": task}, {"op": "cancel", "task": task}], refused)

        # The owner's task goes on, untouched by the refused cancels, and the owner reads it on both workers.
        def owned(report, step):
            self.assertTrue(step["ok"], self.show(report))
            self.assertEqual(step["result"]["state"], "TASK_STATE_WORKING", step)
            record = self.allowed_record(step)
            self.assert_a2a(record, "a2a/GetTask", "GetTask", task=task, standing="owner")
            return record
        owned_on = self.on_every_worker("reader", [{"op": "get", "task": task}], owned)
        cancelled = self.drive("reader", [{"op": "cancel", "task": task}])["steps"][1]
        self.assertEqual(cancelled.get("result", {}).get("state"), "TASK_STATE_CANCELED", cancelled)
        self.assert_a2a(self.allowed_record(cancelled), "a2a/CancelTask", "CancelTask", task=task, standing="owner")
        workers = self.gw.worker_connections()
        self.assertTrue(len(workers) == WORKERS and all(workers.values()), workers)
        print(f"\n  task created on VM {created_on}; writer refused on {sorted(refused_on)}; "
              f"owner served on {sorted(owned_on)}; connections per worker {workers}")

    def test_another_agent_cannot_subscribe_to_continue_or_refer_to_a_task(self):
        """Every call that names another agent's task is refused before it reaches the agent:
        SubscribeToTask, a message continuing the task (its taskId), a message referring to
        it (referenceTaskIds); the owner may do all three."""
        owner = self.drive("reader", [send("wait 60", return_immediately=True)])
        task = owner["steps"][1]["result"]["task_id"]
        other = self.drive("writer", [{"op": "subscribe", "task": task}, send("take over", task=task),
                                      send("see that task", refers_to=[task])])
        # The record's a2a block names the task each call was refused for, and where it stood,
        # a task only referred to (referenceTaskIds) too; its owner is in the record's errors.
        for step, action, method in zip(other["steps"][1:],
                                        ("a2a/SubscribeToTask", "a2a/SendMessage", "a2a/SendMessage"),
                                        ("SubscribeToTask", "SendMessage", "SendMessage")):
            record = self.assert_sdk_refused(other, step, TASK_NOT_FOUND, NOT_OWNED_TEXT, "task_not_owned")
            self.assertEqual(record["principal"], WRITER)
            self.assert_a2a(record, action, method, task=task, standing="other")
            self.assertTrue(any(task in error and READER in error for error in record["errors"]), record)
        referred = self.drive("reader", [send("see that task", refers_to=[task]), {"op": "cancel", "task": task}])
        self.assert_completed(referred, referred["steps"][1], ["echo: see that task"])
        self.assertEqual(referred["steps"][2].get("result", {}).get("state"), "TASK_STATE_CANCELED", referred["steps"][2])

    def on_every_worker(self, cert, steps, check):
        """Runs STEPS (three times over) as agent CERT, each on a fresh TLS connection, which the
        kernel spreads over Envoy's workers, until CHECK(report, step), which returns the step's
        decision record, has seen records from every worker's VM (decision ids start with the
        VM's seed); a few rounds at most. Returns the VMs."""
        seen, rounds = set(), 0
        while len(seen) < WORKERS and rounds < 5:
            rounds += 1
            report = self.drive(cert, steps * 3, fresh=True)
            for step in report["steps"][1:]:
                seen.add(check(report, step)["decision_id"][:16])
        self.assertEqual(len(seen), WORKERS, f"{cert}: decided on {seen} only, in {rounds} rounds")
        return seen

    def direct_get_task(self, task):
        """GetTask straight at the agent, past the gateway (plain HTTP on its port)."""
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": task}}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.gw.upstream_port}{PATH}", data=body, method="POST",
                                         headers={"content-type": "application/json", "a2a-version": "1.0"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read())

    # -- A2A 0.3 -----------------------------------------------------------------------
    def test_v0_3_method_names_are_decided_as_the_same_actions(self):
        """The SDK's 0.3 transport (message/send, message/stream, tasks/get, tasks/cancel):
        decided as the 1.0 actions, the task bound to its creator all the same."""
        steps = [send("hello"), send("count 2", stream=True), send("wait 60", return_immediately=True),
                 {"op": "get", "task": "$3"}]
        owner = self.drive("reader", steps, version="0.3")
        sent, streamed, created, got = owner["steps"][1:]
        self.assert_completed(owner, sent, ["echo: hello"])
        self.assertTrue(streamed["ok"], self.show(owner))
        self.assertEqual(streamed["result"]["final_state"], "TASK_STATE_COMPLETED")
        self.assertEqual([e["text"] for e in streamed["result"]["events"] if e["kind"] == "artifact_update"], ["1", "2"])
        task = created["result"]["task_id"]
        self.assertEqual(got.get("result", {}).get("state"), "TASK_STATE_WORKING", got)
        self.assertTrue(all(e["sent_a2a_version"] == "0.3" for e in owner["http"][1:]), owner["http"])
        for step, method, action, named, bound in (
                (sent, "message/send", "a2a/SendMessage", None, [sent["result"]["task_id"]]),
                (streamed, "message/stream", "a2a/SendStreamingMessage", None, [streamed["result"]["task_id"]]),
                (created, "message/send", "a2a/SendMessage", None, [task]),
                (got, "tasks/get", "a2a/GetTask", task, [])):
            self.assert_a2a(self.allowed_record(step), action, method, version="0.3", task=named,
                            standing="owner" if named else None, bound=bound)

        other = self.drive("writer", [{"op": "get", "task": task}, {"op": "cancel", "task": task},
                                      send("here is the file", file="secret numbers")], version="0.3")
        # The 0.3 transport raises a code it does not map with the message alone.
        record = self.assert_sdk_refused(other, other["steps"][3], SDK_ERROR, "toolgate: the call is forbidden by policy",
                                         "forbidden_by_policy")
        self.assertEqual(record["policies"], ["planner-takes-no-files"], record)
        self.assert_a2a(record, "a2a/SendMessage", "message/send", version="0.3")
        for step, method, action in zip(other["steps"][1:3], ("tasks/get", "tasks/cancel"),
                                        ("a2a/GetTask", "a2a/CancelTask")):
            record = self.assert_sdk_refused(other, step, TASK_NOT_FOUND, NOT_OWNED_TEXT, "task_not_owned")
            self.assert_a2a(record, action, method, version="0.3", task=task, standing="other")
        cancelled = self.drive("reader", [{"op": "cancel", "task": task}], version="0.3")["steps"][1]
        self.assertEqual(cancelled.get("result", {}).get("state"), "TASK_STATE_CANCELED", cancelled)

    # -- the HTTP+JSON binding ------------------------------------------------------------
    def test_http_json_binding_keeps_the_task_to_its_creator_too(self):
        """The same agent serves HTTP+JSON (/a2a/rest/...): another agent's GetTask and
        CancelTask there do not reach it either. Refusals are in A2A's HTTP+JSON error format:
        the SDK raises TaskNotFoundError for another agent's task, and a policy's no (A2A has
        no error for it) is its HTTP 403 error, whose answer names toolgate's reason."""
        owner = self.drive("reader", [send("wait 60", return_immediately=True), {"op": "get", "task": "$1"}],
                           binding="HTTP+JSON")
        created, got = owner["steps"][1:]
        self.assertTrue(created["ok"] and got["ok"], self.show(owner))
        task = created["result"]["task_id"]
        self.assertEqual(got["result"]["state"], "TASK_STATE_WORKING")
        self.assert_a2a(self.allowed_record(created), "a2a/SendMessage", "POST /message:send", binding="http_json",
                        bound=[task])
        other = self.drive("writer", [{"op": "get", "task": task}, {"op": "cancel", "task": task},
                                      send("here is the file", file="secret numbers")], binding="HTTP+JSON")
        # A policy's no: A2A has no error for it, so the SDK raises its HTTP error; the answer
        # it keeps (the error's cause) is a google.rpc.Status naming toolgate's reason.
        refused = other["steps"][3]
        self.assertFalse(refused["ok"], self.show(other))
        self.assertEqual(refused["error"]["class"], SDK_ERROR, refused)
        self.assertTrue(refused["error"]["text"].startswith("HTTP Error 403: "), refused)
        decision_id = self.exchange(other, refused)["decision_id"]
        status = refused["error"]["cause_body"]["error"]
        self.assertEqual((status["code"], status["status"], status["message"]),
                         (403, "PERMISSION_DENIED", "toolgate: the call is forbidden by policy"), refused)
        self.assertEqual(status["details"], [{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "FORBIDDEN_BY_POLICY",
            "domain": "toolgate.dev", "metadata": {"decision_id": decision_id, "reason": "forbidden_by_policy",
                                                   "policies": "planner-takes-no-files"}}], refused)
        record = self.gw.decision(decision_id)
        self.assertEqual((record["reason"], record["policies"]), ("forbidden_by_policy", ["planner-takes-no-files"]),
                         record)
        self.assert_a2a(record, "a2a/SendMessage", "POST /message:send", binding="http_json")
        for step, action, method in zip(other["steps"][1:3], ("a2a/GetTask", "a2a/CancelTask"),
                                        (f"GET /tasks/{task}", f"POST /tasks/{task}:cancel")):
            record = self.assert_sdk_refused(other, step, TASK_NOT_FOUND, NOT_OWNED_TEXT, "task_not_owned",
                                             status=404)
            # The ErrorInfo's metadata reaches the SDK user as the error's data.
            self.assertEqual(step["error"]["data"], {"decision_id": record["decision_id"], "reason": "task_not_owned",
                                                     "policies": ""}, step)
            self.assert_a2a(record, action, method, binding="http_json", task=task, standing="other")
        still = self.drive("reader", [{"op": "get", "task": task}, {"op": "cancel", "task": task}], binding="HTTP+JSON")
        self.assertEqual([s.get("result", {}).get("state") for s in still["steps"][1:]],
                         ["TASK_STATE_WORKING", "TASK_STATE_CANCELED"], self.show(still))
