/**
 * A DHCP client's rtnetlink requests against the running kernel, through a RouteSocket opened
 * inside a throwaway workload namespace W (veth wl0 in W <-> gw0 in G, the "network"): an IPv4
 * address with lease lifetimes, its renewal, the default route via the gateway. Nothing here
 * touches the test process's own namespace: every request goes over the socket inside W.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync } from 'node:fs';
import { native } from '../../src/native/index.js';
import { NetlinkError } from '../../src/netns/netlink/index.js';
import { RouteSocket } from '../../src/netns/route-socket.js';
import { isDefaultRoute } from '../../src/netns/rtnl/index.js';
import { AddressFlag, RouteProtocol, RouteScope, RouteTable, RouteType, type Address, type AddressCreate, type RouteCreate } from '../../src/netns/types.js';
import { eventually, ip, sweepStaleNamespaces, TestNamespaces } from '../helpers/netns.js';
import { describeWhen, hasCommand, isRoot, missing } from '../helpers/requirements.js';

function addonReady(): boolean {
  try {
    const n = native() as unknown as Record<string, unknown>;
    return ['socket', 'bindNetlink', 'sendmsg', 'recvmsg', 'setTimeouts', 'socketInNetns'].every((f) => typeof n[f] === 'function');
  } catch {
    return false;
  }
}

const reason = missing([
  [isRoot, 'needs root (network namespaces)'],
  [() => hasCommand('ip'), 'needs iproute2'],
  [addonReady, 'the native addon is not built or lacks socketInNetns'],
]);

interface AddrInfoJson {
  family: string;
  local: string;
  prefixlen: number;
  broadcast?: string;
  dynamic?: boolean;
  deprecated?: boolean;
  valid_life_time: number;
  preferred_life_time: number;
}

interface RouteJson {
  dst: string;
  gateway?: string;
  dev: string;
  protocol?: string;
  scope?: string;
}

function ipJson<T>(ns: string, ...args: string[]): T[] {
  return JSON.parse(ip('-n', ns, '-j', ...args)) as T[];
}

/** The IPv4 addresses iproute2 sees on wl0 inside W. */
function ipAddrs(ns: string): AddrInfoJson[] {
  const [link] = ipJson<{ addr_info: AddrInfoJson[] }>(ns, '-4', 'addr', 'show', 'dev', 'wl0');
  return link?.addr_info ?? [];
}

/** A lifetime read back a moment after it was set: the kernel counts down in whole seconds. */
function near(got: number | undefined, want: number, what: string): void {
  assert.ok(got !== undefined && got <= want && got >= want - 2, `${what}: ${got}, expected ${want} (or up to 2 s less)`);
}

describeWhen('addresses with lifetimes and routes, inside a namespace', reason, () => {
  const spaces = new TestNamespaces();
  let W = '';
  let fdW = -1;
  let rtnl: RouteSocket | undefined;
  let wl0 = 0;

  const lease = (extra: Partial<AddressCreate> = {}): AddressCreate => ({
    ifindex: wl0, family: 4, address: '10.1.2.3', prefixLength: 24, broadcast: '10.1.2.255', validSeconds: 30, preferredSeconds: 20, ...extra,
  });
  const defaultRoute = (gateway = '10.1.2.1'): RouteCreate => ({ family: 4, gateway, oif: wl0, protocol: RouteProtocol.dhcp });
  const mine = (s: RouteSocket, address = '10.1.2.3'): Address[] =>
    s.dumpAddresses({ family: 4, ifindex: wl0 }).filter((a) => a.address === address);
  const sock = (): RouteSocket => {
    assert.ok(rtnl, 'the socket inside W was opened in before()');
    return rtnl;
  };

  before(() => {
    sweepStaleNamespaces();
    W = spaces.add('dhcp');
    const G = spaces.add('net');
    spaces.veth(W, 'wl0', G, 'gw0');
    fdW = openSync(`/run/netns/${W}`, 'r');
    const host = RouteSocket.open();
    try {
      rtnl = host.openInNamespace(fdW);
    } finally {
      host.close();
    }
    wl0 = rtnl.getLink({ ifname: 'wl0' }).ifindex;
  });

  after(() => {
    rtnl?.close();
    if (fdW >= 0) closeSync(fdW);
    spaces.destroy();
  });

  test('addAddress with valid 30 s, preferred 20 s: read back by dumpAddresses and by ip -j addr', () => {
    const s = sock();
    s.addAddress(lease());
    const [a, ...more] = mine(s);
    assert.equal(more.length, 0);
    assert.equal(a?.prefixLength, 24);
    assert.equal(a?.ifindex, wl0);
    near(a?.validLifetime, 30, 'validLifetime');
    near(a?.preferredLifetime, 20, 'preferredLifetime');
    assert.equal((a?.flags ?? 0) & AddressFlag.permanent, 0, 'an address with lifetimes is not permanent');
    const [shown] = ipAddrs(W).filter((x) => x.local === '10.1.2.3');
    assert.equal(shown?.prefixlen, 24);
    assert.equal(shown?.broadcast, '10.1.2.255');
    assert.equal(shown?.dynamic, true);
    near(shown?.valid_life_time, 30, 'ip valid_life_time');
    near(shown?.preferred_life_time, 20, 'ip preferred_life_time');
    assert.throws(() => s.addAddress(lease()), (e: unknown) => e instanceof NetlinkError && e.code === 'EEXIST');
  });

  test('replaceAddress with longer lifetimes (a renewal): the same address, its lifetimes move', () => {
    const s = sock();
    s.replaceAddress(lease({ validSeconds: 3600, preferredSeconds: 1800 }));
    const got = mine(s);
    assert.equal(got.length, 1, 'replaced, not added beside');
    near(got[0]?.validLifetime, 3600, 'validLifetime');
    near(got[0]?.preferredLifetime, 1800, 'preferredLifetime');
    const shown = ipAddrs(W).filter((x) => x.local === '10.1.2.3');
    assert.equal(shown.length, 1);
    near(shown[0]?.valid_life_time, 3600, 'ip valid_life_time');
    near(shown[0]?.preferred_life_time, 1800, 'ip preferred_life_time');
    // Shorter again (a server may shorten a lease): replace follows.
    s.replaceAddress(lease({ validSeconds: 600, preferredSeconds: 300 }));
    near(mine(s)[0]?.validLifetime, 600, 'validLifetime after a shorter renewal');
  });

  test('the default route via the gateway: dumpRoutes and ip -j route see it, a second one is EEXIST', () => {
    const s = sock();
    assert.deepEqual(s.dumpRoutes({ family: 4 }).filter(isDefaultRoute), [], 'a fresh namespace has no default route');
    // The address's prefix route, which makes the gateway reachable.
    const prefix = s.dumpRoutes({ family: 4 }).find((r) => r.dst === '10.1.2.0');
    assert.deepEqual(
      [prefix?.dstLength, prefix?.oif, prefix?.protocol, prefix?.scope, prefix?.prefsrc],
      [24, wl0, RouteProtocol.kernel, RouteScope.link, '10.1.2.3'],
    );

    s.addRoute(defaultRoute());
    const defaults = s.dumpRoutes({ family: 4 }).filter(isDefaultRoute);
    assert.deepEqual(defaults, [{
      family: 4, dst: undefined, dstLength: 0, gateway: '10.1.2.1', oif: wl0, table: RouteTable.main,
      protocol: RouteProtocol.dhcp, scope: RouteScope.universe, type: RouteType.unicast, priority: 0, prefsrc: undefined,
    }]);
    assert.deepEqual(ipJson<RouteJson>(W, 'route', 'show', 'default').map((r) => [r.dst, r.gateway, r.dev, r.protocol]), [['default', '10.1.2.1', 'wl0', 'dhcp']]);
    assert.deepEqual(s.dumpRoutes({ family: 4, table: RouteTable.local }).filter(isDefaultRoute), [], 'table main only');

    assert.throws(() => s.addRoute(defaultRoute('10.1.2.254')), (e: unknown) => e instanceof NetlinkError && e.code === 'EEXIST');
    assert.throws(() => s.addRoute(defaultRoute()), (e: unknown) => e instanceof NetlinkError && e.code === 'EEXIST');
    assert.throws(() => s.addRoute({ ...defaultRoute('192.0.2.1'), priority: 10 }), (e: unknown) => e instanceof NetlinkError && e.code === 'ENETUNREACH', 'a gateway off the link');
    assert.equal(s.dumpRoutes({ family: 4 }).filter(isDefaultRoute).length, 1);
  });

  test('deleteRoute takes only our route; a second delete is ESRCH', () => {
    const s = sock();
    assert.throws(() => s.deleteRoute({ ...defaultRoute(), protocol: RouteProtocol.boot }), (e: unknown) => e instanceof NetlinkError && e.code === 'ESRCH', 'not ours: another protocol');
    assert.throws(() => s.deleteRoute(defaultRoute('10.1.2.254')), (e: unknown) => e instanceof NetlinkError && e.code === 'ESRCH', 'another gateway');
    s.deleteRoute(defaultRoute());
    assert.deepEqual(s.dumpRoutes({ family: 4 }).filter(isDefaultRoute), []);
    assert.deepEqual(ipJson<RouteJson>(W, 'route', 'show', 'default'), []);
    assert.throws(() => s.deleteRoute(defaultRoute()), (e: unknown) => e instanceof NetlinkError && e.code === 'ESRCH');
  });

  test('deleteAddress; a second delete is EADDRNOTAVAIL', () => {
    const s = sock();
    s.deleteAddress(lease());
    assert.deepEqual(mine(s), []);
    assert.deepEqual(ipAddrs(W).filter((x) => x.local === '10.1.2.3'), []);
    assert.equal(s.dumpRoutes({ family: 4 }).find((r) => r.dst === '10.1.2.0'), undefined, 'the prefix route went with it');
    assert.throws(() => s.deleteAddress(lease()), (e: unknown) => e instanceof NetlinkError && e.code === 'EADDRNOTAVAIL');
  });

  test('the kernel deprecates the address when preferred_lft ends and removes it when valid_lft ends', async (t) => {
    const s = sock();
    const start = Date.now();
    s.addAddress(lease({ address: '10.1.2.9', validSeconds: 2, preferredSeconds: 1 }));
    const first = mine(s, '10.1.2.9')[0];
    assert.ok(first, 'there at first');
    assert.equal(first.flags & AddressFlag.deprecated, 0, 'preferred at first');
    let deprecatedAt: number | undefined;
    await eventually('the address to expire', () => {
      const a = mine(s, '10.1.2.9')[0];
      if (a !== undefined && (a.flags & AddressFlag.deprecated) !== 0) deprecatedAt ??= Date.now() - start;
      return a === undefined;
    }, 3500);
    const goneAt = Date.now() - start;
    assert.ok(goneAt >= 1500, `removed after ${goneAt} ms, before its valid lifetime of 2 s`);
    assert.ok(deprecatedAt !== undefined && deprecatedAt >= 500 && deprecatedAt < goneAt, `deprecated at ${deprecatedAt} ms, gone at ${goneAt} ms`);
    assert.deepEqual(ipAddrs(W).filter((x) => x.local === '10.1.2.9'), []);
    t.diagnostic(`valid_lft 2 s, preferred_lft 1 s: deprecated after ${deprecatedAt} ms, removed after ${goneAt} ms`);
  });
});
