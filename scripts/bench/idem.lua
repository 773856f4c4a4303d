-- wrk script: every request carries an Idempotency-Key of its own (the
-- thread's id and a sequence number, 1..64 bytes as turnstile accepts), so
-- each one is applied and remembered: the cost of a key (issue 29). Several
-- wrk processes side by side (one per cluster instance) must give each a
-- prefix of its own after `--`, or they send the same keys and the repeats
-- are answered without a count.
--   wrk -t1 -c50 -d5s -s scripts/bench/idem.lua http://127.0.0.1:8080/access [-- PREFIX]
local counter = 0
local id = 0
local prefix = "w"

function init(args)
    prefix = args[1] or prefix
end

function setup(thread)
    id = id + 1
    thread:set("id", id)
end

function request()
    counter = counter + 1
    wrk.headers["Idempotency-Key"] = string.format('"%s%d-%d"', prefix, id, counter)
    return wrk.format()
end
