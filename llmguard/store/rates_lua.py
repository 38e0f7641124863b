"""The Lua script the Redis store runs for rate books: `rates.apply_rates`, atomically, on the server's clock.

KEYS[1] the book (a JSON string: the state `rates.new_book` describes), ARGV[1] the request
(`RateRequest.to_json`), ARGV[2] a new generation id. Returns the grant as JSON. Times are seconds
since 2023-11-14 (TIME minus 1.7e9) so cjson's 14 significant digits keep microseconds. Keep it
line for line with `rates.apply_rates`: tests run the same steps against both.
"""

SYNC_RATES = r"""
local t = redis.call('TIME')
local now = (tonumber(t[1]) - 1700000000) + tonumber(t[2]) / 1000000
local req = cjson.decode(ARGV[1])
local SHARE, EPS, REJOIN_S = 0.5, 1e-9, 1.2
local caps, used, hold_in, need, want = req.caps, req.used, req.hold, req.need, req.want
local raw = redis.call('GET', KEYS[1])
local book
if raw then book = cjson.decode(raw) end
if not book then
  local lost = req.gen ~= cjson.null
  book = {gen = ARGV[2], hold = lost and now + REJOIN_S or 0, dims = {}, leases = {}}
  for i = 1, 2 do book.dims[i] = {lost and 0 or caps[i], now} end
end
local dims, leases = book.dims, book.leases
local rates = {caps[1] / req.window_s, caps[2] / req.window_s}
local credit = {0, 0}
local expired = {}
for h, lease in pairs(leases) do
  if lease[3] <= now then table.insert(expired, h) end
end
for _, h in ipairs(expired) do
  local lease = leases[h]
  leases[h] = nil
  for i = 1, 2 do credit[i] = credit[i] + math.min(lease[i], math.max(0, now - lease[4]) * rates[i]) end
end
local mine = leases[req.holder]
leases[req.holder] = nil
local amount, hold, unspent = {0, 0}, {0, 0}, {0, 0}
if mine then
  for i = 1, 2 do
    amount[i] = math.max(0, mine[i] - used[i])
    hold[i] = math.min(hold_in[i], amount[i])
  end
end
if req.pause_s > 0 then amount = {hold[1], hold[2]} end
for i = 1, 2 do unspent[i] = amount[i] - hold[i] end
local others, count = {0, 0}, 0
for _, lease in pairs(leases) do
  count = count + 1
  for i = 1, 2 do others[i] = others[i] + lease[i] end
end
if req.pause_s > 0 then book.hold = math.max(book.hold, now + req.pause_s) end
for i = 1, 2 do
  local level, stamp = dims[i][1], dims[i][2]
  if now > stamp then level = level + (now - stamp) * rates[i] end
  level = level + credit[i]
  if req.pause_s > 0 or req.resync then level = math.min(level, 0) end
  dims[i] = {math.min(level, caps[i] - others[i] - amount[i]), now}
end
local target = {0, 0}
if not req.leave then for i = 1, 2 do target[i] = math.max(want[i], need[i]) end end
for i = 1, 2 do
  if unspent[i] > target[i] then
    dims[i][1] = dims[i][1] + unspent[i] - target[i]
    unspent[i] = target[i]
  end
end
local short, margin = {0, 0}, {0, 0}
for i = 1, 2 do
  if caps[i] > 0 then short[i] = math.max(0, need[i] - unspent[i]) end
  if short[i] + rates[i] * req.margin_s <= caps[i] - others[i] - hold[i] then margin[i] = rates[i] * req.margin_s end
end
local wait = 0
if now < book.hold then wait = book.hold - now end
for i = 1, 2 do
  local missing = short[i] + margin[i] - dims[i][1]
  if short[i] > 0 and missing > EPS then wait = math.max(wait, missing / rates[i], 0.001) end
end
local granted = wait == 0
if granted then
  for i = 1, 2 do
    if caps[i] > 0 then
      local free = dims[i][1] - margin[i]
      local part = free
      if count > 0 then part = free * SHARE end
      local take = math.min(math.max(short[i], math.min(target[i] - unspent[i], part)), math.max(free, short[i]))
      if take > EPS then
        dims[i][1] = dims[i][1] - take
        unspent[i] = unspent[i] + take
      end
    end
  end
end
local total = {hold[1] + unspent[1], hold[2] + unspent[2]}
if not (req.leave and total[1] <= EPS and total[2] <= EPS) then
  leases[req.holder] = {total[1], total[2], now + req.ttl_s, now + req.valid_s}
  count = count + 1
end
redis.call('SET', KEYS[1], cjson.encode(book), 'PX', math.floor(req.keep_s * 1000))
if granted then wait = 0 end
return cjson.encode({held = unspent, granted = granted, wait_s = wait, gen = book.gen, holders = math.max(1, count)})
"""
