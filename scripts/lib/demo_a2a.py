#!/usr/bin/env python3
"""The demo's agent-to-agent hand-offs, with the official A2A SDK (a2a-sdk) on both sides: agents hand work to the `planner` agent through the gateway over mTLS; toolgate lets one through and refuses another, and keeps the task to the agent that created it.

    .work/venv-a2a/bin/python scripts/lib/demo_a2a.py PORT CERTS
"""
import asyncio
import os
import ssl
import sys

import httpx

from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.helpers.proto_helpers import new_text_message
from a2a.types.a2a_pb2 import CancelTaskRequest, GetTaskRequest, Role, SendMessageRequest, TaskState
from a2a.utils.errors import A2AError

AGENT = "spiffe://toolgate.test/agent/"


def show(outcome, what):
    print(f"  A2A  {outcome:<17} {what}")


def http_client(certs, name):
    """An httpx client presenting agent NAME's SPIFFE certificate."""
    context = ssl.create_default_context(cafile=os.path.join(certs, "ca.crt"))
    context.load_cert_chain(os.path.join(certs, f"{name}.crt"), os.path.join(certs, f"{name}.key"))
    return httpx.AsyncClient(verify=context)


async def hand_off(url, certs, name, text, wait=False):
    """Agent NAME fetches the planner's card and hands it TEXT; returns the task id, if any."""
    async with http_client(certs, name) as http:
        card = await A2ACardResolver(http, url).get_agent_card()
        client = ClientFactory(ClientConfig(httpx_client=http, streaming=False)).create(card)
        request = SendMessageRequest(message=new_text_message(text, role=Role.ROLE_USER))
        request.configuration.return_immediately = wait
        try:
            async for event in client.send_message(request):
                task = event.task
                artifacts = "; ".join(part.text for artifact in task.artifacts for part in artifact.parts)
                show("handed off", f"{name} -> {card.name}: {text!r}: task {task.id[:8]} "
                                   f"{TaskState.Name(task.status.state)} {artifacts}".rstrip())
                return task.id
        except A2AError as refused:  # the SDK raises toolgate's refusal for this one call
            show(type(refused).__name__, f"{name} -> {card.name}: {text!r}: {refused}")
    return None


async def get_and_cancel(url, certs, name, task_id):
    """Agent NAME asks for a task, then cancels it: refused unless NAME created it."""
    async with http_client(certs, name) as http:
        card = await A2ACardResolver(http, url).get_agent_card()
        client = ClientFactory(ClientConfig(httpx_client=http)).create(card)
        for what, call in (("GetTask", lambda: client.get_task(GetTaskRequest(id=task_id))),
                           ("CancelTask", lambda: client.cancel_task(CancelTaskRequest(id=task_id)))):
            try:
                task = await call()
                show("answered", f"{name} {what} {task_id[:8]}: {TaskState.Name(task.status.state)}")
            except A2AError as refused:  # another agent's task: toolgate answers A2A's TaskNotFoundError
                show(type(refused).__name__, f"{name} {what} {task_id[:8]}: {refused}")


async def main(port, certs):
    url = f"https://localhost:{port}/a2a"
    await hand_off(url, certs, "reader", "summarize the findings of DOCS-12")
    await hand_off(url, certs, "payments", "wire 5000 to the supplier")
    # A long-running task (the planner works on `wait S` for S seconds): only its creator may follow it.
    task_id = await hand_off(url, certs, "reader", "wait 30", wait=True)
    if task_id:
        await get_and_cancel(url, certs, "writer", task_id)
        await get_and_cancel(url, certs, "reader", task_id)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
