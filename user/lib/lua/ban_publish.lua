-- ban_publish.lua - a gateway publishes a ban it decided (an XDP `ban`
-- rule, sluice-l7's deny-after), for every gateway to apply.
--
-- Keys (P the prefix; the hash tag {bans} keeps them in one slot):
--   KEYS[1] P:{bans}:exp   ZSET  banned prefix -> expiry (server ms)
--   KEYS[2] P:{bans}:seq   ZSET  banned prefix -> its sequence number
--   KEYS[3] P:{bans}:from  HASH  banned prefix -> "BY<tab>WHERE"
--   KEYS[4] P:{bans}:last  STRING the last sequence number given out
--
-- ARGV:
--   1 prefix   the banned prefix as sluice prints it ("198.18.1.1/32",
--              "2001:db8::/64"): 1 to 64 bytes, no space or tab
--   2 ttl_ms   how long from now (whole number, 1 ms to 366 days)
--   3 by       who decided it ("rule:NAME", "sluice-l7"): 1 to 64 bytes, no tab
--   4 where    the publishing gateway's instance name: 1 to 64 bytes, no tab
--
-- Bans expired by now are dropped first (at most 1000 per call). The ban's
-- expiry is now + ttl_ms. When the prefix is banned already until then or
-- later, nothing changes (a ban is never shortened, and its origin stays):
-- {0, its sequence, its remaining ms}. Otherwise the expiry, the origin
-- and a new sequence number (last + 1) are recorded: {1, sequence, ttl_ms}.
-- Always three integers.
-- Every key expires with the latest ban; the counter one day later, so a
-- syncing gateway's sequence stays meaningful across a quiet spell.
-- Bad arguments: an error reply, and nothing written.

local MAX_TTL = 366 * 86400 * 1000
local KEEP_LAST_MS = 86400 * 1000

local function bad(msg)
	return redis.error_reply('ERR sluice ban_publish: ' .. msg)
end

local function word(i, what)
	local s = ARGV[i]
	if type(s) ~= 'string' or #s < 1 or #s > 64 or string.find(s, '[%s]') then
		return nil, 'ARGV[' .. i .. '] (' .. what .. ') must be 1 to 64 bytes without ' ..
			'white space, got "' .. tostring(s) .. '"'
	end
	return s
end

if #KEYS ~= 4 then
	return bad('expects 4 keys (exp, seq, from, last), got ' .. #KEYS)
end
if #ARGV ~= 4 then
	return bad('expects 4 arguments (prefix, ttl_ms, by, where), got ' .. #ARGV)
end
local member, by, where, err
member, err = word(1, 'prefix'); if not member then return bad(err) end
local s = ARGV[2]
if not string.match(s, '^%d+$') or #s > 16 or tonumber(s) < 1 or tonumber(s) > MAX_TTL then
	return bad('ARGV[2] (ttl_ms) must be a whole number from 1 to ' .. MAX_TTL .. ', got "' ..
		s .. '"')
end
local ttl = tonumber(s)
by, err = word(3, 'by'); if not by then return bad(err) end
where, err = word(4, 'where'); if not where then return bad(err) end

local now = bans_now_dropped()

local expiry = now + ttl
local old = redis.call('ZSCORE', KEYS[1], member)
if old and tonumber(old) >= expiry then
	local seq = redis.call('ZSCORE', KEYS[2], member)
	return { 0, tonumber(seq or 0), tonumber(old) - now }
end
local seq = redis.call('INCR', KEYS[4])
redis.call('ZADD', KEYS[1], string.format('%d', expiry), member)
redis.call('ZADD', KEYS[2], string.format('%d', seq), member)
redis.call('HSET', KEYS[3], member, by .. '\t' .. where)

local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
local until_ms = math.floor(tonumber(last[2]))
for i = 1, 3 do
	redis.call('PEXPIREAT', KEYS[i], string.format('%d', until_ms))
end
redis.call('PEXPIREAT', KEYS[4], string.format('%d', until_ms + KEEP_LAST_MS))
return { 1, seq, ttl }
