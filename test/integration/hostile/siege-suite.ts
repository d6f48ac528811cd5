/**
 * Issue 11, the combined run: every attack of the hostile suite that can run in a loop goes on at
 * once for 20 s, each in a process of its own as an unprivileged uid of its own (one uid for all
 * would mostly test the per-uid caps: the held connections alone keep the uid at its 64 waiting,
 * and every other attack of that uid is refused at accept), while root's client allocates a
 * device and a tap of the uplink's family in turn (macvlan and macvtap on the host, ipvlan and
 * ipvtap in the VM), each lease ended at once. The client is served every time, its p99 stays
 * under 50 ms; afterwards no device or descriptor is left and ontapd is idle again.
 *
 * Not in the loop: item 9's pid race (it needs a root process to win a pid, and its whole effect
 * is the namespace the device lands in: here a descriptor of the client's namespace is sent
 * instead), 11 (a restart) and 12 (ontap-zone, another process; zone-flood measures another
 * workload's update under that flood).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { TestNamespaces, eventually, links, linksOfKind, sweepStaleNamespaces } from '../../helpers/netns.js';
import { TestDaemon } from '../../helpers/ontapd.js';
import { cpuSeconds, nobodyPython } from '../../helpers/socket-attacks.js';
import { rawHold } from '../../helpers/raw-caller.js';
import { SiegeLoop, quantile, type Family, type SiegeReport } from '../../helpers/siege.js';
import { describeWhen, hasCommand, isRoot, kernelHasKind, missing } from '../../helpers/requirements.js';

const SIEGE_S = 20;
/**
 * The bound for the client's p99 during the siege, on the host: alone its p99 is 7-9 ms
 * here, in the siege 13-18 ms. Not asserted in the VM guest, which runs under TCG: there the
 * client alone has a p50 of 30 ms and a p99 of 175 ms (in the siege 140 and 290 ms); a stall is
 * still caught there, as allocations that fail or never come (5 s timeouts).
 */
const P99_BOUND_MS = 50;
const IN_VM = process.env.ONTAP_IN_VM === '1';
/**
 * The client's rate in the siege, at least this share of its rate alone (195 in 3 s on the host,
 * 62 in the VM; in the siege 1000-1100 and 136 in 20 s): less would mean ontapd hardly serves it.
 */
const MIN_RATE_SHARE = 0.1;
const IDLE_WINDOW_MS = 2000;
/** ontapd idle uses 0-0.02 s of CPU in 2 s here; spinning on anything, a core. */
const IDLE_CPU_S = 0.1;
/**
 * Refusal lines of one attacker uid in the whole run: each (uid, kind) writes 5 at once and one
 * per 10 s (refusal-log), and one attack makes at most 4 kinds: 4 x (5 + 4) with room.
 */
const REFUSAL_LINES_PER_UID = 40;
/**
 * allocate lines of one attacker uid: leases of uids other than root write 20 at once, then one
 * per 2 s (limited-log.ts leaseRate): 20 + 10 in the siege, and a few for loops that start late.
 */
const LEASE_LINES_PER_UID = 35;
/**
 * For the attack loops to start (python3 up, its first round begun), all at once: under 1 s on the
 * host; in the TCG guest 9 s with two busy loops beside it on the host, 24 s at a load average of
 * 6-8 (seen failing at 10 s).
 */
const START_TIMEOUT_MS = IN_VM ? 60000 : 10000;
/** The attackers' uids: unprivileged, none of them anyone's on a usual system. */
const FIRST_UID = 61001;
/** Lingering closes are interrupted every 100 ms, two at a time per uid: seconds, not minutes. */
const SETTLE_MS = 20000;

const TAP: Record<Family, string> = { macvlan: 'macvtap', ipvlan: 'ipvtap' };

export function siegeSuite(family: Family): void {
const tap = TAP[family];
const python = nobodyPython();
const reason = missing([
  [isRoot, 'needs root (network namespaces)'],
  [() => hasCommand('ip') && hasCommand('setpriv') && hasCommand('unshare'), 'needs iproute2 and util-linux (setpriv, unshare)'],
  [python !== undefined, 'needs a python3 that uid 65534 can run in /usr/bin, /bin or /usr/local/bin'],
  [() => kernelHasKind(family) && kernelHasKind(tap), `this kernel cannot create ${family} and ${tap} devices${family === 'ipvlan' ? ' (run it in the VM: npm run vm -- FILE)' : ''}`],
]);

describeWhen(`hostile: all attacks at once while a client allocates (${family})`, reason, () => {
  const nets = new TestNamespaces();
  let host = '';
  let wire = '';
  let work = '';
  let client = '';
  let daemon: TestDaemon | undefined;
  let web: ChildProcess | undefined;
  const loops: SiegeLoop[] = [];

  before(async () => {
    sweepStaleNamespaces();
    ({ host, wire } = nets.uplink());
    work = nets.add('work');
    client = nets.add('client');
    daemon = new TestDaemon(host, ['up0'], ['--mode', '0666', '--family', family, '--max-per-uid', '8', '--reserve', 'db=0']);
    await daemon.start();
    // Root's named workload, whose name the squatter asks for.
    const held = await rawHold(client, daemon.socket(), { v: 1, op: 'allocate', type: family, name: 'web' }, 'root');
    assert.equal(held.reply.ok, true, JSON.stringify(held.reply));
    web = held.child;
  });

  after(async () => {
    for (const l of loops) l.kill();
    await Promise.allSettled(loops.map((l) => l.done));
    web?.kill('SIGKILL');
    await daemon?.stop();
    daemon?.removeDir();
    nets.destroy();
  });

  const asUid = (uid: number, ns: string, ...wrap: string[]) =>
    ['ip', 'netns', 'exec', ns, 'setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', ...wrap, python!];
  const asRoot = (ns: string) => ['ip', 'netns', 'exec', ns, python!];

  /** ontapd has released everything but root's `web`. */
  async function settled(): Promise<void> {
    await eventually(`no ${tap} left on the host`, () => linksOfKind(host, tap).length === 0, SETTLE_MS);
    await eventually(`no ${family} left in the attackers' namespace`, () => linksOfKind(work, family).length === 0, SETTLE_MS);
    await eventually('only web left in the client\'s namespace', () => linksOfKind(client, family).length === 1, SETTLE_MS);
  }

  test(`the client is served every time${IN_VM ? '' : ', within 50 ms (p99)'}; nothing is left afterwards; ontapd is idle again`, async (t) => {
    const d = daemon!;
    const sock = d.socket();

    // The client alone first: its normal figures, and ontapd's descriptors and CPU at rest.
    const alone = new SiegeLoop(asRoot(client), 'client', sock, 3, family);
    const base = await alone.done;
    await settled();
    await new Promise((r) => setTimeout(r, 500));
    const fdsAtRest = d.fdCount();
    const cpuAtRest = cpuSeconds(d.pid);
    await new Promise((r) => setTimeout(r, IDLE_WINDOW_MS));
    const idleBefore = cpuSeconds(d.pid) - cpuAtRest;
    const logBefore = d.log.length;

    const gateway = links(wire).find((l) => l.ifname === 'peer0')!.address!;
    const attacks: Array<[string, string[], string[]]> = [
      ['linger', [], []],
      ['hold', [], []],
      ['junk', [], []],
      ['flood', [], []],
      ['tamper', [], [gateway]],
      ['userns', ['unshare', '-Urn'], []],
      ['squat', [], ['web', 'db']],
      ['foreign', [], [`/run/netns/${client}`]],
      ['mode', [], []],
    ];
    const uidOf = new Map(attacks.map(([attack], i) => [attack, FIRST_UID + i]));
    for (const [attack, wrap, args] of attacks) loops.push(new SiegeLoop(asUid(uidOf.get(attack)!, work, ...wrap), attack, sock, SIEGE_S, family, args));
    const starting = Date.now();
    await Promise.all(loops.map((l) => l.started(START_TIMEOUT_MS)));
    t.diagnostic(`the ${loops.length} attack loops started in ${Date.now() - starting} ms`);
    const cpuSiege = cpuSeconds(d.pid);
    const legit = new SiegeLoop(asRoot(client), 'client', sock, SIEGE_S, family);
    loops.push(legit);
    const reports = new Map<string, SiegeReport>();
    for (const r of await Promise.all(loops.map((l) => l.done))) reports.set(r.attack, r);
    const siegeCpu = cpuSeconds(d.pid) - cpuSiege;

    const served = reports.get('client')!;
    const ms = served.latencies!;
    const allocations = (served.stats[`${family}-ok`] ?? 0) + (served.stats[`${tap}-ok`] ?? 0);
    t.diagnostic(`client alone: ${base.latencies!.length} allocations in 3 s, p50 ${quantile(base.latencies!, 0.5).toFixed(1)} ms, p99 ${quantile(base.latencies!, 0.99).toFixed(1)} ms`);
    t.diagnostic(`client in the siege: ${ms.length} allocations in ${SIEGE_S} s, p50 ${quantile(ms, 0.5).toFixed(1)} ms, p99 ${quantile(ms, 0.99).toFixed(1)} ms, max ${Math.max(...ms).toFixed(1)} ms; ${JSON.stringify(served.stats)}`);
    t.diagnostic(`ontapd used ${siegeCpu.toFixed(1)} s of CPU in the siege`);
    for (const [attack] of attacks) t.diagnostic(`${attack}: ${JSON.stringify(reports.get(attack)!.stats)}`);

    assert.equal(allocations, ms.length, `every allocation of the client succeeds: ${JSON.stringify(served.stats)}`);
    const expected = MIN_RATE_SHARE * (base.latencies!.length / 3) * SIEGE_S;
    assert.ok(allocations >= expected, `the client made ${allocations} allocations in ${SIEGE_S} s (alone: ${base.latencies!.length} in 3 s)`);
    if (!IN_VM) assert.ok(quantile(ms, 0.99) < P99_BOUND_MS, `the client's p99 was ${quantile(ms, 0.99).toFixed(1)} ms`);

    // Each attack ran and was answered as its own test says.
    const stats = (a: string) => reports.get(a)!.stats;
    assert.ok((stats('linger')['bad-then-lingering'] ?? 0) > 0 && (stats('linger')['bad-request'] ?? 0) > 0, 'lingering sockets were sent');
    assert.ok((stats('hold')['connected'] ?? 0) > 0, 'connections were held');
    assert.ok((stats('junk')['junk-closed'] ?? 0) > 0, 'leases were closed behind junk');
    // More than its refusal lines' burst and refills: the flood's lines must have been held back.
    assert.ok((stats('flood')['bad-request'] ?? 0) > 20, 'bad requests were flooded');
    if (family === 'macvlan') {
      assert.ok((stats('tamper')['lease-ended'] ?? 0) > 0, 'a tampered lease ended');
      assert.equal(stats('tamper')['lease-kept'], undefined, 'no tampered lease was kept');
      assert.ok((stats('userns')['forbidden'] ?? 0) > 0, 'macvlans into a user namespace were refused');
    } else {
      // An ipvtap's address is the uplink's: the kernel refuses to change it (ipvlan has no
      // ndo_set_mac_address), so there is nothing to take and nothing to restore.
      assert.equal(stats('tamper')['took-gateway-mac'], undefined, 'no ipvtap took the gateway\'s address');
      assert.ok(Object.keys(stats('tamper')).some((k) => k.startsWith('ioctl-')), 'the kernel refused the address change');
      // An ipvlan in a user namespace of the caller's is given; nesting one on it needs
      // CAP_NET_ADMIN over the uplink's namespace.
      assert.ok((stats('userns')['ok'] ?? 0) > 0, 'ipvlans into a user namespace were given');
      assert.equal(stats('userns')['nest-ok'], undefined, 'no ipvlan was nested on a leased one');
      assert.ok((stats('userns')['nest-EPERM'] ?? 0) > 0, 'nesting was refused with EPERM');
    }
    assert.ok((stats('squat')['conflict'] ?? 0) > 0 && (stats('squat')['forbidden'] ?? 0) > 0, 'held and reserved names were refused');
    assert.equal(stats('squat')['ok'], undefined, 'no name was taken');
    assert.equal(stats('foreign')['ok'], undefined, 'no device was placed by a descriptor of another namespace');
    assert.ok((stats('mode')['forbidden'] ?? 0) > 0, 'another family and a mode only root may choose were refused');
    assert.equal(stats('mode')['ok'], undefined, 'no caller chose the uplink\'s family or passthru');

    const log = d.log.slice(logBefore).split('\n');
    const above = log.filter((l) => l.startsWith('ontapd: ') && !l.includes(' level=debug '));
    const byEvent = new Map<string, number>();
    for (const l of above) {
      const e = / event=(\S+)/.exec(l)?.[1] ?? '?';
      byEvent.set(e, (byEvent.get(e) ?? 0) + 1);
    }
    t.diagnostic(`ontapd logged ${log.length} lines in the siege, ${above.length} above debug: ${JSON.stringify(Object.fromEntries(byEvent))}`);
    for (const [attack, uid] of uidOf) {
      const refusals = above.filter((l) => l.includes(` uid=${uid} `) && /event=(refused|request-failed) /.test(l)).length;
      assert.ok(refusals <= REFUSAL_LINES_PER_UID, `${refusals} refusal lines for ${attack}'s uid ${uid}`);
      const leases = above.filter((l) => l.includes(` uid=${uid} `) && / event=allocate /.test(l)).length;
      assert.ok(leases <= LEASE_LINES_PER_UID, `${leases} allocate lines for ${attack}'s uid ${uid}`);
    }
    assert.ok(above.some((l) => l.includes(`event=suppressed uid=${uidOf.get('flood')} kind=request-failed/bad-request `)), 'the flood\'s refusals past the rate were counted');

    // The attackers are gone (their never-reading peers with them): everything they caused ends.
    await settled();
    await eventually(`ontapd back to ${fdsAtRest} descriptors`, () => d.fdCount() <= fdsAtRest, SETTLE_MS)
      .catch((e: Error) => assert.fail(`${e.message}: it holds ${d.fdCount()}`));
    const cpu = cpuSeconds(d.pid);
    await new Promise((r) => setTimeout(r, IDLE_WINDOW_MS));
    const idleAfter = cpuSeconds(d.pid) - cpu;
    t.diagnostic(`ontapd at rest: ${fdsAtRest} descriptors; CPU in ${IDLE_WINDOW_MS} ms: ${idleBefore.toFixed(2)} s before, ${idleAfter.toFixed(2)} s after`);
    assert.ok(idleAfter < IDLE_CPU_S, `ontapd used ${idleAfter.toFixed(2)} s of CPU in ${IDLE_WINDOW_MS} ms after the siege`);

    // The junk loop cycles leases faster than one per 2 s (1000-8000 in 20 s on the host, 35-240 in
    // the guest): those past the rate are counted, not each written. The counts are reported every
    // 10 s and at exit, so this is checked after ontapd's exit; it holds whenever junk was given
    // more leases than the rate writes lines for (LEASE_LINES_PER_UID; a slow guest gave it 35 rounds).
    const leased = stats('junk')['leased'] ?? 0;
    await d.stop();
    const suppressed = d.log.split('\n').some((l) => l.includes(`event=suppressed uid=${uidOf.get('junk')} kind=lease `));
    t.diagnostic(`junk was given ${leased} leases; lease lines suppressed: ${suppressed}`);
    if (leased > LEASE_LINES_PER_UID) assert.ok(suppressed, `the junk loop's ${leased} leases past the rate were counted`);
  });
});
}
