-- wrk script of tests/deploy/test_deploy_under_load.py: a mix of GET and PUT
-- on users seeded beforehand, with per-status counts reported by done().
--
--   wrk -t2 -c16 -d60s -s tests/deploy/load.lua http://127.0.0.1:PORT -- USERS PUT_PERCENT
--
-- USERS: the seeded users are "wrk" followed by USERS three-letter suffixes
-- aaa, aab, ... (the test seeds the same names). PUT_PERCENT: the share of
-- PUTs (default 20); every PUT carries a valid date before today.
-- done() prints one line "WRKRESULT k=v k=v ..." for the test to parse.

local threads = {}

function setup(thread)
    thread:set("id", #threads + 1)
    table.insert(threads, thread)
end

local function suffix(i)
    local a = string.byte("a")
    local s = ""
    for _ = 1, 3 do
        s = string.char(a + i % 26) .. s
        i = math.floor(i / 26)
    end
    return s
end

local pool = {}
local POOL = 2000

function init(args)
    local users = tonumber(args[1]) or 200
    local put_percent = tonumber(args[2]) or 20
    math.randomseed(os.time() * 100 + (id or 0))
    for i = 1, POOL do
        local path = "/hello/wrk" .. suffix(math.random(0, users - 1))
        if math.random(100) <= put_percent then
            local body = string.format('{"dateOfBirth":"%04d-%02d-%02d"}',
                math.random(1950, 2010), math.random(1, 12), math.random(1, 28))
            pool[i] = wrk.format("PUT", path, { ["Content-Type"] = "application/json" }, body)
        else
            pool[i] = wrk.format("GET", path)
        end
    end
    -- Counters read by done() through thread:get().
    n_2xx, n_3xx, n_4xx, n_5xx, n_other = 0, 0, 0, 0, 0
    first_bad = ""
end

function request()
    return pool[math.random(POOL)]
end

function response(status, headers, body)
    if status >= 500 then
        n_5xx = n_5xx + 1
    elseif status >= 400 then
        n_4xx = n_4xx + 1
    elseif status >= 300 then
        n_3xx = n_3xx + 1
    elseif status >= 200 then
        n_2xx = n_2xx + 1
    else
        n_other = n_other + 1
    end
    if status >= 400 and first_bad == "" then
        first_bad = status .. " " .. string.gsub(string.sub(body or "", 1, 120), "%s", "_")
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
        "WRKRESULT requests=%d duration_us=%d connect=%d read=%d write=%d timeout=%d " ..
        "status=%d s2xx=%d s3xx=%d s4xx=%d s5xx=%d sother=%d p50_us=%d p99_us=%d max_us=%d " ..
        "first_bad=%s\n",
        summary.requests, summary.duration, e.connect, e.read, e.write, e.timeout, e.status,
        t.n_2xx, t.n_3xx, t.n_4xx, t.n_5xx, t.n_other,
        latency:percentile(50), latency:percentile(99), latency.max,
        bad ~= "" and bad or "-"))
end
