-- l7_hello.lua - a sluice-l7 instance says it is alive, and learns how many
-- are: when the store goes down, each instance falls back to its share of
-- the limits (the limit divided by this count).
--
-- Keys:
--   KEYS[1] P:{l7}:instances   a ZSET: member the instance name, score the
--                              server time in ms it last said hello
--
-- ARGV:
--   1 instance name (1 to 200 bytes)
--   2 stale_ms (> 0, a whole number): an instance not heard from for longer
--     is gone
--
-- Records the instance at now, drops instances last seen before now -
-- stale_ms, and keeps the set stale_ms + 1 ms (each hello renews it; once
-- nobody says hello, every member is stale).
-- Returns the number of live instances (this one included).
-- Bad arguments: an error reply, and nothing written.

local MAX_WHOLE = 9007199254740992  -- 2^53

local function bad(msg)
	return redis.error_reply('ERR sluice l7_hello: ' .. msg)
end

if #KEYS ~= 1 then
	return bad('expects 1 key (instances), got ' .. #KEYS)
end
if #ARGV ~= 2 then
	return bad('expects 2 arguments (instance name, stale_ms), got ' .. #ARGV)
end
local name, s = ARGV[1], ARGV[2]
if #name < 1 or #name > 200 then
	return bad('ARGV[1] (instance name) must be 1 to 200 bytes, got ' .. #name)
end
if not string.match(s, '^%d+$') or #s > 16 or tonumber(s) > MAX_WHOLE or tonumber(s) < 1 then
	return bad('ARGV[2] (stale_ms) must be a whole number of at least 1, got "' .. s .. '"')
end
local stale = tonumber(s)

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

redis.call('ZADD', KEYS[1], string.format('%d', now), name)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. string.format('%d', now - stale))
redis.call('PEXPIRE', KEYS[1], string.format('%d', stale + 1))
return redis.call('ZCARD', KEYS[1])
