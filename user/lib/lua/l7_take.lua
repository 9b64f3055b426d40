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
--   3,4   caller rpm rate, burst      (rate 0 = no limit; burst 0 = the rate)
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
-- The bucket functions (resolve_burst, load_key, store_key, bucket_*) and
-- whole() are l7_bucket.lua's, which scripts.c puts in front of this file.

local function bad(msg)
	return redis.error_reply('ERR sluice l7_take: ' .. msg)
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
