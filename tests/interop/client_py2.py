"""Interop driver for the Python SDK mcp 2.x: connects over mTLS (auto = 2026-07-28 first, or legacy), runs the steps, prints a JSON report of what the SDK surfaced."""
import importlib.metadata
import json
import sys

import anyio
import httpx2
import mcp_types

from driver_common import HttpLog, Report, parse_args, run_steps, ssl_context
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

# The SDK's default (1 MiB) fails any larger SSE event with "SSE stream failed"; a user
# whose tools return multi-MiB results over SSE raises it like this.
MAX_SSE_EVENT = 64 * 1024 * 1024


async def main():
    args = parse_args(__doc__)
    steps = json.loads(args.steps)
    report = Report("python mcp", importlib.metadata.version("mcp"), args.mode)
    log = HttpLog()

    async def elicitation(context, params):
        report.data["server_requests"].append({"method": "elicitation/create", "message": params.message})
        return mcp_types.ElicitResult(action="accept", content={"name": "interop-agent"})

    async def sampling(context, params):
        report.data["server_requests"].append({"method": "sampling/createMessage"})
        return mcp_types.CreateMessageResult(role="assistant", model="interop",
                                             content=mcp_types.TextContent(type="text", text="sampled"))

    # The SDK's own timeouts (30 s, 300 s reads), plus the agent's certificate.
    http = httpx2.AsyncClient(verify=ssl_context(args.certs, args.cert),
                              timeout=httpx2.Timeout(30.0, read=300.0),
                              event_hooks={"response": [log.on_response]})
    try:
        async with http:
            transport = streamable_http_client(args.url, http_client=http, max_sse_event_size=MAX_SSE_EVENT)
            async with Client(transport, mode=args.mode, elicitation_callback=elicitation,
                              sampling_callback=sampling) as client:
                report.data["protocol_version"] = client.protocol_version
                info = client.server_info
                report.data["server_info"] = info.model_dump(mode="json", exclude_none=True) if info else None
                await run_steps(
                    report, steps, client.list_tools,
                    lambda name, arguments, progress: client.call_tool(name, arguments, progress_callback=progress))
            report.data["closed"] = True
    except BaseException as error:  # a connect or session failure: what the agent would have seen
        if not isinstance(error, Exception) and not isinstance(error, BaseExceptionGroup):
            raise
        report.fatal(error)
    report.print(log)


if __name__ == "__main__":
    anyio.run(main)
    sys.exit(0)
