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
-- The bucket functions (resolve_burst, load_key, store_key, bucket_adjust)
-- and whole() are l7_bucket.lua's, which scripts.c puts in front of this file.

local function bad(msg)
	return redis.error_reply('ERR sluice l7_settle: ' .. msg)
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
