/**
 * The avahi peer harness (test/helpers/avahi.ts), proven with avahi talking to avahi: three
 * namespaces a, b, c, each with e0 on a bridge in a "wire" namespace (one link, IPv4 addresses
 * assigned here, IPv6 link-local only). avahi "alpha" in a, "beta" in b; a second "alpha" in c for
 * the conflict.
 *
 * Figures on this machine (2 cores shared with other test runs; three runs; tcpdump for the why):
 * - start(): 830-970 ms: dbus-daemon, then avahi's three probes 250 ms apart before "Server startup
 *   complete"; about 1.9-2.0 s when it has to rename after a conflict (a second round of probes).
 * - publishAddress(): 800-900 ms, the same probing.
 * - resolve of a name not in the asker's cache: about 120 ms, nearly all of it avahi deferring its
 *   first query (~100 ms); the responder answered within 0.2 ms. From cache (anything it heard
 *   announced, and avahi announces three times, 1 s then 2 s apart): 17-45 ms, no packet at all.
 * - a name nobody has: avahi's own resolver gives up after 5 s (queries at 0, 1, 3 s); the harness
 *   kills avahi-resolve at timeoutMs (1505-1511 ms for 1500).
 * - the whole file: about 12 s.
 * IPv6: each avahi has only e0's fe80:: address, and that is what -6 returns (no %scope).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { AvahiPeer, avahiMissing } from '../helpers/avahi.js';
import { TestNamespaces, eventually, ip, sweepStaleNamespaces } from '../helpers/netns.js';
import { describeWhen, hasCommand, isRoot, missing } from '../helpers/requirements.js';

const NET = '10.203.0';
const A_V4 = `${NET}.1`;
const B_V4 = `${NET}.2`;
const C_V4 = `${NET}.3`;
const WEB_V4 = `${NET}.80`;

interface AddrJson { addr_info: Array<{ family: string; local: string; scope: string; tentative?: boolean }> }

/** e0's IPv6 link-local address in ns, once it is usable (not tentative). */
function linkLocal(ns: string): string | undefined {
  const [link] = JSON.parse(ip('-n', ns, '-j', 'addr', 'show', 'dev', 'e0')) as AddrJson[];
  return link?.addr_info.find((a) => a.family === 'inet6' && a.scope === 'link' && !a.tentative)?.local;
}

/** Pids of processes whose command line mentions path (what a peer started, wherever it runs). */
function processesMentioning(path: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(path)) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await fn();
  return { value, ms: Math.round(performance.now() - t0) };
}

const reason = missing([
  [isRoot, 'needs root (network namespaces, mounts)'],
  [() => hasCommand('ip'), 'needs iproute2'],
  [() => avahiMissing() === undefined, avahiMissing() ?? ''],
]);

describeWhen('avahi as an mDNS peer in a test namespace, with a private D-Bus', reason, () => {
  const nets = new TestNamespaces();
  const peers: AvahiPeer[] = [];
  let a = '';
  let b = '';
  let c = '';
  let alpha: AvahiPeer;
  let beta: AvahiPeer;
  let alphaV6 = '';

  /** A namespace with e0 on the wire's bridge, address v4/24. */
  function station(wire: string, label: string, v4: string): string {
    const ns = nets.add(label);
    // No DAD: the link-local address is usable at once, so avahi announces it at startup.
    ip('netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.default.accept_dad=0');
    const port = `p-${label}`;
    ip('-n', ns, 'link', 'add', 'e0', 'type', 'veth', 'peer', 'name', port, 'netns', wire);
    ip('-n', wire, 'link', 'set', port, 'master', 'br0', 'up');
    ip('-n', ns, 'addr', 'add', `${v4}/24`, 'dev', 'e0');
    ip('-n', ns, 'link', 'set', 'e0', 'up');
    return ns;
  }

  function peer(ns: string, hostName: string): AvahiPeer {
    const p = new AvahiPeer({ netns: ns, interfaces: ['e0'], hostName });
    peers.push(p);
    return p;
  }

  before(async () => {
    sweepStaleNamespaces();
    const wire = nets.add('wire');
    ip('-n', wire, 'link', 'add', 'br0', 'type', 'bridge', 'mcast_snooping', '0');
    ip('-n', wire, 'link', 'set', 'br0', 'up');
    a = station(wire, 'a', A_V4);
    b = station(wire, 'b', B_V4);
    c = station(wire, 'c', C_V4);
    await eventually('link-local addresses', () => [a, b, c].every((ns) => linkLocal(ns) !== undefined));
    alphaV6 = linkLocal(a)!;
    alpha = peer(a, 'alpha');
    beta = peer(b, 'beta');
  });

  after(async () => {
    await Promise.all(peers.map((p) => p.stop()));
    nets.destroy();
  });

  test('start() returns once avahi has probed its name; hostName() is what it took', async (t) => {
    const startA = await timed(() => alpha.start());
    const startB = await timed(() => beta.start());
    t.diagnostic(`start alpha=${startA.ms}ms beta=${startB.ms}ms`);
    assert.equal(alpha.hostName(), 'alpha.local');
    assert.equal(beta.hostName(), 'beta.local');
    assert.match(alpha.log, /Joining mDNS multicast group on interface e0\.IPv4/);
    assert.match(alpha.log, /Joining mDNS multicast group on interface e0\.IPv6/);
    // The machine's static services and hosts file are covered by empty ones.
    assert.match(alpha.log, /No service file found in \/etc\/avahi\/services/);
  });

  test('beta resolves alpha.local over IPv4 to alpha\'s address', async (t) => {
    const r = await timed(() => beta.resolveName('alpha.local', 4, 5000));
    t.diagnostic(`resolve -4 alpha.local: ${r.ms}ms`);
    assert.deepEqual(r.value, [A_V4]);
  });

  test('beta resolves alpha.local over IPv6 to alpha\'s link-local address', async (t) => {
    const r = await timed(() => beta.resolveName('alpha.local', 6, 5000));
    t.diagnostic(`resolve -6 alpha.local: ${r.ms}ms -> ${r.value?.join(',')}`);
    assert.deepEqual(r.value, [alphaV6]);
  });

  test('beta resolves alpha\'s IPv4 address to alpha.local', async (t) => {
    const r = await timed(() => beta.resolveAddress(A_V4, 5000));
    t.diagnostic(`resolve -a ${A_V4}: ${r.ms}ms`);
    assert.equal(r.value, 'alpha.local');
  });

  test('a name alpha publishes is resolvable from beta, and gone after its goodbye', async (t) => {
    const pub = await timed(() => alpha.publishAddress('web.local', WEB_V4));
    assert.equal(pub.value.name, 'web.local');
    const r = await timed(() => beta.resolveName('web.local', 4, 5000));
    const back = await beta.resolveAddress(WEB_V4, 5000);
    t.diagnostic(`publish web.local: ${pub.ms}ms, resolve: ${r.ms}ms`);
    assert.deepEqual(r.value, [WEB_V4]);
    assert.equal(back, 'web.local');
    await pub.value.stop();
    // avahi withdraws the name with a TTL 0 goodbye; beta's cache keeps it 1 s more (RFC 6762 §10.1).
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(await beta.resolveName('web.local', 4, 2000), undefined);
  });

  test('a name nobody has is undefined, no later than the timeout', async (t) => {
    const r = await timed(() => beta.resolveName('nobody-here.local', 4, 1500));
    t.diagnostic(`resolve nobody-here.local: ${r.ms}ms`);
    assert.equal(r.value, undefined);
    assert.ok(r.ms < 1500 + 1000, `took ${r.ms} ms`);
    assert.equal(await beta.resolveAddress(`${NET}.99`, 1500), undefined);
  });

  test('a second alpha on the link renames itself to alpha-2; both names resolve', async (t) => {
    const gamma = peer(c, 'alpha');
    const start = await timed(() => gamma.start());
    t.diagnostic(`start with a conflict: ${start.ms}ms`);
    assert.equal(gamma.hostName(), 'alpha-2.local');
    assert.match(gamma.log, /Host name conflict, retrying with alpha-2/);
    assert.equal(alpha.hostName(), 'alpha.local');
    assert.deepEqual(await beta.resolveName('alpha-2.local', 4, 5000), [C_V4]);
    assert.deepEqual(await beta.resolveName('alpha.local', 4, 5000), [A_V4]);
  });

  test('stop() leaves no process and no temp dir', async () => {
    const dirs = peers.map((p) => p.dir);
    assert.ok(dirs.every((d) => processesMentioning(d).length > 0), 'each peer runs something before stop()');
    await Promise.all(peers.map((p) => p.stop()));
    for (const d of dirs) {
      assert.deepEqual(processesMentioning(d), [], `processes of ${d}`);
      assert.equal(existsSync(d), false, d);
    }
    for (const ns of [a, b, c]) assert.equal(ip('netns', 'pids', ns).trim(), '', `pids in ${ns}`);
  });
});
