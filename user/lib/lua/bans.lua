-- bans.lua - what ban_publish.lua and ban_sync.lua share: the server's clock
-- and dropping the bans expired by then. Not a script of its own: scripts.c
-- puts it in front of each (each is still one body for SCRIPT LOAD /
-- EVALSHA). Only locals; KEYS are the four ban keys (exp, seq, from, last)
-- in both.

local DROP_MAX = 1000       -- expired bans dropped per call, at most

-- The server's time in ms, after at most DROP_MAX bans expired by then are
-- gone from the exp and seq sets and the from hash.
local function bans_now_dropped()
	local t = redis.call('TIME')
	local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
	local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now),
		'LIMIT', 0, DROP_MAX)
	for _, m in ipairs(gone) do
		redis.call('ZREM', KEYS[1], m)
		redis.call('ZREM', KEYS[2], m)
		redis.call('HDEL', KEYS[3], m)
	end
	return now
end

