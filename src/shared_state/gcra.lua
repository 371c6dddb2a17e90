-- GCRA for one key, the clock being Redis's own (TIME), so every replica
-- counts on one timeline.
--
-- KEYS[1]   the limited key; its value is the theoretical arrival time (TAT)
--           in microseconds, and it expires when the quota is whole again.
-- ARGV[1]   emission interval: microseconds per request (1e6 / per second)
-- ARGV[2]   burst
-- ARGV[3]   optional: "now" in microseconds, for tests with a set clock
--
-- Returns {1, remaining, reset_us} when admitted (reset: until the whole
-- burst is back), {0, 0, retry_after_us} when refused.
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now
if ARGV[3] then
  now = tonumber(ARGV[3])
else
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000000 + tonumber(time[2])
end
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then
  tat = now
end
local new_tat = tat + interval
local allow_at = new_tat - interval * burst
if allow_at > now then
  return {0, 0, allow_at - now}
end
local ttl_ms = math.ceil((new_tat - now) / 1000)
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', ttl_ms)
return {1, math.floor((now - allow_at) / interval), new_tat - now}
