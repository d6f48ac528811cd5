/**
 * ontap-zone --mdns against real peers: a workload `web` (ontap -t macvlan|ipvlan -n web, from
 * ontapd) in its own namespace on up0 (macvlan on the host, ipvlan L2 in the VM: its MAC is the
 * uplink's, shared by every workload); on the other side of the uplink (namespace "wire", peer0) a Python client
 * with the standard library (legacy unicast and QU queries), then avahi-daemon with a private D-Bus.
 * The responder answers from inside the workload's namespace, on its device.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { AvahiPeer, avahiMissing } from '../helpers/avahi.js';
import { TestNamespaces, eventually, ip, sweepStaleNamespaces } from '../helpers/netns.js';
import { TestDaemon } from '../helpers/ontapd.js';
import { TestZone } from '../helpers/zone.js';
import { startAddressedWorkload, usableLinkLocal } from '../helpers/workload.js';
import { ASK, type MdnsReply } from '../helpers/mdns-client.js';
import { LISTEN } from '../helpers/mdns-wire.js';
import { describeWhen, hasCommand, isRoot, kernelHasKind, missing } from '../helpers/requirements.js';

/**
 * The bound from `ip addr add` to the announcement on the wire, on the host (16-72 ms seen
 * in bench/mdns on a loaded machine). In the VM guest, under TCG, node runs 20 times slower and the
 * same path took 178 ms once on a loaded host: there the bound is 1 s (a goodbye-less, unannounced
 * change would show only when a peer asks: never, in this test).
 */
const ANNOUNCE_BOUND_MS = process.env.ONTAP_IN_VM === '1' ? 1000 : 100;
const NET = '10.204.0';
const PEER = `${NET}.1`;
const WEB = `${NET}.5`;
const WEB_ADDED = `${NET}.6`;
const WEB3 = `${NET}.7`;


type Reply = MdnsReply;

export function mdnsAvahiSuite(family: 'macvlan' | 'ipvlan'): void {
const reason = missing([
  [isRoot, 'needs root (network namespaces)'],
  [() => hasCommand('ip') && hasCommand('python3'), 'needs iproute2 and python3'],
  [() => kernelHasKind(family), `this kernel cannot create ${family} devices${family === 'ipvlan' ? ' (run it in the VM: npm run vm -- FILE)' : ''}`],
  [() => avahiMissing() === undefined, avahiMissing() ?? ''],
]);

describeWhen(`ontap-zone --mdns: NAME.local by multicast DNS, to real peers (${family})`, reason, () => {
  const nets = new TestNamespaces();
  let host = '';
  let wire = '';
  let work = '';
  let daemon: TestDaemon | undefined;
  let zone: TestZone | undefined;
  let avahi: AvahiPeer | undefined;
  let holder: ChildProcess | undefined;
  let ifname = '';
  let linkLocal = '';

  function ask(mode: 'legacy' | 'qu', name: string, type: number): Reply | null {
    const r = spawnSync('ip', ['netns', 'exec', wire, 'python3', '-I', '-c', ASK, mode, name, String(type), '4', PEER], { encoding: 'utf8', timeout: 10000 });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as Reply | null;
  }

  /** `ontap -t FAMILY -n web` in `work`, giving its device WEB; resolves once the address is there. */
  async function startWorkload(): Promise<void> {
    ({ holder, ifname } = await startAddressedWorkload(work, family, 'web', daemon!.socket(), `${WEB}/24`));
    linkLocal = await usableLinkLocal(['ip', 'netns', 'exec', work]);
  }

  before(async () => {
    sweepStaleNamespaces();
    ({ host, wire } = nets.uplink());
    work = nets.add('work');
    ip('-n', wire, 'addr', 'add', `${PEER}/24`, 'dev', 'peer0');
    daemon = new TestDaemon(host, ['up0'], ['--family', family]);
    await daemon.start();
    zone = new TestZone(host, ['--domain', 'example.test', '--mdns']);
    await zone.start();
    await startWorkload();
    await eventually('the responder established web.local', () => /event=mdns-established .*mdns=web\.local/.test(zone!.log), 5000)
      .catch((e: Error) => assert.fail(`${e.message}\n${zone!.log.slice(-3000)}`));
  });

  after(async () => {
    holder?.kill('SIGKILL');
    await avahi?.stop();
    await zone?.stop();
    await daemon?.stop();
    zone?.removeDir();
    daemon?.removeDir();
    nets.destroy();
  });

  test('a legacy unicast query (source port not 5353) gets a unicast answer with its ID, its question, TTL <= 10', () => {
    const r = ask('legacy', 'web.local', 1);
    assert.ok(r, `no answer:\n${zone!.log.slice(-2000)}`);
    assert.equal(r.from[0], WEB);
    assert.equal(r.id, 0x5a5a);
    assert.deepEqual(r.questions, ['web.local']);
    assert.deepEqual(r.answers.map((a) => [a.type, a.data]), [[1, WEB]]);
    assert.ok(r.answers.every((a) => a.ttl <= 10 && !a.cacheFlush));
  });

  test('a QU query gets a unicast answer to port 5353 (the name was multicast within a quarter of its TTL)', () => {
    const r = ask('qu', 'web.local', 28);
    assert.ok(r, 'no unicast answer');
    assert.equal(r.from[0], WEB);
    assert.deepEqual(r.answers.map((a) => [a.type, a.data]), [[28, linkLocal]]);
    assert.ok(r.answers.every((a) => a.cacheFlush && a.ttl === 120));
  });

  test('avahi resolves web.local (A and AAAA) and the address back to web.local', async () => {
    avahi = new AvahiPeer({ netns: wire, interfaces: ['peer0'], hostName: 'peer' });
    await avahi.start();
    assert.deepEqual(await avahi.resolveName('web.local', 4, 3000), [WEB]);
    assert.deepEqual(await avahi.resolveName('web.local', 6, 3000), [linkLocal]);
    assert.equal(await avahi.resolveAddress(WEB, 3000), 'web.local');
  });

  test('SIGUSR1: one line per responder with the name it answers for, its state and what it listens on; no send failed', async () => {
    process.kill(zone!.pid, 'SIGUSR1');
    // The only device of its segment listens for both families.
    await eventually('the status lines', () => /event=mdns-status nsid=\d+ ifname=\S+ name=web mdns=web\.local state=established listens=4,6/.test(zone!.log), 5000)
      .catch((e: Error) => assert.fail(`${e.message}\n${zone!.log.slice(-2000)}`));
    // sendFailed=0: nothing is sent on a family the link has no source address of yet (IPv6 during DAD).
    assert.match(zone!.log, /event=status responders=1 segments=1 listeners=2 received=\d+ undecodable=0 offLink=\d+ sent=\d+ sendFailed=0 dispatched=\d+/);
  });

  test(`an address added in the workload is announced within ${ANNOUNCE_BOUND_MS} ms (unasked), and avahi has it`, async () => {
    const listener = spawn('ip', ['netns', 'exec', wire, 'python3', '-I', '-c', LISTEN, PEER, '1.5'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    listener.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise((r) => listener.on('exit', r));
    try {
      await eventually('the listener is ready', () => out.startsWith('ready\n'), 5000);
      const added = process.hrtime.bigint();
      ip('-n', work, 'addr', 'add', `${WEB_ADDED}/32`, 'dev', ifname);
      await exited;
      const heard = out.trim().split('\n').slice(1).map((l) => JSON.parse(l) as Reply & { ns: number });
      const announcement = heard.find((m) => (m.flags & 0x8000) !== 0 && m.answers.some((a) => a.type === 1 && a.data === WEB_ADDED && a.ttl > 0));
      assert.ok(announcement, `no announcement of ${WEB_ADDED}: ${JSON.stringify(heard)}`);
      const ms = Number(BigInt(announcement.ns) - added) / 1e6;
      assert.ok(ms < ANNOUNCE_BOUND_MS, `announced ${ms.toFixed(1)} ms after the address was added`);
      assert.ok(announcement.answers.some((a) => a.type === 1 && a.data === WEB && a.cacheFlush), 'the whole set, with cache-flush');
    } finally {
      listener.kill('SIGKILL');
    }
    assert.equal(await avahi!.resolveAddress(WEB_ADDED, 3000), 'web.local');
  });

  test('the uplink loses its carrier and gets it back: the responder leaves the link, then probes and announces anew (§13); avahi resolves it', async () => {
    const established = () => zone!.log.match(/event=mdns-established .*name=web mdns=web\.local/g)?.length ?? 0;
    const before = established();
    const from = zone!.log.length;
    // peer0 down: up0 (a veth) has no carrier, nor has its ${family} device in the workload.
    ip('-n', wire, 'link', 'set', 'peer0', 'down');
    try {
      await eventually('the responder left the link', () => /event=mdns-stopped .*name=web reason=unpublished/.test(zone!.log.slice(from)), 3000)
        .catch((e: Error) => assert.fail(`${e.message}\n${zone!.log.slice(from)}`));
      assert.equal(established(), before);
    } finally {
      ip('-n', wire, 'link', 'set', 'peer0', 'up');
    }
    await eventually('web.local probed and established again', () => established() === before + 1, 5000)
      .catch((e: Error) => assert.fail(`${e.message}\n${zone!.log.slice(from)}`));
    const resolved = await avahi!.resolveName('web.local', 4, 5000);
    // avahi-resolve prints one of the name's addresses.
    assert.ok(resolved !== undefined && resolved.length > 0 && resolved.every((a) => a === WEB || a === WEB_ADDED),
      `avahi resolves web.local after the carrier came back: ${JSON.stringify(resolved)}`);
  });

  test('a workload whose command ends (exit 0): avahi forgets its name within a second', async () => {
    const ns = nets.add('work3');
    const w = await startAddressedWorkload(ns, family, 'web3', daemon!.socket(), `${WEB3}/24`, { untilStdinCloses: true });
    const exited = new Promise((r) => w.holder.once('exit', r));
    try {
      await eventually('web3.local established', () => /event=mdns-established .*name=web3 mdns=web3\.local/.test(zone!.log), 10000)
        .catch((e: Error) => assert.fail(`${e.message}\n${zone!.log.slice(-2000)}`));
      assert.deepEqual(await avahi!.resolveName('web3.local', 4, 3000), [WEB3]);
      const from = zone!.log.length;
      w.holder.stdin!.end();
      await exited;
      assert.equal(w.holder.exitCode, 0);
      const ended = performance.now();
      await eventually('ontap-zone said goodbye', () => /event=mdns-stopped .*name=web3 /.test(zone!.log.slice(from)), 3000);
      const goodbyeMs = performance.now() - ended;
      await new Promise((r) => setTimeout(r, Math.max(0, 1000 - goodbyeMs)));
      assert.equal(await avahi!.resolveName('web3.local', 4, 1500), undefined,
        `avahi still resolves web3.local a second after the workload ended (goodbye seen ${goodbyeMs.toFixed(0)} ms after)`);
    } finally {
      w.holder.kill('SIGKILL');
    }
  });

  test('the workload killed (SIGKILL): avahi forgets web.local within a second (a goodbye, not its 120 s cache)', async () => {
    const before = await avahi!.resolveName('web.local', 4, 3000);
    assert.ok(before !== undefined && before.every((a) => a === WEB || a === WEB_ADDED), `resolved before: ${JSON.stringify(before)}`);
    const from = zone!.log.length;
    holder!.kill('SIGKILL');
    const killed = performance.now();
    await eventually('ontap-zone said goodbye', () => /event=mdns-stopped .*name=web /.test(zone!.log.slice(from)), 3000);
    const goodbyeMs = performance.now() - killed;
    await new Promise((r) => setTimeout(r, Math.max(0, 1000 - goodbyeMs)));
    assert.equal(await avahi!.resolveName('web.local', 4, 1500), undefined,
      `avahi still resolves web.local a second after the workload died (goodbye seen in the log ${goodbyeMs.toFixed(0)} ms after the kill):\n${zone!.log.split('\n').filter((l) => /mdns|link/.test(l)).slice(-12).join('\n')}\n${daemon!.log.split('\n').slice(-6).join('\n')}`);
  });
});
}
