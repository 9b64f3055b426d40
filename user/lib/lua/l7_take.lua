-- l7_take.lua - sluice-l7 rate admission across the fleet, all or none.
--
-- Keys (built by the caller; P is the prefix, default "sluice"; T the tier;
-- ID a hash of the API key, never the key itself; RID the request id; the
-- hash tag {t:T} puts every key of one tier in one Redis Cluster slot):
--   KEYS[1] P:{t:T}:c:ID    the caller's buckets, a HASH
--   KEYS[2] P:{t:T}:tier    the tier's buckets, a HASH
--   KEYS[3] P:{t:T}:r:RID   the reservation, a STRING: the tokens charged
-- A bucket HASH has the fields rpm_level, rpm_ms, tpm_level, tpm_ms: the
-- level (a float, "%.17g") and the server time in ms it was computed at.
--
-- ARGV (all whole numbers, decimal digits only):
--   1 born_ms     when the store's state began (supplied by the client)
--   2 period_ms   the period the rates are per (> 0)
--   3,4   caller rpm rate, burst      (rate 0 = no limit; burst 0 = rate/10, at least 1)
--   5,6   caller tpm rate, burst
--   7,8   tier rpm rate, burst
--   9,10  tier tpm rate, burst
--   11 request cost (0 or 1)
--   12 token cost (the estimate)
--   13 reservation ttl ms (> 0)
--
-- The bucket rule is limiter.c's (bucket_take, limiter_take), with the
-- server's clock (TIME) in ms: a bucket refills at rate/period up to its
-- burst; a cost c is admitted when the level is at least min(c, burst), and
-- the level then drops by c (it may go negative); a draw of cost 0 is
-- skipped. All four buckets are checked first and taken only if all admit.
-- A bucket that does not exist starts at min(burst, max(0, now - born) *
-- rate / period): after a store restart (a new born) buckets ramp up from
-- empty. A bucket's key is kept at least until the bucket would be full, so
-- a key that expired was a full bucket.
--
-- On admission the reservation is SET to the token cost with PX = its ttl
-- (l7_settle.lua reconciles it once; if the instance dies, the estimate
-- stands when the reservation expires). A refusal writes nothing.
--
-- Returns 11 integers:
--   1 admitted (1/0)
--   2 reason: 0 ok, 1 caller rpm, 2 caller tpm, 3 tier rpm, 4 tier tpm (the
--     first failing bucket in that order)
--   3 retry ms: how long until every failing bucket would admit (0 if admitted)
--   4,5   caller rpm: remaining whole units (0 when negative), ms until full
--   6,7   caller tpm: remaining, ms until full
--   8,9   tier rpm: remaining, ms until full
--   10,11 tier tpm: remaining, ms until full
-- all computed after the take; an unlimited bucket shows 0, 0.
-- Bad arguments: an error reply, and nothing written.
--
-- The bucket functions below are the same in l7_settle.lua: keep them in step.

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

local function bad(msg)
	return redis.error_reply('ERR sluice l7_take: ' .. msg)
end

-- --- bucket functions: the same in l7_take.lua and l7_settle.lua ----------------

local function resolve_burst(rate, burst)
	if burst > 0 then return burst end
	local b = math.floor(rate / 10)
	if b < 1 then b = 1 end
	return b
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

-- --- arguments -----------------------------------------------------------------

if #KEYS ~= 3 then
	return bad('expects 3 keys (caller, tier, reservation), got ' .. #KEYS)
end
if #ARGV ~= 13 then
	return bad('expects 13 arguments, got ' .. #ARGV)
end

local names = { 'born_ms', 'period_ms', 'caller rpm rate', 'caller rpm burst',
	'caller tpm rate', 'caller tpm burst', 'tier rpm rate', 'tier rpm burst',
	'tier tpm rate', 'tier tpm burst', 'request cost', 'token cost',
	'reservation ttl ms' }
local a = {}
for i = 1, 13 do
	local v, err = whole(i, names[i])
	if v == nil then return bad(err) end
	a[i] = v
end
local born, period = a[1], a[2]
local req_cost, tok_cost, res_ttl = a[11], a[12], a[13]
if period < 1 then return bad('ARGV[2] (period_ms) must be at least 1') end
if req_cost > 1 then return bad('ARGV[11] (request cost) must be 0 or 1, got ' .. req_cost) end
if res_ttl < 1 then return bad('ARGV[13] (reservation ttl ms) must be at least 1') end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

-- in the order their reasons rank
local bs = {}
for i = 1, 4 do
	local rate = a[1 + 2 * i]
	bs[i] = { rate = rate, burst = resolve_burst(rate, a[2 + 2 * i]),
		  cost = (i % 2 == 1) and req_cost or tok_cost }
end
local caller_bs, tier_bs = { bs[1], bs[2] }, { bs[3], bs[4] }
load_key(KEYS[1], caller_bs, now, born, period)
load_key(KEYS[2], tier_bs, now, born, period)

-- check all first
local reason, retry = 0, 0
for i = 1, 4 do
	local b = bs[i]
	if b.rate > 0 and b.cost > 0 then
		local w = bucket_wait(b, b.cost, period)
		if w > 0 then
			if reason == 0 then reason = i end
			if w > retry then retry = w end
		end
	end
end

-- take only if all admit
if reason == 0 then
	for i = 1, 4 do
		if bs[i].rate > 0 then bs[i].level = bs[i].level - bs[i].cost end
	end
	store_key(KEYS[1], caller_bs, period)
	store_key(KEYS[2], tier_bs, period)
	redis.call('SET', KEYS[3], string.format('%d', tok_cost), 'PX', string.format('%d', res_ttl))
end

local out = { reason == 0 and 1 or 0, reason, clamp(retry) }
for i = 1, 4 do
	local b = bs[i]
	if b.rate > 0 then
		out[#out + 1] = clamp(bucket_remaining(b))
		out[#out + 1] = clamp(bucket_reset_ms(b, period))
	else
		out[#out + 1] = 0
		out[#out + 1] = 0
	end
end
return out
