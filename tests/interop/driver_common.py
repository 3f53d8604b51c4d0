"""What the Python SDK drivers (client_py1.py, client_py2.py) share: arguments, the mTLS context, and the JSON report of what the SDK surfaced."""
import argparse
import hashlib
import json
import os
import ssl
import sys
import time
import traceback

# Text longer than this is reported as its length, digest and first characters.
TEXT_INLINE = 400


def parse_args(description):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--url", required=True, help="the MCP endpoint, e.g. https://localhost:8443/mcp")
    parser.add_argument("--certs", required=True, help="the folder with ca.crt and NAME.crt / NAME.key")
    parser.add_argument("--cert", default="reader", help="the client certificate's NAME (its SPIFFE identity)")
    parser.add_argument("--mode", default="auto", help="mcp 2.x: auto (2026-07-28 first) or legacy")
    parser.add_argument("--steps", required=True,
                        help='JSON list of steps: {"op": "list"} or {"op": "call", "tool": T, "args": {...}}')
    return parser.parse_args()


def ssl_context(certs, cert):
    context = ssl.create_default_context(cafile=os.path.join(certs, "ca.crt"))
    if cert:
        context.load_cert_chain(os.path.join(certs, f"{cert}.crt"), os.path.join(certs, f"{cert}.key"))
    return context


def summarize_text(text):
    if len(text) <= TEXT_INLINE:
        return text
    return {"length": len(text), "sha256": hashlib.sha256(text.encode()).hexdigest(), "head": text[:80]}


def result_report(result):
    """A CallToolResult / ListToolsResult (pydantic, either SDK) as JSON, long texts summarized."""
    data = result.model_dump(mode="json", by_alias=True, exclude_none=True)
    for block in data.get("content", []):
        if isinstance(block.get("text"), str):
            block["text"] = summarize_text(block["text"])
    if "structuredContent" in data:
        data["structuredContent"] = json.loads(json.dumps(data["structuredContent"], default=str))
        result_text = data["structuredContent"].get("result") if isinstance(data["structuredContent"], dict) else None
        if isinstance(result_text, str):
            data["structuredContent"]["result"] = summarize_text(result_text)
    if "tools" in data:
        # Names, and each tool's `_meta` as the SDK's ListToolsResult exposes it (where
        # toolgate puts a tool's conditions, docs/lists.md), and its description.
        data = {"tools": [t["name"] for t in data["tools"]],
                "meta": {t["name"]: t["_meta"] for t in data["tools"] if "_meta" in t},
                "descriptions": {t["name"]: t.get("description") for t in data["tools"]}}
    return data


def error_report(error):
    """An exception as the SDK raised it: class, and the JSON-RPC code, message and data when it has them."""
    report = {"class": f"{type(error).__module__}.{type(error).__qualname__}", "text": str(error)[:2000]}
    inner = getattr(error, "error", None)  # McpError (1.x) and MCPError (2.x) hold ErrorData here
    if inner is not None and hasattr(inner, "code"):
        report.update(code=inner.code, message=inner.message, data=inner.data)
    if isinstance(error, BaseExceptionGroup):
        report["exceptions"] = [error_report(e) for e in error.exceptions]
    return report


class HttpLog:
    """httpx / httpx2 event hooks: every HTTP exchange the SDK made, with the MCP headers it sent and got."""

    def __init__(self):
        self.exchanges = []

    async def on_response(self, response):
        self.exchanges.append(self.describe(response.request, response))

    def describe(self, request, response):
        """One exchange as the report shows it (the A2A driver, tests/a2a/client.py, shows other headers)."""
        return {
            "method": request.method,
            "status": response.status_code,
            "content_type": response.headers.get("content-type"),
            "sent_session": request.headers.get("mcp-session-id"),
            "sent_protocol_version": request.headers.get("mcp-protocol-version"),
            "sent_mcp_method": request.headers.get("mcp-method"),
            "sent_mcp_name": request.headers.get("mcp-name"),
            "got_session": response.headers.get("mcp-session-id"),
            "decision_id": response.headers.get("x-toolgate-decision-id"),
        }

    def session_id(self):
        return next((e["got_session"] for e in self.exchanges if e["got_session"]), None)


class Report:
    def __init__(self, sdk, version, mode):
        self.data = {"sdk": sdk, "version": version, "mode": mode, "protocol_version": None,
                     "server_info": None, "session_id": None, "steps": [], "server_requests": [],
                     "fatal": None, "closed": False, "http": []}

    def step(self, step, **outcome):
        self.data["steps"].append({**step, **outcome})

    def fatal(self, error):
        self.data["fatal"] = error_report(error)
        self.data["fatal"]["traceback"] = traceback.format_exception(error)[-6:]

    def print(self, http_log):
        self.data["http"] = http_log.exchanges
        self.data["session_id"] = http_log.session_id()
        json.dump(self.data, sys.stdout, indent=1, default=str)
        sys.stdout.write("\n")


async def run_steps(report, steps, list_tools, call_tool):
    """Runs STEPS with the SDK's LIST_TOOLS() and CALL_TOOL(name, args, progress_callback),
    recording each outcome; a step's exception is its outcome, the next step still runs."""
    for step in steps:
        progress = []

        async def on_progress(value, total, message=None, _progress=progress):
            _progress.append({"progress": value, "total": total, "message": message})

        started = time.monotonic()
        try:
            if step["op"] == "list":
                result = await list_tools()
            else:
                result = await call_tool(step["tool"], step.get("args", {}), on_progress)
            report.step(step, ok=True, result=result_report(result), progress=progress,
                        seconds=round(time.monotonic() - started, 2))
        except Exception as error:  # the SDK's own exception for this one call is what is reported
            report.step(step, ok=False, error=error_report(error), progress=progress,
                        seconds=round(time.monotonic() - started, 2))
