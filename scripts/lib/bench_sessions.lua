-- wrk: bench_post.lua's tools/call, each from one of 500 sessions of the same agent, so
-- that the agent's session-history shard stays full (default capacity 128 entries) and
-- every call evicts the least recently used entry: the heaviest steady state.
dofile("scripts/lib/bench_post.lua")
local n = 0
request = function()
  n = n + 1
  wrk.headers["x-agent-session"] = "bench-" .. (n % 500)
  return wrk.format()
end
