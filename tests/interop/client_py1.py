"""Interop driver for the Python SDK mcp 1.x: connects over mTLS (streamablehttp_client, 2025-11-25), runs the steps, prints a JSON report of what the SDK surfaced."""
import importlib.metadata
import json
import sys

import anyio
import httpx

from driver_common import HttpLog, Report, parse_args, run_steps, ssl_context
from mcp import ClientSession, types
from mcp.client.streamable_http import streamablehttp_client


async def main():
    args = parse_args(__doc__)
    steps = json.loads(args.steps)
    report = Report("python mcp", importlib.metadata.version("mcp"), "legacy")
    log = HttpLog()

    async def elicitation(context, params):
        report.data["server_requests"].append({"method": "elicitation/create", "message": params.message})
        return types.ElicitResult(action="accept", content={"name": "interop-agent"})

    async def sampling(context, params):
        report.data["server_requests"].append({"method": "sampling/createMessage"})
        return types.CreateMessageResult(role="assistant", model="interop",
                                         content=types.TextContent(type="text", text="sampled"))

    def http_client(headers=None, timeout=None, auth=None):
        # What streamablehttp_client's default factory makes, plus the agent's certificate.
        return httpx.AsyncClient(headers=headers, timeout=timeout, auth=auth,
                                 verify=ssl_context(args.certs, args.cert),
                                 event_hooks={"response": [log.on_response]})

    try:
        async with streamablehttp_client(args.url, httpx_client_factory=http_client) as (read, write, _):
            async with ClientSession(read, write, elicitation_callback=elicitation,
                                     sampling_callback=sampling) as session:
                initialized = await session.initialize()
                report.data["protocol_version"] = initialized.protocolVersion
                report.data["server_info"] = initialized.serverInfo.model_dump(mode="json", exclude_none=True)
                await run_steps(
                    report, steps, session.list_tools,
                    lambda name, arguments, progress: session.call_tool(name, arguments, progress_callback=progress))
        report.data["closed"] = True
    except BaseException as error:  # a connect or session failure: what the agent would have seen
        if not isinstance(error, Exception) and not isinstance(error, BaseExceptionGroup):
            raise
        report.fatal(error)
    report.print(log)


if __name__ == "__main__":
    anyio.run(main)
    sys.exit(0)
