-- wrk script of `make bench` (bench/bench.py): one scenario per run.
--
--   wrk -t2 -c32 -d10s -s bench/wrk/bench.lua http://127.0.0.1:PORT -- MODE USERS [PUT_PERCENT] [STOP_AFTER] [STATIC_PATH]
--
-- MODE         static | get | put | mix | seq (each user once, in order: user i
--              goes to thread i mod THREADS; with STOP_AFTER = USERS / THREADS)
-- USERS        how many users the database was seeded with; user i is
--              "user" followed by i written in base 26 with the letters a..z,
--              four of them (user 0 = useraaaa, user 27 = useraabb), exactly
--              as bench/bench.py seeds them, so every GET finds its user.
-- PUT_PERCENT  share of PUTs in "mix" (default 10)
-- STOP_AFTER   stop each thread after this many responses (0 = run for -d)
-- STATIC_PATH  the static file's path (default /static.json)
-- STOP_MARK    with STOP_AFTER: a thread that stops creates the file
--              STOP_MARK.<thread number>. wrk itself sleeps for all of -d
--              even when every thread has stopped, so bench.py waits for the
--              files and then sends wrk SIGINT, which ends it at once (done()
--              still runs).
-- SEED         random seed (0 or absent: from the clock); a fixed seed makes
--              the same requests, as the profile's paired runs need
-- THREADS      wrk's -t, for seq
--
-- Requests are made in init(): a pool of random requests per thread (random
-- users), so that request() is a table lookup and the client spends its CPU
-- on the network, not on Lua: wrk runs on the same two cores as the servers.
-- A PUT's date is drawn at request() time among all 27,759 valid dates of
-- 1940..2015 (the body has a fixed length, so only the body is new): a pooled
-- date would repeat within a run, and an upsert that writes the date a row
-- already has changes nothing (MariaDB's Handler_update stays put), which
-- would flatter the durable-write numbers.
--
-- response() counts the statuses (wrk's own "Non-2xx or 3xx" counts only
-- >= 400); done() prints one line "BENCHRESULT k=v ..." that bench.py parses.

local threads = {}

function setup(thread)
    thread:set("id", #threads + 1)
    table.insert(threads, thread)
end

local function username(i)
    local s = ""
    for _ = 1, 4 do
        s = string.char(97 + i % 26) .. s
        i = math.floor(i / 26)
    end
    return "user" .. s
end

local function is_leap(y)
    return (y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0
end

local mdays = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

-- Every valid date from 1940-01-01 to 2015-12-31 (27,759 of them).
local dates = {}
for y = 1940, 2015 do
    for m = 1, 12 do
        local dim = mdays[m]
        if m == 2 and is_leap(y) then dim = 29 end
        for d = 1, dim do
            dates[#dates + 1] = string.format("%04d-%02d-%02d", y, m, d)
        end
    end
end

local POOL = 20000
local pool = {}
local stop_after = 0
local stop_mark = nil
local seq_next, seq_step, seq_users = nil, 1, 0

function init(args)
    local mode = args[1] or "get"
    local users = tonumber(args[2]) or 100000
    local put_percent = tonumber(args[3]) or 10
    stop_after = tonumber(args[4]) or 0
    local static_path = args[5] or "/static.json"
    stop_mark = args[6]
    local seed = tonumber(args[7]) or 0
    if mode == "seq" then
        seq_next = (id or 1) - 1
        seq_step = tonumber(args[8]) or 1
        seq_users = users
    end
    if seed == 0 then
        seed = os.time() * 1000 + math.floor(os.clock() * 1e6)
    end
    math.randomseed(seed + (id or 0) * 7919)
    local get_hdrs = {}
    local put_hdrs = { ["Content-Type"] = "application/json" }
    for i = 1, POOL do
        if mode == "static" then
            pool[i] = wrk.format("GET", static_path, get_hdrs)
            break
        end
        local path = "/hello/" .. username(math.random(0, users - 1))
        local put = mode == "put" or (mode == "mix" and math.random(100) <= put_percent)
        if put then
            local body = '{"dateOfBirth":"' .. dates[1] .. '"}'
            local req = wrk.format("PUT", path, put_hdrs, body)
            -- The request without its body: a table marks a PUT.
            pool[i] = { string.sub(req, 1, #req - #body) }
        else
            pool[i] = wrk.format("GET", path, get_hdrs)
        end
    end
    n_2xx, n_3xx, n_4xx, n_5xx, n_other, n_seen = 0, 0, 0, 0, 0, 0
    first_bad = ""
end

local size = 0
local ndates = #dates
function request()
    if seq_next then
        local path = "/hello/" .. username(seq_next % seq_users)
        seq_next = seq_next + seq_step
        return wrk.format("GET", path)
    end
    if size == 0 then size = #pool end
    local r = pool[math.random(size)]
    if type(r) == "table" then
        return r[1] .. '{"dateOfBirth":"' .. dates[math.random(ndates)] .. '"}'
    end
    return r
end

function response(status, headers, body)
    if status >= 200 and status < 300 then
        n_2xx = n_2xx + 1
    elseif status >= 500 then
        n_5xx = n_5xx + 1
    elseif status >= 400 then
        n_4xx = n_4xx + 1
    elseif status >= 300 then
        n_3xx = n_3xx + 1
    else
        n_other = n_other + 1
    end
    if (status < 200 or status >= 300) and first_bad == "" then
        first_bad = status .. ":" .. string.gsub(string.sub(body or "", 1, 100), "[%s=]", "_")
    end
    n_seen = n_seen + 1
    if stop_after > 0 and n_seen == stop_after then
        if stop_mark and stop_mark ~= "" then
            local f = io.open(stop_mark .. "." .. (id or 0), "w")
            if f then f:close() end
        end
        wrk.thread:stop()
    end
end

function done(summary, latency, requests)
    local t = { n_2xx = 0, n_3xx = 0, n_4xx = 0, n_5xx = 0, n_other = 0 }
    local bad = ""
    for _, thread in ipairs(threads) do
        for k, _ in pairs(t) do
            t[k] = t[k] + (thread:get(k) or 0)
        end
        local fb = thread:get("first_bad")
        if bad == "" and fb and fb ~= "" then bad = fb end
    end
    local e = summary.errors
    io.write(string.format(
        "BENCHRESULT requests=%d duration_us=%d bytes=%d connect=%d read=%d write=%d " ..
        "timeout=%d wrk_status=%d s2xx=%d s3xx=%d s4xx=%d s5xx=%d sother=%d " ..
        "p50_us=%d p90_us=%d p99_us=%d max_us=%d mean_us=%.1f first_bad=%s\n",
        summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
        e.timeout, e.status, t.n_2xx, t.n_3xx, t.n_4xx, t.n_5xx, t.n_other,
        latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
        latency.mean, bad ~= "" and bad or "-"))
end
