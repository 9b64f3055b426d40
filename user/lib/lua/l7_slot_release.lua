-- l7_slot_release.lua - frees a request's concurrency slot (its response is
-- over, or it gave up).
--
-- Keys (as in l7_slot_acquire.lua; one caller and its tier):
--   KEYS[1] P:{t:T}:cs:ID   the caller's slots, a ZSET (member RID, score deadline ms)
--   KEYS[2] P:{t:T}:ts      the tier's slots, a ZSET
--
-- ARGV:
--   1 rid (1 to 200 bytes)
--
-- Removes the rid from both sets (the sets keep their expiry).
-- Returns how many members were removed: 2 when the slot was held, 0 when it
-- was not (released already, or expired), 1 only if the sets disagreed.
-- Bad arguments: an error reply, and nothing written.

local function bad(msg)
	return redis.error_reply('ERR sluice l7_slot_release: ' .. msg)
end

if #KEYS ~= 2 then
	return bad('expects 2 keys (caller slots, tier slots), got ' .. #KEYS)
end
if #ARGV ~= 1 then
	return bad('expects 1 argument (rid), got ' .. #ARGV)
end
if #ARGV[1] < 1 or #ARGV[1] > 200 then
	return bad('ARGV[1] (rid) must be 1 to 200 bytes, got ' .. #ARGV[1])
end
return redis.call('ZREM', KEYS[1], ARGV[1]) + redis.call('ZREM', KEYS[2], ARGV[1])
