-- wrk: a reader's tools/list, answered by the canned upstream's 50-tool list (header
-- x-bench-answer: list), which toolgate filters in "conditions" mode.
dofile("scripts/lib/bench_post.lua")
wrk.headers["x-bench-answer"] = "list"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/list"}'
