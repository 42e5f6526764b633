// The Lua scripts of the Redis rate-limit store. Each runs atomically in Redis, so the processes
// sharing a bucket or a count never interleave inside one update. Time is Redis's own clock
// (TIME), so machines whose clocks disagree still refill a bucket alike. Lua numbers returned to
// the client would be truncated to integers: fractions go back as strings.

/** The server clock in ms (with microseconds as the fraction). */
const NOW = `local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + tonumber(clock[2]) / 1000`;

/**
 * A token bucket in a hash (`tokens`, `at`): KEYS[1] the bucket; ARGV cost, rate per second,
 * burst, and '1' for debt. Answers the wait in ms, as the memory store computes it. The bucket
 * expires once it would be full again, since a missing bucket starts full.
 */
export const TAKE_LUA = `${NOW}
local cost = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
if tokens == nil then
  tokens = burst
else
  tokens = math.min(burst, tokens + math.max(0, now - tonumber(state[2])) * rate / 1000)
end
local wait = 0
if ARGV[4] == '1' then
  tokens = tokens - cost
  if tokens < 0 then wait = -tokens * 1000 / rate end
elseif tokens >= cost then
  tokens = tokens - cost
else
  wait = (cost - tokens) * 1000 / rate
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'at', string.format('%.17g', now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * 1000 / rate) + 1000)
return string.format('%.17g', wait)`;

/**
 * Counts a connection if fewer than the cap are open: KEYS[1] the key's counts (a hash: process
 * id → its open connections), KEYS[2] the leases (a sorted set: process id → lease end); ARGV
 * max, process id, lease ms. Renews the caller's lease, and drops the counts of processes whose
 * lease ran out (crashed, or cut off from Redis for longer than a lease). Answers 1 when counted,
 * plus 2 when the caller's own lease had run out (others may have dropped its counts).
 */
export const ACQUIRE_LUA = `${NOW}
local lease = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local renewed = redis.call('ZADD', KEYS[2], now + lease, ARGV[2]) * 2
redis.call('PEXPIRE', KEYS[2], lease * 2)
local counts = redis.call('HGETALL', KEYS[1])
local total = 0
for i = 1, #counts, 2 do
  if counts[i] == ARGV[2] or redis.call('ZSCORE', KEYS[2], counts[i]) then
    total = total + tonumber(counts[i + 1])
  else
    redis.call('HDEL', KEYS[1], counts[i])
  end
end
if total >= tonumber(ARGV[1]) then return renewed end
redis.call('HINCRBY', KEYS[1], ARGV[2], 1)
redis.call('PEXPIRE', KEYS[1], lease)
return 1 + renewed`;

/** Gives one connection back: KEYS[1] the key's counts; ARGV process id. */
export const RELEASE_LUA = `if redis.call('HINCRBY', KEYS[1], ARGV[1], -1) <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 1`;

/**
 * The periodic renewal: KEYS[1] the leases, KEYS[2…] counts of keys this process holds; ARGV
 * process id, lease ms, then per count key the process's count to write ('-': keep it, only
 * extend the hash's life). Answers 1 when the lease had run out (its counts must be written again).
 */
export const SYNC_LUA = `${NOW}
local lease = tonumber(ARGV[2])
local renewed = redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
redis.call('PEXPIRE', KEYS[1], lease * 2)
for i = 2, #KEYS do
  local count = ARGV[i + 1]
  if count ~= '-' then
    if tonumber(count) > 0 then redis.call('HSET', KEYS[i], ARGV[1], count) else redis.call('HDEL', KEYS[i], ARGV[1]) end
  end
  redis.call('PEXPIRE', KEYS[i], lease)
end
return renewed`;

/** At close: KEYS[1] the leases, KEYS[2…] counts; ARGV process id. Drops the lease and every count of the process. */
export const RETIRE_LUA = `redis.call('ZREM', KEYS[1], ARGV[1])
for i = 2, #KEYS do redis.call('HDEL', KEYS[i], ARGV[1]) end
return 1`;
