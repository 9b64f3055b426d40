-- l7_bucket.lua - the token bucket that l7_take.lua and l7_settle.lua share,
-- and their argument check. Not a script of its own: scripts.c puts it in
-- front of each of them, so both run one copy (each script is still one
-- body for SCRIPT LOAD / EVALSHA, its SHA1 that of the whole). It defines
-- only locals; the script after it uses them.
--
-- The bucket rule is limiter.c's (bucket_take, bucket_adjust), with the
-- server's clock (TIME) in ms. A bucket is a table {rate, burst, level, at};
-- burst 0 means the rate, as in l7_config.c.

local LEVEL_EPS = 1e-9      -- limiter.c: a level a hair under a unit counts as it
local KEY_SLACK_MS = 1000   -- a bucket key outlives the time it needs to fill by this
local MAX_WHOLE = 9007199254740992  -- 2^53: beyond it a double is no longer exact
-- A bucket that would take longer than this to fill (an absurd limit) has its
-- key expire sooner, and comes back full.
local MAX_KEY_TTL_MS = 315360000000 -- ten years

local function whole(i, what)
	local s = ARGV[i]
	if type(s) ~= 'string' or not string.match(s, '^%d+$') or #s > 16 then
		return nil, 'ARGV[' .. i .. '] (' .. what .. ') must be a whole number, got "' ..
			tostring(s) .. '"'
	end
	local v = tonumber(s)
	if v > MAX_WHOLE then
		return nil, 'ARGV[' .. i .. '] (' .. what .. ') is out of range: ' .. s
	end
	return v
end

-- burst 0 = the rate (l7_config.c's default): a bucket holds one period's
-- allowance, so a fresh caller's remaining equals its limit
local function resolve_burst(rate, burst)
	if burst > 0 then return burst end
	return rate
end

-- A bucket as loaded from its HASH fields and brought to now.
local function bucket_load(b, level_s, at_s, now, born, period)
	local level, at = tonumber(level_s), tonumber(at_s)
	if level == nil or at == nil then
		-- missing (or unreadable): it has been filling since born
		local age = now - born
		if age < 0 then age = 0 end
		level = age * b.rate / period
		if level > b.burst then level = b.burst end
		at = now
	end
	-- limiter.c bucket_refill: from the whole elapsed time; a clock behind
	-- at refills nothing
	if now > at then
		if level < b.burst then
			level = level + (now - at) * b.rate / period
		end
		at = now
	end
	if level > b.burst then level = b.burst end
	b.level, b.at = level, at
end

-- ms until cost would be admitted (0: now); limiter.c bucket_wait
local function bucket_wait(b, cost, period)
	local need = cost
	if need > b.burst then need = b.burst end
	if b.level + LEVEL_EPS >= need then return 0 end
	local ms = math.ceil((need - b.level) * period / b.rate)
	if ms < 1 then ms = 1 end
	return ms
end

local function bucket_remaining(b)
	if b.level + LEVEL_EPS <= 0 then return 0 end
	return math.floor(b.level + LEVEL_EPS)
end

local function bucket_reset_ms(b, period)
	local missing = b.burst - b.level
	if missing <= LEVEL_EPS then return 0 end
	return math.ceil(missing * period / b.rate)
end

-- a reply integer that Redis converts exactly
local function clamp(x)
	if x > MAX_WHOLE then return MAX_WHOLE end
	return x
end

-- Loads the limited buckets of one HASH key: bs[1] is its rpm, bs[2] its tpm.
local function load_key(key, bs, now, born, period)
	local f = redis.call('HMGET', key, 'rpm_level', 'rpm_ms', 'tpm_level', 'tpm_ms')
	for i = 1, 2 do
		if bs[i].rate > 0 then
			bucket_load(bs[i], f[2 * i - 1], f[2 * i], now, born, period)
		end
	end
end

-- Writes the limited buckets of one HASH key and keeps the key until every
-- one of them would be full again.
local function store_key(key, bs, period)
	local args, ttl = {}, 0
	local names = { 'rpm', 'tpm' }
	for i = 1, 2 do
		local b = bs[i]
		if b.rate > 0 then
			args[#args + 1] = names[i] .. '_level'
			args[#args + 1] = string.format('%.17g', b.level)
			args[#args + 1] = names[i] .. '_ms'
			args[#args + 1] = string.format('%d', b.at)
			local r = bucket_reset_ms(b, period)
			if r > ttl then ttl = r end
		end
	end
	if #args == 0 then return end
	ttl = ttl + KEY_SLACK_MS
	if ttl > MAX_KEY_TTL_MS then ttl = MAX_KEY_TTL_MS end
	redis.call('HSET', key, unpack(args))
	redis.call('PEXPIRE', key, string.format('%d', ttl))
end

-- limiter.c bucket_adjust: after the refill (done by load_key), never above the burst
local function bucket_adjust(b, delta)
	if b.rate == 0 then return end
	b.level = b.level + delta
	if b.level > b.burst then b.level = b.burst end
end
