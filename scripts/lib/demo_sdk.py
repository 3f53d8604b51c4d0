#!/usr/bin/env python3
"""The demo's agent written with the official Python MCP SDK (mcp 2.x): it connects to the gateway over mTLS and makes calls toolgate allows and refuses, in one session."""
import os
import ssl
import sys

import anyio
import httpx2
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client


def show(outcome, what):
    print(f"  SDK  {outcome:<8} {what}")


async def main(port, certs):
    context = ssl.create_default_context(cafile=os.path.join(certs, "ca.crt"))
    context.load_cert_chain(os.path.join(certs, "reader.crt"), os.path.join(certs, "reader.key"))
    async with httpx2.AsyncClient(verify=context) as http:
        # The sample server speaks the 2025 protocol (initialize and a session).
        transport = streamable_http_client(f"https://localhost:{port}/mcp", http_client=http)
        async with Client(transport, mode="legacy") as client:
            show("connected", f"as spiffe://toolgate.test/agent/reader, protocol {client.protocol_version}")
            tools = await client.list_tools()
            show("listed", f"{len(tools.tools)} tools")
            for name, arguments in (("read_file", {"path": "README.md"}),
                                    ("delete_database", {"database": "prod"}),
                                    ("search_docs", {"query": "after the refusal, same session"})):
                try:
                    result = await client.call_tool(name, arguments)
                    show("result", f"{name}: {result.content[0].text}")
                except MCPError as refused:  # the SDK raises toolgate's refusal for this one call
                    data = refused.error.data or {}
                    show("MCPError", f"{name}: {refused.error.code} {data.get('reason')} "
                                     f"{data.get('policies')} decision {data.get('decision_id')}")


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2])
