/**
 * Issue 11 item 5: one uid's refusals cannot flood ontapd's log. As uid 65534, 10,000 bad requests
 * one after another, then connections held up to the per-uid cap of waiting ones and 2,000 more
 * connections, each refused: ontapd logs a few lines per (uid, kind), counts the rest in
 * `event=suppressed` lines whose counts add up exactly, and root's requests in the meantime are
 * logged in full.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { TestNamespaces, sweepStaleNamespaces } from '../../helpers/netns.js';
import { TestDaemon } from '../../helpers/ontapd.js';
import { exchange } from '../../helpers/protocol.js';
import { nobodyHasPython, rawCallerArgv } from '../../helpers/raw-caller.js';
import { describeWhen, hasCommand, isRoot, kernelHasKind, missing } from '../../helpers/requirements.js';

/** ontapd's rate for refusal lines (src/ontapd/limited-log.ts): 5 at once, then 1 per 10 s. */
const BURST = 5;
const REFILL_MS = 10000;
const BAD_REQUESTS = 10000;
/** ontapd's cap on one uid's connections waiting for their request (defaultLimits.maxPendingPerUid). */
const PENDING_PER_UID = 64;
const REFUSED_CONNECTS = 2000;
/** Where in the flood root makes its requests. */
const PAUSE_AT = 1000;

type Line = Record<string, string>;

/** ontapd's log as key=value records (values here never need quotes but error=, which we skip). */
function records(log: string): Line[] {
  return log.split('\n').filter((l) => l.startsWith('ontapd: ')).map((l) => {
    const rec: Line = {};
    for (const m of l.matchAll(/(\w+)=("(?:[^"\\]|\\.)*"|\S*)/g)) rec[m[1]!] = m[2]!;
    return rec;
  });
}

const reason = missing([
  [isRoot, 'needs root (network namespaces)'],
  [() => hasCommand('ip') && hasCommand('setpriv'), 'needs iproute2 and setpriv (util-linux)'],
  [nobodyHasPython, 'needs a python3 that uid 65534 can run in /usr/local/bin, /usr/bin or /bin'],
  [() => kernelHasKind('macvtap'), 'this kernel cannot create macvtap devices'],
]);

describeWhen('hostile: refusal log lines are rate-limited per uid and kind', reason, () => {
  const nets = new TestNamespaces();
  let daemon: TestDaemon | undefined;

  before(async () => {
    sweepStaleNamespaces();
    const { host } = nets.uplink();
    daemon = new TestDaemon(host, ['up0'], ['--mode', '0666']);
    await daemon.start();
  });

  after(async () => {
    await daemon?.stop();
    daemon?.removeDir();
    nets.destroy();
  });

  test('uid 65534: 10,000 bad requests and 2,000 refused connections give a few lines and exact suppressed counts; root is logged meanwhile', async (t) => {
    const d = daemon!;
    const started = Date.now();
    const argv = rawCallerArgv(d.ns, ['flood', d.socket(), String(BAD_REQUESTS), String(PENDING_PER_UID), String(REFUSED_CONNECTS),
      JSON.stringify({ v: 1, op: 'allocate', type: 'veth' }), String(PAUSE_AT)]);
    const flood = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    flood.stdout.on('data', (b: Buffer) => (out += b.toString()));
    flood.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const exited = new Promise<number | null>((r) => flood.on('exit', (code) => r(code)));
    try {
      // Root, in the middle of the flood (it waits, PAUSE_AT bad requests through, for us to go
      // on): a bad request of its own and a real allocation, each logged.
      while (!out.includes('"paused"')) {
        if (flood.exitCode !== null) throw new Error(`the flood ended early (${flood.exitCode}): ${out} ${err}`);
        await new Promise((r) => setTimeout(r, 5));
      }
      const bad = exchange(d.socket(), { v: 1, op: 'allocate', type: 'veth' });
      assert.equal(bad.reply.error.code, 'bad-request');
      const good = exchange(d.socket(), { v: 1, op: 'allocate', type: 'macvtap' });
      assert.equal(good.reply.ok, true, JSON.stringify(good.reply));
    } finally {
      flood.stdin.end('\n');
      await exited;
    }
    assert.equal(flood.exitCode, 0, err);
    const result = JSON.parse(out.trim().split('\n').pop()!) as { codes: Record<string, number>; seconds: number };
    const badRequests = result.codes['bad-request'] ?? 0;
    const refused = result.codes.limit ?? 0;
    assert.equal(badRequests + refused, BAD_REQUESTS + REFUSED_CONNECTS, JSON.stringify(result));
    assert.ok(refused >= REFUSED_CONNECTS / 2, `most connections past the cap were refused: ${JSON.stringify(result)}`);

    // Stopping flushes the counts not yet reported.
    await d.stop();
    const elapsedMs = Date.now() - started;
    const recs = records(d.log);
    const ofNobody = recs.filter((r) => r.uid === '65534');
    const failed = ofNobody.filter((r) => r.event === 'request-failed' && r.code === 'bad-request');
    const refusedLines = ofNobody.filter((r) => r.event === 'refused');
    const suppressed = (kind: string): number[] => ofNobody.filter((r) => r.event === 'suppressed' && r.kind === kind).map((r) => Number(r.count));
    const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
    // A token bucket of BURST lines refilled one per REFILL_MS: at most this many lines in the run.
    const bound = BURST + Math.ceil(elapsedMs / REFILL_MS);
    assert.ok(failed.length <= bound, `${failed.length} bad-request lines for uid 65534 in ${elapsedMs} ms, at most ${bound}`);
    assert.ok(refusedLines.length <= bound, `${refusedLines.length} refused lines for uid 65534 in ${elapsedMs} ms, at most ${bound}`);
    assert.ok(failed.length >= BURST && refusedLines.length >= BURST, 'the first refusals of each kind are logged');
    const failedSuppressed = suppressed('request-failed/bad-request');
    const refusedSuppressed = suppressed('refused');
    assert.ok(failedSuppressed.length >= 1 && refusedSuppressed.length >= 1, 'suppressed lines for both kinds');
    assert.equal(failed.length + sum(failedSuppressed), badRequests, 'every bad request is a line or counted as suppressed');
    assert.equal(refusedLines.length + sum(refusedSuppressed), refused, 'every refused connection is a line or counted as suppressed');
    t.diagnostic(`flood: ${badRequests} bad requests and ${refused} refused connections in ${result.seconds.toFixed(2)} s; ` +
      `lines: ${failed.length} + ${refusedLines.length}; suppressed: ${failedSuppressed.join('+')} and ${refusedSuppressed.join('+')}`);
    // Root's bad request and its allocation, made during the flood, are logged.
    assert.ok(recs.some((r) => r.event === 'request-failed' && r.uid === '0' && r.code === 'bad-request'), 'root\'s bad request is logged');
    assert.ok(recs.some((r) => r.event === 'allocate' && r.uid === '0' && r.type === 'macvtap'), 'root\'s allocation is logged');
  });
});
