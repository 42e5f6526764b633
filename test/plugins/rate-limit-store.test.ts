// The store contract, run on both stores: the memory store (one process) and the Redis store (a
// real redis-server); then what only the Redis store has: sharing between processes, a crashed
// process's counts expiring, and Redis down, slow or back.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import test, { type ExecutionContext } from 'ava';
import { createStats, type ProxyStats } from '../../src/core/stats.js';
import { RedisRateLimitStore, type RedisStoreOptions } from '../../src/plugins/rate-limit-redis.js';
import { MemoryRateLimitStore, type RateLimitStore } from '../../src/plugins/rate-limit-store.js';
import { RecordingLogger } from '../helpers/access-log.js';
import { ROOT } from '../helpers/net.js';
import { hasRedis, NO_REDIS, startRedis, type RedisServer } from '../helpers/redis.js';

let redis: RedisServer | undefined;
let prefixes = 0;

test.before(async () => {
  if (hasRedis) redis = await startRedis();
});
test.after.always(async () => {
  await redis?.close();
});

/** A test that needs redis-server: skipped, saying so in its title, when it is not installed. */
const redisTest = (title: string, body: (t: ExecutionContext) => Promise<void>) =>
  hasRedis ? test.serial(title, body) : test.skip(`${title} — skipped: ${NO_REDIS}`, body);

/** A Redis store on the test server with keys of its own (a fresh prefix), and what it reports. */
function redisStore(options: Partial<RedisStoreOptions> = {}, prefix = `t${++prefixes}:`) {
  const logger = new RecordingLogger();
  const stats: ProxyStats = createStats();
  const store = new RedisRateLimitStore({ url: redis!.url, prefix, ...options }, { logger, stats });
  return { store, logger, stats, prefix };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Asks `check` until it answers true, at most 100 times 50 ms apart; answers whether it did. */
async function eventually(check: () => Promise<boolean>): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if (await check()) return true;
    await sleep(50);
  }
  return false;
}

interface Kind {
  name: string;
  needsRedis: boolean;
  make(): RateLimitStore;
}

const KINDS: Kind[] = [
  { name: 'MemoryRateLimitStore', needsRedis: false, make: () => new MemoryRateLimitStore() },
  // A call slower than timeoutMs is answered by onError ("allow": 0), which would read as a
  // token given: on a loaded machine the 50 ms default is too short for the contract's sake.
  { name: 'RedisRateLimitStore', needsRedis: true, make: () => redisStore({ timeoutMs: 5000 }).store },
];

for (const kind of KINDS) {
  const contract = (title: string, body: (t: ExecutionContext, store: RateLimitStore) => Promise<void>) => {
    const run = async (t: ExecutionContext) => {
      const store = kind.make();
      try {
        await body(t, store);
      } finally {
        await store.close?.();
      }
    };
    if (kind.needsRedis) redisTest(`${kind.name}: ${title}`, run);
    else test(`${kind.name}: ${title}`, run);
  };
  const take = (store: RateLimitStore, key: string, cost: number, rate: number, burst: number, debt = false) =>
    store.take(key, cost, rate, burst, performance.now(), debt);

  contract('a bucket starts full with burst tokens, then answers the ms until the next one and takes nothing', async (t, store) => {
    // 0.2/s: a token every 5 s, so a loaded machine (the whole suite at once, Redis round trips)
    // cannot let one come back between these calls and turn a refusal into a pass.
    t.is(await take(store, 'a', 1, 0.2, 2), 0);
    t.is(await take(store, 'a', 1, 0.2, 2), 0);
    const wait = await take(store, 'a', 1, 0.2, 2);
    t.true(wait > 0 && wait <= 5000, `one token comes back within 5 s at 0.2/s, answered ${wait}`);
    const again = await take(store, 'a', 1, 0.2, 2);
    t.true(again > 0 && again <= wait, `a refusal takes nothing: ${again} ≤ ${wait}`);
    t.true((await take(store, 'a', 3, 0.2, 2)) > 0, 'more than the burst is never there');
  });

  contract('tokens come back at the rate', async (t, store) => {
    // 2/s: a token every 500 ms, far more than two calls take even on a loaded machine.
    t.is(await take(store, 'r', 1, 2, 1), 0);
    const wait = await take(store, 'r', 1, 2, 1);
    t.true(wait > 0 && wait <= 500, `answered ${wait}`);
    await sleep(wait + 30);
    t.is(await take(store, 'r', 1, 2, 1), 0, 'the token is back after the wait it answered');
  });

  contract('every key has a bucket of its own', async (t, store) => {
    t.is(await take(store, 'k1', 1, 1, 1), 0);
    t.true((await take(store, 'k1', 1, 1, 1)) > 0);
    t.is(await take(store, 'k2', 1, 1, 1), 0);
  });

  contract('debt: the cost is always taken, and the answer is the time until the balance is back to zero', async (t, store) => {
    t.is(await take(store, 'small', 50, 100, 100, true), 0, 'within the bucket: no wait');
    const start = performance.now();
    const first = await take(store, 'bytes', 300, 100, 100, true);
    t.true(first >= 1900 && first <= 2300, `200 over at 100/s: about 2000 ms, answered ${first}`);
    const second = await take(store, 'bytes', 300, 100, 100, true);
    // The bucket refills while the calls run: a loaded machine may take a while between them.
    const between = performance.now() - start;
    t.true(second >= first + 2900 - between && second <= first + 3300, `300 more: about 3000 ms more, answered ${second} after ${first}`);
  });

  contract('connections are counted up to the cap and given back', async (t, store) => {
    t.true(await store.acquire('ip:a', 2));
    t.true(await store.acquire('ip:a', 2));
    t.false(await store.acquire('ip:a', 2), 'the third is over the cap');
    t.true(await store.acquire('ip:b', 2), 'another key counts apart');
    t.deepEqual(
      new Map(store.connections),
      new Map([
        ['ip:a', 2],
        ['ip:b', 1],
      ]),
    );
    store.release('ip:a');
    t.is(store.connections.get('ip:a'), 1);
    t.true(await store.acquire('ip:a', 2), 'a connection given back frees its place');
    for (const key of ['ip:a', 'ip:a', 'ip:b']) store.release(key);
    t.is(store.connections.size, 0, 'a key leaves when its count is zero');
  });
}

test('MemoryRateLimitStore answers synchronously: no promise on the hot path', (t) => {
  const store = new MemoryRateLimitStore();
  try {
    t.is(typeof store.take('a', 1, 1, 1, 0), 'number');
    t.is(typeof store.take('b', 10, 1, 1, 0, true), 'number');
    t.is(typeof store.acquire('c', 1), 'boolean');
  } finally {
    store.close();
  }
});

redisTest('RedisRateLimitStore: two stores (two processes) share one bucket and one connection count', async (t) => {
  const a = redisStore({}, 'shared1:');
  const b = redisStore({}, 'shared1:');
  try {
    t.is(await a.store.take('global:requests', 1, 1, 1, performance.now()), 0);
    t.true((await b.store.take('global:requests', 1, 1, 1, performance.now())) > 0, "b sees a's token gone");
    t.true(await a.store.acquire('global', 1));
    t.false(await b.store.acquire('global', 1), "a's connection counts for b");
    a.store.release('global');
    // The release goes on a's connection, b's acquire on its own: b retries until it lands after it.
    t.true(await eventually(() => b.store.acquire('global', 1)), "once a gave it back, b's is counted");
    t.is(b.store.connections.get('global'), 1);
    t.is(a.stats.rateLimitStoreErrors + b.stats.rateLimitStoreErrors, 0);
  } finally {
    await a.store.close();
    await b.store.close();
  }
});

redisTest("RedisRateLimitStore: a crashed process's connection counts are dropped once its lease runs out", async (t) => {
  // A real process holds two connections, then is killed: it neither gives them back nor renews its lease.
  const script = `
    import { RedisRateLimitStore } from './dist/src/plugins/rate-limit-redis.js';
    import { createStats } from './dist/src/core/stats.js';
    import { SilentLogger } from './dist/src/core/logger.js';
    const store = new RedisRateLimitStore({ url: ${JSON.stringify(redis?.url)}, prefix: 'crash:', connectionLeaseMs: 300 }, { logger: new SilentLogger(), stats: createStats() });
    await store.ready();
    const counted = [await store.acquire('ip:c', 2), await store.acquire('ip:c', 2)];
    console.log(JSON.stringify(counted));
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const survivor = redisStore({ connectionLeaseMs: 300 }, 'crash:');
  try {
    const [line] = (await Promise.race([once(child.stdout, 'data'), once(child, 'exit')])) as [Buffer | number];
    t.is(String(line).trim(), '[true,true]', 'the child counted two connections');
    t.false(await survivor.store.acquire('ip:c', 2), "the live child's connections count");
    child.kill('SIGKILL');
    await once(child, 'exit');
    t.true(await eventually(() => survivor.store.acquire('ip:c', 2)), "once the child's lease ran out, its counts no longer count");
    t.true(await survivor.store.acquire('ip:c', 2), 'both of its places are free');
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await survivor.store.close();
  }
});

redisTest('RedisRateLimitStore: close gives the counts back at once', async (t) => {
  const a = redisStore({}, 'close1:');
  const b = redisStore({}, 'close1:');
  try {
    t.true(await a.store.acquire('ip:x', 1));
    t.false(await b.store.acquire('ip:x', 1));
    await a.store.close();
    t.true(await b.store.acquire('ip:x', 1), 'no lease to wait for');
  } finally {
    await a.store.close();
    await b.store.close();
  }
});

redisTest('RedisRateLimitStore: calls made while the first connection is under way wait for it, then use Redis', async (t) => {
  const { store, stats } = redisStore();
  try {
    // No await of ready(): the very first call.
    t.is(await store.take('first', 1, 1, 1, performance.now()), 0);
    t.true((await store.take('first', 1, 1, 1, performance.now())) > 0);
    t.is(stats.rateLimitStoreErrors, 0);
  } finally {
    await store.close();
  }
});

redisTest('RedisRateLimitStore: a Redis that does not answer costs a call at most timeoutMs, then onError answers', async (t) => {
  const { store, stats, logger } = redisStore({ timeoutMs: 100, onError: 'deny' });
  await store.ready();
  redis!.pause();
  try {
    t.is(await store.take('slow', 1, 1, 1, performance.now()), 1000, '"deny": a refusal, Retry-After 1 s');
    t.false(await store.acquire('ip:slow', 5), '"deny": not counted');
    t.is(stats.rateLimitStoreErrors, 2);
    t.is(logger.warnings.length, 1, 'one warning for both');
    t.regex(logger.warnings[0]!, /Redis store call failed; onError "deny"/);
  } finally {
    redis!.resume();
    await store.close();
  }
});

redisTest('RedisRateLimitStore: Redis down, each onError answers; back on the same port, Redis is used again and counts are written back', async (t) => {
  const allow = redisStore({ onError: 'allow' }, 'down:');
  const deny = redisStore({ onError: 'deny' }, 'down:');
  const local = redisStore({ onError: 'local' }, 'down:');
  const stores = [allow, deny, local];
  try {
    await Promise.all(stores.map(({ store }) => store.ready()));
    await redis!.stop();
    const now = () => performance.now();
    t.is(await allow.store.take('k', 1, 1, 1, now()), 0);
    t.is(await allow.store.take('k', 1, 1, 1, now()), 0, '"allow": never refused');
    t.is(await deny.store.take('k', 1, 1, 1, now()), 1000, '"deny": refused');
    t.is(await local.store.take('k', 1, 1, 1, now()), 0);
    t.true((await local.store.take('k', 1, 1, 1, now())) > 0, '"local": a bucket in this process');
    t.true(await allow.store.acquire('ip:held', 1), '"allow": counted here only');
    t.false(await deny.store.acquire('ip:held', 1));
    t.true(await local.store.acquire('ip:l', 1));
    t.false(await local.store.acquire('ip:l', 1), '"local": the cap counted in this process');
    t.is(allow.stats.rateLimitStoreErrors, 3);
    t.is(allow.logger.warnings.length, 1, 'warned once for three failures');

    await redis!.start();
    // ioredis reconnects on its own (within about 2 s); poll until a call goes through.
    const answered = async () => {
      const errors = deny.stats.rateLimitStoreErrors;
      await deny.store.take('probe', 1, 1000, 1000, now());
      return deny.stats.rateLimitStoreErrors === errors;
    };
    t.true(await eventually(answered), 'Redis answers again');
    t.is(await deny.store.take('again', 1, 1, 1, now()), 0);
    t.true((await allow.store.take('again', 1, 1, 1, now())) > 0, 'the budget is shared again');
    // The connection "allow" let through while Redis was down is written back to the fresh Redis.
    const refused = async () => {
      if (!(await deny.store.acquire('ip:held', 1))) return true;
      deny.store.release('ip:held');
      return false;
    };
    t.true(await eventually(refused), "allow's connection counts in Redis again");
  } finally {
    await redis!.start();
    for (const { store } of stores) await store.close();
  }
});
