"""The Lua script the Redis store runs: `books.apply` for one book, atomically, on the server's clock.

KEYS[1] the book (a hash: gen, base, added), KEYS[2] its leases (a hash: holder -> "amount used
expires"). ARGV: holder, limit, spent_delta, hold, need, want, ttl_s, gen ("" for none), known,
seed, fresh_when_idle, leave, share, keep_ms, new_gen. Returns {held, spent, others, gen, granted}
with numbers as text (`%.17g`: Lua numbers are doubles, and Redis would truncate them to integers).
"""

SYNC = r"""
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local holder = ARGV[1]
local limit, delta, hold = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local need, want, ttl = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local known_gen, known, seed = ARGV[8], tonumber(ARGV[9]), tonumber(ARGV[10])
local fresh, leave, share = ARGV[11] == '1', ARGV[12] == '1', tonumber(ARGV[13])
local keep_ms, new_gen = tonumber(ARGV[14]), ARGV[15]
local function fmt(x) return string.format('%.17g', x) end

local charge, others, live, mine = 0, 0, false, false
local all = redis.call('HGETALL', KEYS[2])
for i = 1, #all, 2 do
  local h = all[i]
  local a, u, e = string.match(all[i + 1], '^(%S+) (%S+) (%S+)$')
  if tonumber(e) <= now then
    charge = charge + tonumber(u)
    redis.call('HDEL', KEYS[2], h)
  elseif h ~= holder then
    others = others + tonumber(a)
    live = true
  else
    mine = true
  end
end

local row = redis.call('HMGET', KEYS[1], 'gen', 'base', 'added')
local gen, base, added = row[1], tonumber(row[2]), tonumber(row[3])
if not gen then
  gen, added = new_gen, 0
  if known_gen ~= '' then base = known else base = seed end
else
  added = added + charge
  if known_gen ~= '' and known_gen ~= gen then
    base = math.max(base, known)
  elseif known_gen == '' and fresh and not live and not mine then
    gen, base, added = new_gen, seed, 0
  end
end
added = added + delta
local spent = base + added
local avail = limit - spent - others - hold
local granted = need <= 0 or avail + 1e-12 >= need
local extra = 0
if granted then
  extra = math.min(want, math.max(need, avail * share))
  extra = math.max(0, math.min(extra, avail))
end
local amount = hold + extra
if leave and amount <= 0 then
  redis.call('HDEL', KEYS[2], holder)
else
  redis.call('HSET', KEYS[2], holder, fmt(amount) .. ' ' .. fmt(hold) .. ' ' .. fmt(now + ttl))
end
redis.call('HSET', KEYS[1], 'gen', gen, 'base', fmt(base), 'added', fmt(added))
redis.call('PEXPIRE', KEYS[1], keep_ms)
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], keep_ms) end
return {fmt(amount), fmt(spent), fmt(others), gen, granted and '1' or '0'}
"""
