-- GCRA for one or more keys, checked in order, the clock being Redis's own
-- (TIME), so every replica counts on one timeline. A refused key stops the
-- run: the keys after it are not counted (a request over its per-IP quota
-- costs its caller's quota nothing).
--
-- KEYS[i]          a limited key; its value is the theoretical arrival time
--                  (TAT) in microseconds, and it expires when the quota is
--                  whole again
-- ARGV[2i-1]       emission interval of KEYS[i]: microseconds per request
-- ARGV[2i]         burst of KEYS[i]
-- ARGV[2#KEYS+1]   optional: "now" in microseconds, for tests with a set clock
--
-- Returns three numbers per key checked: {1, remaining, reset_us} when
-- admitted (reset: until the whole burst is back), {0, 0, retry_after_us}
-- when refused (and then nothing more).
local n = #KEYS
local now
if ARGV[2 * n + 1] then
  now = tonumber(ARGV[2 * n + 1])
else
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000000 + tonumber(time[2])
end
local result = {}
for i = 1, n do
  local interval = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then
    tat = now
  end
  local new_tat = tat + interval
  local allow_at = new_tat - interval * burst
  if allow_at > now then
    result[#result + 1] = 0
    result[#result + 1] = 0
    result[#result + 1] = allow_at - now
    return result
  end
  redis.call('SET', KEYS[i], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
  result[#result + 1] = 1
  result[#result + 1] = math.floor((now - allow_at) / interval)
  result[#result + 1] = new_tat - now
end
return result
