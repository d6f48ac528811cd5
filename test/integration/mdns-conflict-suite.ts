/**
 * ontap-zone --mdns when names clash, against real avahi, on one LAN segment: a bridge (br0, no
 * multicast snooping) in namespace "wire"; on it two "hosts" (each a namespace with its own ontapd
 * on up0 and its own ontap-zone --mdns, its workloads in namespaces of their own: macvlan devices on
 * the host, ipvlan L2 in the VM guest, whose devices all have their uplink's MAC) and avahi peers
 * in namespaces "lan" (host name web) and "lan2" (started by one test).
 *
 * - avahi owns web.local first: the workload `web` becomes web-2.local (one event=mdns-renamed),
 *   the zone file keeps web.
 * - the workload holds srv.local first: an avahi started as host `srv` renames itself to srv-2.
 * - one workload with two links on the segment (the second a device of the same kind on the same
 *   uplink: macvlan's bridge mode, and ipvlan L2, deliver what one sends by multicast to the other,
 *   if that one has joined the group): it keeps its name on both.
 * - a1 on host A, b1 on host B: both resolve; `dup` on both hosts, one after the other and then
 *   brought up at the same moment (simultaneous probes, RFC 6762 §8.2) several times: one keeps
 *   dup.local, the other takes dup-2.local, one rename in all.
 *
 * Figures on this machine (2 cores shared with other test runs; four runs): from the workload's
 * address to avahi-resolve's answer 760-1040 ms (a random 0-250 ms, three probes 250 ms apart, then
 * the first announcement lands in avahi's cache and wakes its resolver); from `ontap` started,
 * 830-1340 ms. In every simultaneous round the probes met (one event=mdns-probe-deferred) and the
 * higher address won. The whole file: about 45 s. In the VM guest (ipvlan, TCG): from the address to
 * avahi's answer 961-1444 ms on an idle host, 1400-1580 ms beside a second guest (host load 4);
 * the whole file 86-111 s, 108-144 s beside the second guest.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { AvahiPeer, avahiMissing } from '../helpers/avahi.js';
import { TestNamespaces, eventually, ip, sweepStaleNamespaces } from '../helpers/netns.js';
import { ONTAP, TestDaemon } from '../helpers/ontapd.js';
import { TestZone } from '../helpers/zone.js';
import { describeWhen, hasCommand, isRoot, kernelHasKind, missing } from '../helpers/requirements.js';

const NET = '10.206.0';
const LAN_V4 = `${NET}.1`;
const LAN2_V4 = `${NET}.2`;
/** Simultaneous rounds of the two `dup` workloads. */
const ROUNDS = 4;
/**
 * From a workload's address to avahi resolving its name (a1, b1): 760-1040 ms seen on the host, so
 * 2 s. In the VM guest ontap-zone and avahi run under TCG: 961-1444 ms seen on an idle host, 1580
 * ms beside a second guest (host load 4), so 3 s there.
 */
const RESOLVED_BOUND_MS = process.env.ONTAP_IN_VM === '1' ? 3000 : 2000;

interface Workload {
  readonly name: string;
  readonly ns: string;
  readonly address: string;
  ifname: string;
  /** performance.now() when ontap was started and when the address was on the device. */
  startedAt: number;
  readyAt: number;
  holder: ChildProcess;
}

/** Names a zone's log says its responders for `name` established, in order. */
function established(log: string, name: string): string[] {
  return [...log.matchAll(new RegExp(`event=mdns-established .*name=${name} mdns=(\\S+)`, 'g'))].map((m) => m[1]!);
}

function renames(log: string, name: string): string[] {
  return log.split('\n').filter((l) => l.includes('event=mdns-renamed') && l.includes(` name=${name} `));
}

export function mdnsConflictSuite(kind: 'macvlan' | 'ipvlan'): void {
const reason = missing([
  [isRoot, 'needs root (network namespaces)'],
  [() => hasCommand('ip') && hasCommand('tcpdump'), 'needs iproute2 and tcpdump'],
  [() => kernelHasKind(kind), `this kernel cannot create ${kind} devices${kind === 'ipvlan' ? ' (run it in the VM: npm run vm -- FILE)' : ''}`],
  [() => avahiMissing() === undefined, avahiMissing() ?? ''],
]);

describeWhen(`ontap-zone --mdns: name conflicts with avahi and between two ontap-zones on one segment (${kind})`, reason, () => {
  const nets = new TestNamespaces();
  const peers: AvahiPeer[] = [];
  const workloads: Workload[] = [];
  const daemons: TestDaemon[] = [];
  const zones: TestZone[] = [];
  const captures: ChildProcess[] = [];
  let wire = '';
  let lan: AvahiPeer;
  let hostA: { ns: string; daemon: TestDaemon; zone: TestZone };
  let hostB: { ns: string; daemon: TestDaemon; zone: TestZone };
  let ports = 0;

  /** A namespace with e0 (or `dev`) on br0; returns it. */
  function station(label: string, dev = 'e0'): string {
    const ns = nets.add(label);
    const port = `p${++ports}`;
    ip('-n', ns, 'link', 'add', dev, 'type', 'veth', 'peer', 'name', port, 'netns', wire);
    ip('-n', wire, 'link', 'set', port, 'master', 'br0', 'up');
    ip('-n', ns, 'link', 'set', dev, 'up');
    return ns;
  }

  async function startHost(label: string, machineId: string): Promise<{ ns: string; daemon: TestDaemon; zone: TestZone }> {
    const ns = station(label, 'up0');
    // Hosts of their own: a workload named dup on each gets its own MAC (macvlan; an ipvlan has
    // its uplink's, and each host's up0 has its own) and link-local address.
    const daemon = new TestDaemon(ns, ['up0'], ['--family', kind], undefined, { machineId });
    daemons.push(daemon);
    await daemon.start();
    const zone = new TestZone(ns, ['--domain', 'example.test', '--mdns']);
    zones.push(zone);
    await zone.start();
    return { ns, daemon, zone };
  }

  /**
   * `ontap -t KIND -n NAME` on the host's uplink, in a namespace of its own, giving its device
   * ADDRESS/24. With `down`, the device is left down (no responder yet) until bringUp().
   */
  async function startWorkload(host: { ns: string; daemon: TestDaemon }, name: string, address: string, down = false): Promise<Workload> {
    const ns = nets.add(`w-${name}`);
    const script = [
      ...(down ? ['ip link set dev "$ONTAP_IFNAME" down'] : []),
      `ip addr add ${address}/24 dev "$ONTAP_IFNAME"`,
      'echo "ifname=$ONTAP_IFNAME"',
      'exec sleep 600',
    ].join(' && ');
    const startedAt = performance.now();
    const holder = spawn('ip', ['netns', 'exec', ns, process.execPath, ONTAP, '-t', kind, '-n', name, host.daemon.socket(), '--', 'sh', '-c', script],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    const w: Workload = { name, ns, address, ifname: '', startedAt, readyAt: 0, holder };
    workloads.push(w);
    let out = '';
    let err = '';
    holder.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    await new Promise<void>((resolve, reject) => {
      holder.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /ifname=(\S+)/.exec(out);
        if (m) {
          w.ifname = m[1]!;
          w.readyAt = performance.now();
          resolve();
        }
      });
      holder.on('exit', (code) => reject(new Error(`ontap -n ${name} exited with ${code}: ${err}`)));
    });
    return w;
  }

  async function stopWorkload(w: Workload, zone: TestZone): Promise<void> {
    const stoppedBefore = zone.log.split(`event=mdns-stopped`).length;
    const gone = new Promise((r) => w.holder.once('exit', r));
    w.holder.kill('SIGKILL');
    await gone;
    await eventually(`ontap-zone stopped the responder of ${w.name}`, () => zone.log.split('event=mdns-stopped').length > stoppedBefore, 5000);
  }

  /** tcpdump (-i any, inbound only) in ns; resolves once it listens. `out()` is what it printed so far. */
  /** tcpdump of what comes in on `dev` in `ns`, promiscuous (tcpdump's default on one device). */
  async function capture(ns: string, dev: string, filter: string): Promise<{ child: ChildProcess; out: () => string }> {
    const child = spawn('ip', ['netns', 'exec', ns, 'tcpdump', '-i', dev, '-Q', 'in', '-n', '-l', filter], { stdio: ['ignore', 'pipe', 'pipe'] });
    captures.push(child);
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    await eventually(`tcpdump listening in ${ns}`, () => /listening on /.test(err) || child.exitCode !== null, 15000);
    if (child.exitCode !== null) assert.fail(`tcpdump exited with ${child.exitCode}: ${err}`);
    return { child, out: () => out };
  }

  function failWithLogs(e: unknown, ...zs: TestZone[]): never {
    const logs = zs.map((z, i) => `--- zone ${i} log tail:\n${z.log.split("\n").filter((l) => l.includes("mdns")).slice(-40).join("\n")}`).join('\n');
    assert.fail(`${(e as Error).message}\n${logs}`);
  }

  before(async () => {
    sweepStaleNamespaces();
    wire = nets.add('wire');
    ip('-n', wire, 'link', 'add', 'br0', 'type', 'bridge', 'mcast_snooping', '0');
    ip('-n', wire, 'link', 'set', 'br0', 'up');
    const lanNs = station('lan');
    ip('-n', lanNs, 'addr', 'add', `${LAN_V4}/24`, 'dev', 'e0');
    hostA = await startHost('hosta', randomBytes(16).toString('hex'));
    hostB = await startHost('hostb', randomBytes(16).toString('hex'));
    lan = new AvahiPeer({ netns: lanNs, interfaces: ['e0'], hostName: 'web' });
    peers.push(lan);
    await lan.start();
    assert.equal(lan.hostName(), 'web.local');
  });

  after(async () => {
    for (const c of captures) c.kill('SIGKILL');
    for (const w of workloads) w.holder.kill('SIGKILL');
    await Promise.all(peers.map((p) => p.stop()));
    for (const z of zones) await z.stop();
    for (const d of daemons) await d.stop();
    for (const z of zones) z.removeDir();
    for (const d of daemons) d.removeDir();
    nets.destroy();
  });

  test('avahi owns web.local: the workload web becomes web-2.local (one rename logged); the zone file keeps web', async (t) => {
    const zone = hostA.zone;
    const w = await startWorkload(hostA, 'web', `${NET}.11`);
    await eventually('web established', () => established(zone.log, 'web').length > 0, 10000).catch((e) => failWithLogs(e, zone));
    assert.deepEqual(established(zone.log, 'web'), ['web-2.local']);
    const renamed = renames(zone.log, 'web');
    assert.equal(renamed.length, 1, renamed.join('\n'));
    assert.match(renamed[0]!, /from=web\.local to=web-2\.local/);
    t.diagnostic(renamed[0]!);
    assert.deepEqual(await lan.resolveName('web-2.local', 4, 3000), [w.address]);
    assert.deepEqual(await lan.resolveName('web.local', 4, 3000), [LAN_V4]);
    assert.equal(await lan.resolveAddress(w.address, 3000), 'web-2.local');
    assert.match(zone.content, new RegExp(`^\\+web\\.lan\\.example\\.test:${w.address.replaceAll('.', '\\.')}:`, 'm'));
    assert.equal(lan.hostName(), 'web.local', 'avahi kept its name');
  });

  test('the workload holds srv.local first: an avahi started as host srv renames itself to srv-2; the workload keeps srv.local', async () => {
    const zone = hostA.zone;
    const w = await startWorkload(hostA, 'srv', `${NET}.12`);
    await eventually('srv established', () => established(zone.log, 'srv').length > 0, 10000).catch((e) => failWithLogs(e, zone));
    assert.deepEqual(established(zone.log, 'srv'), ['srv.local']);
    const lan2Ns = station('lan2');
    ip('-n', lan2Ns, 'addr', 'add', `${LAN2_V4}/24`, 'dev', 'e0');
    const lan2 = new AvahiPeer({ netns: lan2Ns, interfaces: ['e0'], hostName: 'srv' });
    peers.push(lan2);
    await lan2.start();
    assert.equal(lan2.hostName(), 'srv-2.local');
    assert.match(lan2.log, /Host name conflict, retrying with srv-2/);
    // The workload defended: no rename, still srv.local, still resolving to it (from a cache that
    // has seen both, and from lan2, which has just been told).
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(renames(zone.log, 'srv'), []);
    assert.deepEqual(established(zone.log, 'srv'), ['srv.local']);
    assert.deepEqual(await lan.resolveName('srv.local', 4, 3000), [w.address]);
    assert.deepEqual(await lan2.resolveName('srv.local', 4, 3000), [w.address]);
    assert.deepEqual(await lan.resolveName('srv-2.local', 4, 3000), [LAN2_V4]);
  });

  test(`a workload with two links on the segment (${kind === 'macvlan' ? 'macvlan bridge mode' : 'ipvlan L2'}: one hears the other) keeps its name on both`, async () => {
    const zone = hostA.zone;
    // The second link: a device of the same kind on the same uplink (ipvlan: in the uplink's mode,
    // L2 bridge, which the kernel would otherwise change for every ipvlan on it) with the
    // workload's alias, moved into its namespace while the first one is down, then both brought up
    // together (simultaneous probes).
    const w = await startWorkload(hostA, 'two', `${NET}.13`, true);
    const second = `tw${process.pid % 10000}`;
    ip('-n', hostA.ns, 'link', 'add', second, 'link', 'up0', 'type', kind, 'mode', ...(kind === 'macvlan' ? ['bridge'] : ['l2', 'bridge']));
    ip('-n', hostA.ns, 'link', 'set', second, 'alias', 'two', 'netns', w.ns);
    ip('-n', w.ns, 'addr', 'add', `${NET}.14/24`, 'dev', second);
    // That the case applies: what one link sends reaches the other (else keeping the name would
    // prove nothing). Seen on the first link in promiscuous mode: the kernel hands a sibling's
    // multicast only to a device that joined the group or takes everything, and with one
    // listening socket per segment the member may be another workload's device (an earlier
    // test's still running), which hears it for ontap-zone all the same.
    // (A device that is down cannot be captured on: up first, then the capture, before the first
    // probe, which waits 0-250 ms and then for the zone to hear of the link.)
    ip('-n', w.ns, 'link', 'set', second, 'up');
    ip('-n', w.ns, 'link', 'set', w.ifname, 'up');
    const heard = await capture(w.ns, w.ifname, `udp port 5353 and src host ${NET}.14`);
    await eventually('two established on both links', () => established(zone.log, 'two').length >= 2, 10000).catch((e) => failWithLogs(e, zone));
    // Long enough for a tie-break loser to have probed again (1 s) and a rename to show.
    await new Promise((r) => setTimeout(r, 2500));
    heard.child.kill('SIGTERM');
    const net = NET.replaceAll('.', '\\.');
    const arrived = new RegExp(`^\\S+ +IP ${net}\\.14\\.5353 > 224\\.0\\.0\\.251\\.5353: `, 'm').test(heard.out());
    assert.ok(arrived,
      `nothing one link (${w.ifname} ${NET}.13, ${second} ${NET}.14) sent by multicast arrived on the other:\n${heard.out()}`);
    assert.deepEqual(renames(zone.log, 'two'), []);
    assert.deepEqual(established(zone.log, 'two'), ['two.local', 'two.local']);
    const resolved = await lan.resolveName('two.local', 4, 3000);
    assert.ok(resolved?.length === 1 && [`${NET}.13`, `${NET}.14`].includes(resolved[0]!), `two.local -> ${JSON.stringify(resolved)}`);
  });

  test('a1 on host A and b1 on host B: avahi resolves both; from workload start to resolved in about a second', async (t) => {
    const figures: string[] = [];
    for (const [host, name, address] of [[hostA, 'a1', `${NET}.21`], [hostB, 'b1', `${NET}.22`]] as const) {
      const w = await startWorkload(host, name, address);
      const resolved = await lan.resolveName(`${name}.local`, 4, 5000);
      const done = performance.now();
      assert.deepEqual(resolved, [address], `${name}.local:\n${host.zone.log.slice(-3000)}`);
      figures.push(`${name}: ${Math.round(done - w.startedAt)} ms from ontap started, ${Math.round(done - w.readyAt)} ms from its address`);
      assert.ok(done - w.readyAt < RESOLVED_BOUND_MS, `${figures.at(-1)!} (bound ${RESOLVED_BOUND_MS} ms)`);
    }
    t.diagnostic(figures.join('; '));
    for (const z of [hostA.zone, hostB.zone]) {
      assert.deepEqual(z.log.split('\n').filter((l) => l.includes('event=mdns-renamed') && / name=(a1|b1|two|srv) /.test(l)), []);
    }
    assert.equal(await lan.resolveAddress(`${NET}.22`, 3000), 'b1.local');
  });

  test('dup on host A, then on host B: A keeps dup.local, B takes dup-2.local; both resolve', async () => {
    const a = await startWorkload(hostA, 'dup', `${NET}.31`);
    await eventually('dup established on A', () => established(hostA.zone.log, 'dup').length > 0, 10000).catch((e) => failWithLogs(e, hostA.zone));
    const b = await startWorkload(hostB, 'dup', `${NET}.32`);
    await eventually('dup established on B', () => established(hostB.zone.log, 'dup').length > 0, 10000).catch((e) => failWithLogs(e, hostB.zone));
    try {
      assert.deepEqual(established(hostA.zone.log, 'dup'), ['dup.local']);
      assert.deepEqual(established(hostB.zone.log, 'dup'), ['dup-2.local']);
      assert.equal(renames(hostA.zone.log, 'dup').length, 0);
      assert.equal(renames(hostB.zone.log, 'dup').length, 1);
    } catch (e) {
      failWithLogs(e, hostA.zone, hostB.zone);
    }
    assert.deepEqual(await lan.resolveName('dup.local', 4, 3000), [a.address]);
    assert.deepEqual(await lan.resolveName('dup-2.local', 4, 3000), [b.address]);
    await stopWorkload(a, hostA.zone);
    await stopWorkload(b, hostB.zone);
  });

  test(`dup brought up on both hosts at the same moment, ${ROUNDS} times: one dup.local, one dup-2.local, one rename`, async (t) => {
    const outcomes: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      // Goodbyes from the last round have been heard (avahi drops the records a second after).
      await new Promise((r) => setTimeout(r, 1200));
      const logA = hostA.zone.log.length;
      const logB = hostB.zone.log.length;
      // The addresses change sides every round: the data decides a tie-break, not the host.
      const [low, high] = [`${NET}.31`, `${NET}.32`];
      const a = await startWorkload(hostA, 'dup', round % 2 === 0 ? low : high, true);
      const b = await startWorkload(hostB, 'dup', round % 2 === 0 ? high : low, true);
      ip('-n', a.ns, 'link', 'set', a.ifname, 'up');
      ip('-n', b.ns, 'link', 'set', b.ifname, 'up');
      const sinceA = () => hostA.zone.log.slice(logA);
      const sinceB = () => hostB.zone.log.slice(logB);
      await eventually('dup established on both', () => established(sinceA(), 'dup').length > 0 && established(sinceB(), 'dup').length > 0, 15000)
        .catch((e) => failWithLogs(e, hostA.zone, hostB.zone));
      // Time for anything late: a second round of probes, a defence, a rename.
      await new Promise((r) => setTimeout(r, 3000));
      const names = [established(sinceA(), 'dup').at(-1)!, established(sinceB(), 'dup').at(-1)!];
      const renamed = [...renames(sinceA(), 'dup'), ...renames(sinceB(), 'dup')];
      const deferred = (sinceA() + sinceB()).split('event=mdns-probe-deferred').length - 1;
      outcomes.push(`A(${a.address})=${names[0]} B(${b.address})=${names[1]} renames=${renamed.length} tie-breaks-lost=${deferred}`);
      assert.deepEqual([...names].sort(), ['dup-2.local', 'dup.local'], outcomes.join('\n'));
      assert.equal(renamed.length, 1, `${outcomes.join('\n')}\n${renamed.join('\n')}`);
      const [holderOfDup, holderOf2] = names[0] === 'dup.local' ? [a, b] : [b, a];
      // Probes that met were settled by §8.2: the lexicographically later data (the higher A) wins.
      if (deferred > 0) assert.equal(holderOfDup.address, high, outcomes.join('\n'));
      assert.deepEqual(await lan.resolveName('dup.local', 4, 3000), [holderOfDup.address]);
      assert.deepEqual(await lan.resolveName('dup-2.local', 4, 3000), [holderOf2.address]);
      await stopWorkload(a, hostA.zone);
      await stopWorkload(b, hostB.zone);
    }
    t.diagnostic(outcomes.join('; '));
  });
});
}
