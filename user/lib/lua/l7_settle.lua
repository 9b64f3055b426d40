-- l7_settle.lua - settles a reservation of l7_take.lua, exactly once: the
-- backend's token count is known (reconcile), or the request gave up before
-- it started (cancel).
--
-- Keys (as in l7_take.lua; the hash tag {t:T} keeps them in one slot):
--   KEYS[1] P:{t:T}:c:ID    the caller's buckets, a HASH
--   KEYS[2] P:{t:T}:tier    the tier's buckets, a HASH
--   KEYS[3] P:{t:T}:r:RID   the reservation, a STRING: the tokens charged
--
-- ARGV (all whole numbers, decimal digits only):
--   1 born_ms, 2 period_ms, 3..10 the 8 limit numbers, as for l7_take.lua
--   11 actual tokens (0 for a cancel)
--   12 refund_request (0 or 1; 1 for a cancel)
--
-- If the reservation exists it is read and deleted, atomically here, and
-- then: both tpm buckets (caller and tier) move by charged - actual (a
-- refund when positive, an extra charge when negative; never above the
-- burst, and a level may go negative), and with refund_request both rpm
-- buckets get their request back (never above the burst). limiter.c's
-- bucket_adjust (limiter_reconcile, limiter_cancel) is the rule.
-- Returns 1 when settled here, 0 when there was no reservation: settled
-- already, or expired (its instance died or was too slow): the estimate
-- stands. Bad arguments: an error reply, and nothing written.
--
-- The bucket functions below are the same in l7_take.lua: keep them in step.

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
	return redis.error_reply('ERR sluice l7_settle: ' .. msg)
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
if #ARGV ~= 12 then
	return bad('expects 12 arguments, got ' .. #ARGV)
end

local names = { 'born_ms', 'period_ms', 'caller rpm rate', 'caller rpm burst',
	'caller tpm rate', 'caller tpm burst', 'tier rpm rate', 'tier rpm burst',
	'tier tpm rate', 'tier tpm burst', 'actual tokens', 'refund_request' }
local a = {}
for i = 1, 12 do
	local v, err = whole(i, names[i])
	if v == nil then return bad(err) end
	a[i] = v
end
local born, period, actual, refund = a[1], a[2], a[11], a[12]
if period < 1 then return bad('ARGV[2] (period_ms) must be at least 1') end
if refund > 1 then return bad('ARGV[12] (refund_request) must be 0 or 1, got ' .. refund) end

local charged_s = redis.call('GET', KEYS[3])
if not charged_s then
	return 0
end
local charged = tonumber(charged_s)
redis.call('DEL', KEYS[3])
if charged == nil then
	-- not a reservation of l7_take.lua: drop it, change nothing
	return 0
end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local bs = {}
for i = 1, 4 do
	local rate = a[1 + 2 * i]
	bs[i] = { rate = rate, burst = resolve_burst(rate, a[2 + 2 * i]) }
end
local caller_bs, tier_bs = { bs[1], bs[2] }, { bs[3], bs[4] }
load_key(KEYS[1], caller_bs, now, born, period)
load_key(KEYS[2], tier_bs, now, born, period)

local delta = charged - actual
if delta ~= 0 then
	bucket_adjust(bs[2], delta)
	bucket_adjust(bs[4], delta)
end
if refund == 1 then
	bucket_adjust(bs[1], 1)
	bucket_adjust(bs[3], 1)
end
store_key(KEYS[1], caller_bs, period)
store_key(KEYS[2], tier_bs, period)
return 1
