"""An A2A agent on the official Python SDK (a2a-sdk 1.x) for tests/e2e/test_a2a_interop.py and the demo: JSON-RPC at PREFIX, HTTP+JSON at PREFIX/rest, its card at PREFIX/.well-known/agent-card.json.

Both bindings answer A2A 1.0 and 0.3 (the SDK's compatibility mode), so one server serves
`SendMessage` and `message/send` alike. The card names the agent's public URL (the
gateway's, --public-url): the SDK's client sends its calls wherever the card says.

Every message starts a task; its first word picks what the agent does:
  `count N`  streams N artifacts (`1` ... `N`), then completes;
  `wait S`   stays working for up to S seconds (a task to get or cancel meanwhile);
  anything else completes at once with the artifact `echo: TEXT`.

    python tests/a2a/server.py --port 8002 --public-url https://localhost:8443/a2a
"""
import argparse
import asyncio
import urllib.parse

import uvicorn
from starlette.applications import Starlette

from a2a.helpers.proto_helpers import new_task, new_text_message, new_text_part
from a2a.server.agent_execution import AgentExecutor
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes, create_rest_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types.a2a_pb2 import AgentCapabilities, AgentCard, AgentInterface, AgentSkill, TaskState
from a2a.utils.constants import PROTOCOL_VERSION_0_3, PROTOCOL_VERSION_1_0, TransportProtocol

# The longest a `wait` task works, whatever it asks: a forgotten task ends by itself.
MAX_WAIT_SECONDS = 120


class Executor(AgentExecutor):
    """Turns each message into a task and works on it as its first word says."""

    async def execute(self, context, event_queue):
        text = context.get_user_input().strip()
        task = context.current_task or new_task(context.task_id, context.context_id,
                                                TaskState.TASK_STATE_SUBMITTED, history=[context.message])
        await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        await updater.start_work()
        command, _, argument = text.partition(" ")
        if command == "count":
            count = max(1, min(int(argument or 3), 50))
            for n in range(1, count + 1):
                await updater.add_artifact([new_text_part(str(n))], name=f"count-{n}")
                await asyncio.sleep(0.05)
            reply = f"counted to {count}"
        elif command == "wait":
            seconds = min(float(argument or 30), MAX_WAIT_SECONDS)
            await asyncio.sleep(seconds)  # a CancelTask cancels this coroutine, then calls cancel()
            reply = f"waited {seconds:g} s"
        else:
            await updater.add_artifact([new_text_part(f"echo: {text}")], name="echo")
            reply = "done"
        await updater.complete(new_text_message(reply, context_id=task.context_id, task_id=task.id))

    async def cancel(self, context, event_queue):
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        await updater.cancel(new_text_message("canceled", context_id=context.context_id, task_id=context.task_id))


def agent_card(name, public_url):
    """The card: JSON-RPC and HTTP+JSON, each in A2A 1.0 and 0.3, at the public URL."""
    rest = public_url.rstrip("/") + "/rest"
    interfaces = [AgentInterface(url=url, protocol_binding=binding, protocol_version=version)
                  for version in (PROTOCOL_VERSION_1_0, PROTOCOL_VERSION_0_3)
                  for binding, url in ((TransportProtocol.JSONRPC, public_url), (TransportProtocol.HTTP_JSON, rest))]
    return AgentCard(
        name=name,
        description="A test agent: echoes, counts (streamed) and waits (cancellable).",
        version="1.0.0",
        supported_interfaces=interfaces,
        capabilities=AgentCapabilities(streaming=True),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[
            AgentSkill(id="echo", name="Echo", description="Answers with the text it was sent.",
                       tags=["test"], examples=["hello"]),
            AgentSkill(id="count", name="Count", description="Streams the numbers 1 to N as artifacts.",
                       tags=["test", "streaming"], examples=["count 3"]),
            AgentSkill(id="wait", name="Wait", description="Works for S seconds unless cancelled.",
                       tags=["test", "long-running"], examples=["wait 30"]),
        ],
    )


def build_app(name, public_url):
    prefix = urllib.parse.urlsplit(public_url).path.rstrip("/")
    card = agent_card(name, public_url)
    handler = DefaultRequestHandler(agent_executor=Executor(), task_store=InMemoryTaskStore(), agent_card=card)
    routes = (create_agent_card_routes(card, card_url=f"{prefix}/.well-known/agent-card.json")
              + create_jsonrpc_routes(handler, prefix or "/", enable_v0_3_compat=True)
              + create_rest_routes(handler, enable_v0_3_compat=True, path_prefix=f"{prefix}/rest"))
    return Starlette(routes=routes)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--public-url", required=True,
                        help="the URL agents reach this agent's JSON-RPC endpoint at (the gateway's), "
                             "e.g. https://localhost:8443/a2a; its path is where this server serves it")
    parser.add_argument("--name", default="planner", help="the agent's name on its card")
    args = parser.parse_args()
    uvicorn.run(build_app(args.name, args.public_url), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
