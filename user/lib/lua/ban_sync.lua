-- ban_sync.lua - a gateway asks for the bans published since it last asked.
--
-- Keys: the four of ban_publish.lua (exp, seq, from, last).
--
-- ARGV:
--   1 since_seq  the last sequence number this gateway has seen (0: all)
--   2 max_n      at most this many bans in the reply (1 to 1000)
--
-- Bans expired by now are dropped first (at most 1000 per call). A
-- since_seq above the last sequence given out (the keys expired, or the
-- store restarted empty) is taken as 0.
-- Returns {now_ms, next_seq, more, then for each ban with a sequence above
-- since_seq, in sequence order, at most max_n of them: prefix, seq,
-- remaining_ms (> 0), by, where}. next_seq is the since_seq of the next
-- sync: the last sequence given out, or, when more is 1 (max_n bans came
-- and more may follow), the last of these.
-- Bad arguments: an error reply, and nothing written.


local function bad(msg)
	return redis.error_reply('ERR sluice ban_sync: ' .. msg)
end

if #KEYS ~= 4 then
	return bad('expects 4 keys (exp, seq, from, last), got ' .. #KEYS)
end
if #ARGV ~= 2 then
	return bad('expects 2 arguments (since_seq, max_n), got ' .. #ARGV)
end
local s, n = ARGV[1], ARGV[2]
if not string.match(s, '^%d+$') or #s > 15 then
	return bad('ARGV[1] (since_seq) must be a whole number, got "' .. s .. '"')
end
if not string.match(n, '^%d+$') or #n > 4 or tonumber(n) < 1 or tonumber(n) > 1000 then
	return bad('ARGV[2] (max_n) must be a whole number from 1 to 1000, got "' .. n .. '"')
end
local since, max_n = tonumber(s), tonumber(n)

local now = bans_now_dropped()

local last = tonumber(redis.call('GET', KEYS[4]) or '0')
if since > last then since = 0 end

local got = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. string.format('%d', since), '+inf',
	'WITHSCORES', 'LIMIT', 0, max_n)
local out = { now, last, 0 }
if #got / 2 == max_n then
	out[2] = tonumber(got[#got])
	out[3] = 1
end
for i = 1, #got, 2 do
	local m = got[i]
	local exp = redis.call('ZSCORE', KEYS[1], m)
	local from = redis.call('HGET', KEYS[3], m) or '?\t?'
	local by, where = string.match(from, '^([^\t]*)\t(.*)$')
	if exp and tonumber(exp) > now then
		out[#out + 1] = m
		out[#out + 1] = tonumber(got[i + 1])
		out[#out + 1] = tonumber(exp) - now
		out[#out + 1] = by or '?'
		out[#out + 1] = where or '?'
	end
end
return out
