-- lease.lua - a gateway's share of one global rule (sluiced).
--
-- KEYS[1]  PREFIX:{rule:NAME}:alloc  HASH  instance -> "expiry_ms w1 g1 w2 g2 ..."
-- ARGV     born_ms instance lease_ms K  G1 want1 held1  ...  GK wantK heldK
--          (K <= 4 kinds: pps, bps, conn-rate, conns; G 0 = not limited)
-- Returns  {n_live, lease_ms, grant1, ..., grantK}
--
-- Grants come only from what others do not hold (the sum of live leases
-- never exceeds G), after leaving a floor (G/16n) for every other live
-- gateway and a reserve (G/16(n+1)) for a newcomer. The target is max-min fair over the latest wants,
-- plus an even part of what nobody wants, so a burst finds room at once;
-- a gateway above its target gives the excess back at its next renewal,
-- and the others take it at theirs: shares follow demand within two
-- renewals. For one lease after the store's epoch began (a store restarted
-- empty) nobody gets more than it already enforces: the others may still
-- enforce leases the store forgot.
local FLOOR_DIV = 16

local function num(v, what)
  local n = tonumber(v)
  if n == nil or n < 0 or n ~= n or n >= 2^53 then
    return redis.error_reply('lease: ' .. what .. ' is not a non-negative number: ' .. tostring(v))
  end
  return math.floor(n)
end

local born = num(ARGV[1], 'born_ms'); if type(born) == 'table' then return born end
local me = ARGV[2]
if me == nil or me == '' or string.find(me, ' ') then
  return redis.error_reply('lease: bad instance name')
end
local lease = num(ARGV[3], 'lease_ms'); if type(lease) == 'table' then return lease end
local K = num(ARGV[4], 'K'); if type(K) == 'table' then return K end
if lease < 10 or K < 1 or K > 4 or #ARGV ~= 4 + 3 * K then
  return redis.error_reply('lease: want lease_ms >= 10, 1 <= K <= 4 and 3 values per kind')
end
local G, want, held = {}, {}, {}
for k = 1, K do
  local i = 4 + 3 * (k - 1)
  G[k] = num(ARGV[i + 1], 'G'); if type(G[k]) == 'table' then return G[k] end
  want[k] = num(ARGV[i + 2], 'want'); if type(want[k]) == 'table' then return want[k] end
  held[k] = num(ARGV[i + 3], 'held'); if type(held[k]) == 'table' then return held[k] end
end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

-- the live others: their wants and grants
local others = {}
local raw = redis.call('HGETALL', KEYS[1])
for i = 1, #raw, 2 do
  local name, v = raw[i], raw[i + 1]
  if name ~= me then
    local f = {}
    for w in string.gmatch(v, '%S+') do f[#f + 1] = tonumber(w) end
    if f[1] == nil or f[1] <= now or #f < 1 + 2 * K then
      redis.call('HDEL', KEYS[1], name)
    else
      local o = { w = {}, g = {} }
      for k = 1, K do o.w[k] = f[2 * k]; o.g[k] = f[2 * k + 1] end
      others[#others + 1] = o
    end
  end
end
local n = #others + 1
local learning = now - born < lease

local out = { n, lease }
local rec = { tostring(now + lease) }
for k = 1, K do
  local grant = 0
  if G[k] > 0 then
    local floor = math.max(1, math.floor(G[k] / (FLOOR_DIV * n)))
    local reserve = math.max(1, math.floor(G[k] / (FLOOR_DIV * (n + 1))))
    -- max-min fair over the wants (each at least the floor): everyone gets
    -- min(want, level), with level such that the allocations sum to G
    local mine = math.max(want[k], floor)
    local ws = { mine }
    for _, o in ipairs(others) do ws[#ws + 1] = math.max(o.w[k], floor) end
    table.sort(ws)
    local left, level = G[k], nil
    for i, w in ipairs(ws) do
      local share = left / (n - i + 1)
      if w > share then level = share; break end
      left = left - w
    end
    local target
    if level then
      target = math.min(mine, level)
    else
      target = mine + left / n -- every want fits: the spare is split evenly
    end
    -- only from what the others hold, leaving each of them its floor and a
    -- newcomer a reserve
    local taken = 0
    for _, o in ipairs(others) do taken = taken + math.max(o.g[k], floor) end
    grant = math.floor(math.min(target, G[k] - taken - reserve))
    if learning then grant = math.min(grant, math.max(held[k], floor)) end
    if grant < 0 then grant = 0 end
  end
  out[#out + 1] = grant
  rec[#rec + 1] = tostring(want[k])
  rec[#rec + 1] = tostring(grant)
end
redis.call('HSET', KEYS[1], me, table.concat(rec, ' '))
redis.call('PEXPIRE', KEYS[1], 3 * lease)
return out
