-- wrk: bench_post.lua's tools/call (id 1), answered by the canned upstream's 64 KiB
-- result (header x-bench-answer: result), which toolgate reads through its detectors.
dofile("scripts/lib/bench_post.lua")
wrk.headers["x-bench-answer"] = "result"
wrk.body = wrk.body:gsub('"id":42', '"id":1', 1)
