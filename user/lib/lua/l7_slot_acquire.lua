-- l7_slot_acquire.lua - takes a concurrency slot for one request, for the
-- caller and its tier together, or neither.
--
-- Keys (built by the caller; P the prefix, T the tier, ID the caller's hash;
-- the hash tag {t:T} keeps them in one slot):
--   KEYS[1] P:{t:T}:cs:ID   the caller's slots, a ZSET
--   KEYS[2] P:{t:T}:ts      the tier's slots, a ZSET
-- A member is a request id (RID), its score the deadline in server ms: a
-- slot not renewed (l7_slot_renew.lua) by then is free again, so the slots
-- of an instance that was killed free themselves.
--
-- ARGV (whole numbers in decimal digits, but the rid):
--   1 rid         the request id (1 to 200 bytes)
--   2 ttl_ms      how long the slot lasts without a renewal (> 0)
--   3 caller limit  (0 = none)
--   4 tier limit    (0 = none)
--
-- Slots past their deadline are dropped from both sets first. A rid that
-- already holds its slot only gets its deadline extended (an acquire is
-- idempotent: a retry after a lost reply takes no second slot). Otherwise,
-- when a limit is reached: {0, 1, caller count} (the caller's limit) or
-- {0, 2, tier count} (the tier's), nothing taken. Else the rid joins both
-- sets with deadline now + ttl_ms.
-- Returns {1, caller count, tier count} (counts including this request).
-- Always three integers.
-- Each set expires one ttl after its latest deadline.
-- Bad arguments: an error reply, and nothing written.

local function bad(msg)
	return redis.error_reply('ERR sluice l7_slot_acquire: ' .. msg)
end

local function whole(i, what)
	local s = ARGV[i]
	if type(s) ~= 'string' or not string.match(s, '^%d+$') or #s > 16 or
	   tonumber(s) > MAX_WHOLE then
		return nil, 'ARGV[' .. i .. '] (' .. what .. ') must be a whole number, got "' ..
			tostring(s) .. '"'
	end
	return tonumber(s)
end

if #KEYS ~= 2 then
	return bad('expects 2 keys (caller slots, tier slots), got ' .. #KEYS)
end
if #ARGV ~= 4 then
	return bad('expects 4 arguments (rid, ttl_ms, caller limit, tier limit), got ' .. #ARGV)
end
local rid = ARGV[1]
if #rid < 1 or #rid > 200 then
	return bad('ARGV[1] (rid) must be 1 to 200 bytes, got ' .. #rid)
end
local ttl, err = whole(2, 'ttl_ms')
if ttl == nil then return bad(err) end
if ttl < 1 then return bad('ARGV[2] (ttl_ms) must be at least 1') end
local caller_limit, tier_limit
caller_limit, err = whole(3, 'caller limit')
if caller_limit == nil then return bad(err) end
tier_limit, err = whole(4, 'tier limit')
if tier_limit == nil then return bad(err) end

local now = slots_now_purged()
local deadline = string.format('%d', now + ttl)

local held = redis.call('ZSCORE', KEYS[1], rid) or redis.call('ZSCORE', KEYS[2], rid)
if not held then
	local n = redis.call('ZCARD', KEYS[1])
	if caller_limit > 0 and n >= caller_limit then
		return { 0, 1, n }
	end
	n = redis.call('ZCARD', KEYS[2])
	if tier_limit > 0 and n >= tier_limit then
		return { 0, 2, n }
	end
end
-- GT: a deadline is only ever extended
redis.call('ZADD', KEYS[1], 'GT', deadline, rid)
redis.call('ZADD', KEYS[2], 'GT', deadline, rid)
keep(KEYS[1], ttl)
keep(KEYS[2], ttl)
return { 1, redis.call('ZCARD', KEYS[1]), redis.call('ZCARD', KEYS[2]) }
