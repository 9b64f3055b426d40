-- l7_slot_renew.lua - extends the deadlines of slots still held (requests
-- still running), so that only a dead instance's slots expire.
--
-- Keys (as in l7_slot_acquire.lua; one caller and its tier):
--   KEYS[1] P:{t:T}:cs:ID   the caller's slots, a ZSET (member RID, score deadline ms)
--   KEYS[2] P:{t:T}:ts      the tier's slots, a ZSET
--
-- ARGV:
--   1 ttl_ms (> 0, a whole number): the new deadline is now + ttl_ms
--   2.. rid...  (at least one)
--
-- Slots past their deadline are dropped first: a slot that expired is gone
-- (another request may have it now) and is not brought back. Each rid still
-- in either set gets deadline now + ttl_ms in both (never shortened). The
-- sets then expire one ttl after their latest deadline.
-- Returns how many of the rids were renewed (0 to #rids).
-- Bad arguments: an error reply, and nothing written.

local function bad(msg)
	return redis.error_reply('ERR sluice l7_slot_renew: ' .. msg)
end

if #KEYS ~= 2 then
	return bad('expects 2 keys (caller slots, tier slots), got ' .. #KEYS)
end
if #ARGV < 2 then
	return bad('expects ttl_ms and at least one rid, got ' .. #ARGV .. ' arguments')
end
local s = ARGV[1]
if not string.match(s, '^%d+$') or #s > 16 or tonumber(s) > MAX_WHOLE or tonumber(s) < 1 then
	return bad('ARGV[1] (ttl_ms) must be a whole number of at least 1, got "' .. s .. '"')
end
local ttl = tonumber(s)
for i = 2, #ARGV do
	if #ARGV[i] < 1 or #ARGV[i] > 200 then
		return bad('ARGV[' .. i .. '] (rid) must be 1 to 200 bytes, got ' .. #ARGV[i])
	end
end

local now = slots_now_purged()
local deadline = string.format('%d', now + ttl)

local renewed = 0
for i = 2, #ARGV do
	local rid = ARGV[i]
	local in_caller = redis.call('ZSCORE', KEYS[1], rid)
	local in_tier = redis.call('ZSCORE', KEYS[2], rid)
	if in_caller or in_tier then
		redis.call('ZADD', KEYS[1], 'GT', deadline, rid)
		redis.call('ZADD', KEYS[2], 'GT', deadline, rid)
		renewed = renewed + 1
	end
end
keep(KEYS[1], ttl)
keep(KEYS[2], ttl)
return renewed
