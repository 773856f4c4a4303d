-- wrk script that turns wrk into a checker of turnstile's lock: it reads the
-- N of every reply ("Resource accessed N times.") and, when wrk ends, prints
-- how many replies came, how many distinct N, the duplicates (replies whose N
-- another reply already had), the lowest and highest N, and the replies that
-- were not 200, by status. Under the lock every N is distinct; with
-- turnstile --no-lock concurrent requests read the same counter and the
-- duplicates show it.
--   wrk -t2 -c8 -d5s -s scripts/bench/access.lua http://127.0.0.1:8080/access
--
-- Each wrk thread runs its own Lua state, and done() runs in yet another
-- one (the setup state), which sees a thread's globals only through
-- thread:get. That copies strings and numbers reliably but not tables (wrk
-- 4.1's table copy pops one value too many off the thread's stack), so each
-- thread hands over its replies as one string, "N N N ...;status=count,...",
-- built only when done() asks for the global `report`.

local threads = {}

-- Setup state: keep every thread so that done() can ask it for its report.
function setup(thread)
    table.insert(threads, thread)
end

-- Thread state: the N of each 200 in arrival order, the rest by status.
local ns = {}
local others = {}

function response(status, headers, body)
    local n = status == 200 and body:match("^Resource accessed (%d+) times%.")
    if n then
        ns[#ns + 1] = n
    else
        local key = status == 200 and "200 without N" or tostring(status)
        others[key] = (others[key] or 0) + 1
    end
end

-- `report` is not stored: reading the global (thread:get) builds it, once
-- the thread has stopped, so that response() never pays for it.
local function report()
    local parts = {}
    for key, count in pairs(others) do
        parts[#parts + 1] = key .. "=" .. count
    end
    return table.concat(ns, " ") .. ";" .. table.concat(parts, ",")
end

setmetatable(_G, {
    __index = function(_, name)
        if name == "report" then
            return report()
        end
    end,
})

-- Setup state again: merge the threads' reports and print the verdict.
local function merge(seen, others, text)
    local list, statuses = text:match("^([^;]*);(.*)$")
    for n in list:gmatch("%d+") do
        n = tonumber(n)
        seen[n] = (seen[n] or 0) + 1
    end
    for key, count in statuses:gmatch("([^,=]+)=(%d+)") do
        others[key] = (others[key] or 0) + tonumber(count)
    end
end

local function describe(others)
    local keys = {}
    for key in pairs(others) do
        keys[#keys + 1] = key
    end
    table.sort(keys)
    local parts = {}
    for _, key in ipairs(keys) do
        parts[#parts + 1] = key .. ": " .. others[key]
    end
    return #parts > 0 and table.concat(parts, ", ") or "none"
end

function done(summary, latency, requests)
    local seen, others = {}, {}
    for _, thread in ipairs(threads) do
        merge(seen, others, thread:get("report"))
    end
    local replies, with_n, distinct, lowest, highest = 0, 0, 0, nil, nil
    for _, count in pairs(others) do
        replies = replies + count
    end
    for n, count in pairs(seen) do
        with_n = with_n + count
        distinct = distinct + 1
        lowest = math.min(lowest or n, n)
        highest = math.max(highest or n, n)
    end
    io.write(string.format("replies     %d\n", replies + with_n))
    io.write(string.format("distinct N  %d\n", distinct))
    io.write(string.format("duplicates  %d\n", with_n - distinct))
    io.write(string.format("lowest N    %s\n", lowest or "-"))
    io.write(string.format("highest N   %s\n", highest or "-"))
    io.write(string.format("non-200     %s\n", describe(others)))
end
