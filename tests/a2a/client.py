"""A2A driver on the official Python SDK (a2a-sdk 1.x): resolves an agent's card and runs steps with the SDK's client over mTLS, printing a JSON report of what the SDK surfaced.

Steps (a JSON list), each one SDK call:
  {"op": "card"}                                   A2ACardResolver: the card, as the SDK read it
  {"op": "send", "text": T}                        SendMessage (message/send in 0.3)
  {"op": "send", "text": T, "stream": true}        SendStreamingMessage (message/stream)
  {"op": "send", "text": T, "return_immediately": true}   the task as soon as it exists
  {"op": "send", "text": T, "file": CONTENT}       with a file part (inline bytes) beside the text
  {"op": "send", "text": T, "task": ID}            continuing task ID ("refers_to": [ID...]: referring to tasks)
  {"op": "get", "task": ID}  {"op": "cancel", "task": ID}  {"op": "subscribe", "task": ID}  {"op": "list"}
A task id "$N" is the task step N answered. A step's exception is its outcome; the next step
still runs, on the same connection unless --fresh-connections (each step on a new one, which
the kernel may hand to another Envoy worker). Every request of step N carries the header
x-request-id: PREFIX-N, so the gateway's decision records can be found from the report.

    python tests/a2a/client.py --url https://localhost:8443/a2a --certs .work/certs --cert reader \\
        --steps '[{"op": "card"}, {"op": "send", "text": "hello"}]'
"""
import argparse
import asyncio
import importlib.metadata
import json
import os
import sys
import time
import traceback
import uuid

import httpx
from google.protobuf import json_format

# The interop drivers' mTLS context and HTTP log (standard library only, so any virtualenv can import them).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))
import driver_common  # noqa: E402

from a2a.client import A2ACardResolver, ClientCallContext, ClientConfig, ClientFactory
from a2a.helpers.proto_helpers import new_text_message
from a2a.types.a2a_pb2 import (AgentCard, CancelTaskRequest, GetTaskRequest, ListTasksRequest, Part, Role,
                               SendMessageRequest, SubscribeToTaskRequest, TaskState)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the agent's base URL; its card is at URL/.well-known/agent-card.json")
    parser.add_argument("--certs", required=True, help="the folder with ca.crt and NAME.crt / NAME.key")
    parser.add_argument("--cert", default="reader", help="the client certificate's NAME (its SPIFFE identity)")
    parser.add_argument("--protocol-version", default="1.0", choices=["1.0", "0.3"],
                        help="the card interface's A2A version the client uses (0.3: message/send, tasks/get, ...)")
    parser.add_argument("--binding", default="JSONRPC", choices=["JSONRPC", "HTTP+JSON"])
    parser.add_argument("--fresh-connections", action="store_true", help="a new TLS connection for each step")
    parser.add_argument("--request-id-prefix", default="", help="x-request-id is PREFIX-STEP (default: random)")
    parser.add_argument("--steps", required=True, help="a JSON list of steps (see above)")
    return parser.parse_args()


def error_report(error):
    """An exception as the SDK raised it: its class, text, the message, data and HTTP
    status the SDK's A2A errors carry, and the body of an HTTP error it did not map."""
    report = {"class": f"{type(error).__module__}.{type(error).__qualname__}", "text": str(error)[:2000]}
    for field in ("message", "data", "status_code"):
        value = getattr(error, field, None)
        if value is not None:
            report[field] = value
    # An HTTP error the SDK did not map keeps the answer in its cause: the body is what a
    # user can still read there.
    response = getattr(error.__cause__, "response", None)
    if response is not None:
        try:
            report["cause_body"] = response.json()
        except Exception:  # an unread stream or a body that is not JSON: nothing to show
            pass
    return report


def task_report(task):
    return {
        "id": task.id,
        "context_id": task.context_id,
        "state": TaskState.Name(task.status.state),
        "artifacts": [" ".join(part.text for part in artifact.parts) for artifact in task.artifacts],
        "status_message": " ".join(part.text for part in task.status.message.parts),
    }


def event_report(event):
    """One StreamResponse: which kind it is, and its task, state or artifact text."""
    kind = event.WhichOneof("payload")
    report = {"kind": kind}
    if kind == "task":
        report.update(task_report(event.task))
    elif kind == "message":
        report["text"] = " ".join(part.text for part in event.message.parts)
    elif kind == "status_update":
        report.update(task_id=event.status_update.task_id, state=TaskState.Name(event.status_update.status.state))
    elif kind == "artifact_update":
        report.update(task_id=event.artifact_update.task_id,
                      text=" ".join(part.text for part in event.artifact_update.artifact.parts))
    return report


class HttpLog(driver_common.HttpLog):
    """Every HTTP exchange the SDK made, with the A2A version it sent and toolgate's decision id."""

    def describe(self, request, response):
        return {
            "method": request.method,
            "path": request.url.path,
            "status": response.status_code,
            "content_type": response.headers.get("content-type"),
            "request_id": request.headers.get("x-request-id"),
            "sent_a2a_version": request.headers.get("a2a-version"),
            "decision_id": response.headers.get("x-toolgate-decision-id"),
        }


async def run(args):
    steps = json.loads(args.steps)
    prefix = args.request_id_prefix or f"a2a-{uuid.uuid4().hex[:12]}"
    report = {"sdk": "python a2a-sdk", "version": importlib.metadata.version("a2a-sdk"),
              "protocol_version": args.protocol_version, "binding": args.binding, "cert": args.cert,
              "card": None, "steps": [], "fatal": None, "http": []}
    log = HttpLog()
    verify = driver_common.ssl_context(args.certs, args.cert)

    def new_http():
        return httpx.AsyncClient(verify=verify, timeout=httpx.Timeout(30.0, read=120.0),
                                 event_hooks={"response": [log.on_response]})

    shared = None if args.fresh_connections else new_http()
    card = None
    tasks = {}  # step index -> the task id it answered

    async def client_for(http, streaming):
        """An SDK client for the card's interface of the chosen version and binding."""
        chosen = AgentCard()
        chosen.CopyFrom(card)
        del chosen.supported_interfaces[:]
        chosen.supported_interfaces.extend(
            i for i in card.supported_interfaces
            if i.protocol_version == args.protocol_version and i.protocol_binding == args.binding)
        config = ClientConfig(httpx_client=http, streaming=streaming, supported_protocol_bindings=[args.binding])
        return ClientFactory(config).create(chosen)

    def task_id(value):
        return tasks.get(int(value[1:]), value) if isinstance(value, str) and value.startswith("$") else value

    async def step_outcome(index, step, http):
        nonlocal card
        context = ClientCallContext(service_parameters={"x-request-id": f"{prefix}-{index}"})
        op = step["op"]
        if op == "card":
            card = await A2ACardResolver(http, args.url).get_agent_card(
                http_kwargs={"headers": {"x-request-id": f"{prefix}-{index}"}})
            return {"name": card.name, "skills": [s.id for s in card.skills],
                    "streaming": card.capabilities.streaming,
                    "interfaces": [json_format.MessageToDict(i) for i in card.supported_interfaces]}
        if card is None:
            raise RuntimeError("no agent card (its step failed or did not run): the client is made from it")
        client = await client_for(http, streaming=bool(step.get("stream")) or op == "subscribe")
        if op == "send":
            message = new_text_message(step["text"], role=Role.ROLE_USER)
            if "task" in step:  # a message that continues a task
                message.task_id = task_id(step["task"])
            if "refers_to" in step:  # a message that refers to other tasks
                message.reference_task_ids.extend(task_id(t) for t in step["refers_to"])
            if "file" in step:  # a file handed over inline, beside the text
                message.parts.append(Part(raw=step["file"].encode(), filename="attachment.txt", media_type="text/plain"))
            request = SendMessageRequest(message=message)
            request.configuration.return_immediately = bool(step.get("return_immediately"))
            events = [event_report(event) async for event in client.send_message(request, context=context)]
            task = next((e for e in reversed(events) if e["kind"] == "task"), None)
            answered = task["id"] if task else next((e.get("task_id") for e in events if e.get("task_id")), None)
            if answered:
                tasks[index] = answered
            return {"task_id": answered, "events": events,
                    "final_state": next((e["state"] for e in reversed(events) if "state" in e), None)}
        if op == "get":
            return task_report(await client.get_task(GetTaskRequest(id=task_id(step["task"])), context=context))
        if op == "cancel":
            return task_report(await client.cancel_task(CancelTaskRequest(id=task_id(step["task"])), context=context))
        if op == "subscribe":
            request = SubscribeToTaskRequest(id=task_id(step["task"]))
            return {"events": [event_report(e) async for e in client.subscribe(request, context=context)]}
        if op == "list":
            listed = await client.list_tasks(ListTasksRequest(), context=context)
            return {"tasks": [task_report(t) for t in listed.tasks]}
        raise ValueError(f"unknown op {op!r}")

    try:
        for index, step in enumerate(steps):
            started = time.monotonic()
            outcome = {**step, "request_id": f"{prefix}-{index}"}
            http = shared or new_http()
            try:
                outcome.update(ok=True, result=await step_outcome(index, step, http))
            except Exception as error:  # the SDK's exception for this one call is the outcome
                outcome.update(ok=False, error=error_report(error))
            finally:
                if shared is None:
                    await http.aclose()
            outcome["seconds"] = round(time.monotonic() - started, 2)
            report["steps"].append(outcome)
    except BaseException as error:
        report["fatal"] = {**error_report(error), "traceback": traceback.format_exception(error)[-6:]}
    finally:
        if shared is not None:
            await shared.aclose()
    report["card"] = card.name if card is not None else None
    report["http"] = log.exchanges
    json.dump(report, sys.stdout, indent=1, default=str)
    sys.stdout.write("\n")


if __name__ == "__main__":
    asyncio.run(run(parse_args()))
