-- l7_slots.lua - what l7_slot_acquire.lua and l7_slot_renew.lua share: the
-- server's clock, dropping slots past their deadline, and keeping a slot
-- set alive. Not a script of its own: scripts.c puts it in front of each
-- (each is still one body for SCRIPT LOAD / EVALSHA). Only locals; KEYS[1]
-- and KEYS[2] are the caller's and the tier's slot sets in both.

local MAX_WHOLE = 9007199254740992  -- 2^53: beyond it a double is no longer exact

-- The server's time in ms, after the slots that expired by then are gone
-- from both sets (a slot not renewed by its deadline is free again, so an
-- instance that was killed frees its slots).
local function slots_now_purged()
	local t = redis.call('TIME')
	local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
	local now_s = string.format('%d', now)
	redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_s)
	redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now_s)
	return now
end

-- Keeps a slot set until one ttl after its latest deadline.
local function keep(key, ttl)
	local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
	if last[2] then
		redis.call('PEXPIREAT', key, string.format('%d', math.floor(tonumber(last[2])) + ttl))
	end
end

