import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RateLimiter } from '../../src/ontapd/rate-limit.js';
import { LimitedLog } from '../../src/ontapd/limited-log.js';
import { Logger } from '../../src/common/log.js';

/** A clock the test moves. */
function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1000;
  return { now: () => t, advance: (ms) => (t += ms) };
}

const config = { burst: 5, refillMs: 10000, maxKeys: 3 };

function admitted(limiter: RateLimiter, uid: number, kind: string, n: number): number {
  let yes = 0;
  for (let i = 0; i < n; i++) if (limiter.admit(uid, kind)) yes++;
  return yes;
}

test('a burst, then one line per refill interval; the rest is counted', () => {
  const c = clock();
  const limiter = new RateLimiter(config, c.now);
  assert.equal(admitted(limiter, 1000, 'refused', 100), 5);
  c.advance(9999);
  assert.equal(limiter.admit(1000, 'refused'), false, 'not yet a whole token back');
  c.advance(1);
  assert.equal(limiter.admit(1000, 'refused'), true, 'one token after 10 s');
  assert.equal(limiter.admit(1000, 'refused'), false);
  c.advance(35000);
  assert.equal(admitted(limiter, 1000, 'refused', 10), 3, 'three and a half tokens back after 35 s: three lines');
  assert.deepEqual(limiter.drain(), [{ uid: 1000, kind: 'refused', count: 95 + 1 + 1 + 7 }]);
  assert.deepEqual(limiter.drain(), [], 'counts are handed out once');
});

test('uids and kinds have buckets of their own', () => {
  const limiter = new RateLimiter(config, clock().now);
  assert.equal(admitted(limiter, 1000, 'refused', 50), 5);
  assert.equal(admitted(limiter, 1000, 'request-failed/bad-request', 50), 5, 'another kind of the same uid');
  assert.equal(admitted(limiter, 1001, 'refused', 50), 5, 'another uid');
  assert.equal(admitted(limiter, 0, 'refused', 3), 3, 'root');
  assert.deepEqual(limiter.drain().sort((a, b) => (a.uid ?? -1) - (b.uid ?? -1) || a.kind.localeCompare(b.kind)), [
    { uid: 1000, kind: 'refused', count: 45 },
    { uid: 1000, kind: 'request-failed/bad-request', count: 45 },
    { uid: 1001, kind: 'refused', count: 45 },
  ]);
});

test('a bucket full again is forgotten: memory holds only keys that were refused lately', () => {
  const c = clock();
  const limiter = new RateLimiter(config, c.now);
  admitted(limiter, 1000, 'refused', 20);
  admitted(limiter, 1001, 'refused', 1);
  assert.equal(limiter.size, 2);
  limiter.drain();
  assert.equal(limiter.size, 2, 'neither bucket is full yet (1001 spent one token)');
  c.advance(10000);
  limiter.drain();
  assert.equal(limiter.size, 1, '1001 is full again after 10 s and forgotten');
  c.advance(40000);
  limiter.drain();
  assert.equal(limiter.size, 0, '1000 is full again after 50 s');
  assert.equal(admitted(limiter, 1000, 'refused', 20), 5, 'a forgotten key starts with a full bucket, as it would have had');
});

test('past maxKeys, further uids share one bucket per kind; root never does', () => {
  const c = clock();
  const limiter = new RateLimiter(config, c.now);
  for (const uid of [1000, 1001, 1002]) assert.equal(admitted(limiter, uid, 'refused', 10), 5);
  // 100 more uids, 10 refusals each: 5 lines in all, not 500.
  let lines = 0;
  for (let uid = 2000; uid < 2100; uid++) lines += admitted(limiter, uid, 'refused', 10);
  assert.equal(lines, 5);
  assert.equal(admitted(limiter, 3000, 'request-failed/limit', 10), 5, 'the shared bucket is per kind');
  assert.equal(admitted(limiter, 0, 'refused', 10), 5, 'root keeps its own bucket with the table full');
  assert.equal(limiter.size, 3 + 2 + 1);
  const drained = limiter.drain();
  assert.deepEqual(drained.find((s) => s.uid === undefined && s.kind === 'refused'), { uid: undefined, kind: 'refused', count: 995 });
  assert.deepEqual(drained.find((s) => s.uid === undefined && s.kind === 'request-failed/limit'), { uid: undefined, kind: 'request-failed/limit', count: 5 });
  c.advance(50000);
  limiter.drain();
  assert.equal(limiter.size, 0);
  assert.equal(admitted(limiter, 2050, 'refused', 10), 5, 'once the table has room, a uid gets its own bucket again');
});

test('LimitedLog: lines while the bucket lasts, then one suppressed line per key with the count, on flush and on stop', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ontap-u-'));
  const path = join(dir, 'log');
  const fd = openSync(path, 'w');
  try {
    const c = clock();
    const log = new LimitedLog(new Logger('ontapd', 'info', fd), { burst: 2, refillMs: 10000, maxKeys: 4 }, c.now);
    for (let i = 0; i < 5; i++) log.write('warn', 'refused', 65534, 'refused', { conn: i, uid: 65534 });
    log.write('warn', 'request-failed', 0, 'request-failed/bad-request', { conn: 9, uid: 0 });
    log.write('debug', 'refused', 65534, 'refused', { conn: 10, uid: 65534 });
    for (let i = 20; i < 24; i++) log.write('error', 'request-failed', 65534, 'request-failed/internal', { conn: i, uid: 65534 });
    log.flush();
    c.advance(10000);
    log.write('warn', 'refused', 65534, 'refused', { conn: 11, uid: 65534 });
    log.write('warn', 'refused', 65534, 'refused', { conn: 12, uid: 65534 });
    log.stop();
    closeSync(fd);
    assert.equal(readFileSync(path, 'utf8'), [
      'ontapd: level=warn event=refused conn=0 uid=65534',
      'ontapd: level=warn event=refused conn=1 uid=65534',
      'ontapd: level=warn event=request-failed conn=9 uid=0',
      'ontapd: level=error event=request-failed conn=20 uid=65534',
      'ontapd: level=error event=request-failed conn=21 uid=65534',
      // A debug line below the threshold is neither written nor counted; errors are counted as errors.
      'ontapd: level=warn event=suppressed uid=65534 kind=refused count=3',
      'ontapd: level=error event=suppressed uid=65534 kind=request-failed/internal count=2',
      'ontapd: level=warn event=refused conn=11 uid=65534',
      'ontapd: level=warn event=suppressed uid=65534 kind=refused count=1',
      '',
    ].join('\n'));
  } finally {
    rmSync(dir, { recursive: true });
  }
});
