-- wrk: an MCP tools/call of realistic size (about 1 KiB), from an agent with a declared intent.
local content = string.rep("The quick brown fox jumps over the lazy dog. ", 16)
wrk.method = "POST"
wrk.path = "/mcp"
wrk.headers["content-type"] = "application/json"
wrk.headers["accept"] = "application/json, text/event-stream"
wrk.headers["x-dev-spiffe-id"] = "spiffe://toolgate.test/agent/reader"
wrk.headers["x-agent-intent"] = "summarize"
wrk.headers["x-agent-task"] = "BENCH-1"
wrk.headers["x-agent-session"] = "bench-session"
wrk.body = '{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"read_file",'
  .. '"arguments":{"path":"/docs/guide/getting-started.md","encoding":"utf-8","max_bytes":65536,'
  .. '"content":"' .. content .. '"}}}'
