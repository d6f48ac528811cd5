/**
 * openLinkSocket and the addon's recvInet/sendInet against the kernel, in three namespaces:
 *   A (veth-a) <-> B (veth-b)     the link under test
 *                  B (veth-b2) <-> C (veth-c)   a second link of B's, for SO_BINDTODEVICE
 * Every device gets an ifindex that does not exist in the test process's own namespace (and a
 * different one per device), so a report that resolved an index in the wrong namespace, or
 * swapped sender and receiver, fails.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, readdirSync } from 'node:fs';
import {
  AF_INET, AF_INET6, IP_ADD_MEMBERSHIP, IPPROTO_IPV6, IPPROTO_IP, IPPROTO_UDP, IPV6_JOIN_GROUP, IPV6_V6ONLY,
  SO_REUSEADDR, SO_REUSEPORT, SOCK_DGRAM, SOL_SOCKET,
} from '../../src/native/constants.js';
import { native, NativeError, type InetDatagram } from '../../src/native/index.js';
import { ipMreqn, ipv6Mreq, LinkSocketError, openLinkSocket, type LinkSocketOptions } from '../../src/netns/link-udp.js';
import { parseAddress } from '../../src/netns/rtnl/inet.js';
import { ip, links, sweepStaleNamespaces, TestNamespaces } from '../helpers/netns.js';
import { describeWhen, hasCommand, isRoot, missing } from '../helpers/requirements.js';

function addonReady(): boolean {
  try {
    const n = native() as unknown as Record<string, unknown>;
    return ['socketInNetns', 'bindInet', 'setsockoptBytes', 'recvInet', 'sendInet'].every((f) => typeof n[f] === 'function');
  } catch {
    return false;
  }
}

const reason = missing([
  [isRoot, 'needs root (network namespaces)'],
  [() => hasCommand('ip'), 'needs iproute2'],
  [addonReady, 'the native addon is not built or lacks recvInet/sendInet'],
]);

const MDNS = 5353;
const GROUP = { 4: '224.0.0.251', 6: 'ff02::fb' } as const;
const ADDR = {
  a: { 4: '192.0.2.1', 6: 'fe80::a' },
  b: { 4: '192.0.2.2', 6: 'fe80::b' },
  b2: { 4: '198.51.100.2', 6: 'fe80::b2' },
  c: { 4: '198.51.100.3', 6: 'fe80::c' },
} as const;
const FAMILIES = [4, 6] as const;

/** The next datagram on fd, waiting up to `ms`. */
async function receive(fd: number, ms = 2000, maxBytes = 1500): Promise<InetDatagram> {
  const deadline = Date.now() + ms;
  for (;;) {
    const d = native().recvInet(fd, maxBytes);
    if (d !== null) return d;
    if (Date.now() > deadline) throw new Error(`nothing arrived on fd ${fd} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

describeWhen('link UDP sockets against the kernel', reason, () => {
  const spaces = new TestNamespaces();
  let A = '';
  let B = '';
  let C = '';
  const nsFd: Record<'A' | 'B' | 'C', number> = { A: -1, B: -1, C: -1 };
  /** ifindex of each device in its own namespace. */
  const index = { a: 0, b: 0, b2: 0, c: 0 };
  const sockets: number[] = [];

  const open = (o: Omit<LinkSocketOptions, 'port'> & { port?: number }): number => {
    const fd = openLinkSocket({ port: MDNS, ...o });
    sockets.push(fd);
    return fd;
  };
  const closeSocket = (fd: number): void => {
    const i = sockets.indexOf(fd);
    if (i >= 0) sockets.splice(i, 1);
    native().close(fd);
  };
  const mdns = (ns: 'A' | 'B' | 'C', dev: keyof typeof index, family: 4 | 6, loop = false): number =>
    open({ netnsFd: nsFd[ns], family, ifname: `veth-${dev}`, ifindex: index[dev], group: GROUP[family], multicastHops: 255, multicastLoop: loop });

  /** A veth between two namespaces with fixed ifindexes and addresses, no SLAAC link-local, no DAD. */
  const link = (ns: string, dev: 'a' | 'b2', peerNs: string, peer: 'b' | 'c'): void => {
    ip('-n', ns, 'link', 'add', `veth-${dev}`, 'index', String(index[dev]), 'type', 'veth',
      'peer', 'name', `veth-${peer}`, 'index', String(index[peer]), 'netns', peerNs);
    for (const [n, d] of [[ns, dev], [peerNs, peer]] as const) {
      ip('-n', n, 'link', 'set', `veth-${d}`, 'addrgenmode', 'none');
      ip('-n', n, 'addr', 'add', `${ADDR[d][4]}/24`, 'dev', `veth-${d}`);
      ip('-n', n, 'addr', 'add', `${ADDR[d][6]}/64`, 'dev', `veth-${d}`, 'nodad');
      ip('-n', n, 'link', 'set', `veth-${d}`, 'up');
    }
  };

  before(() => {
    sweepStaleNamespaces();
    // Indexes the test's own namespace does not have (other sessions add devices there: leave room).
    const hostIndexes = new Set((JSON.parse(ip('-j', 'link', 'show')) as Array<{ ifindex: number }>).map((l) => l.ifindex));
    let next = Math.max(...hostIndexes) + 1000 + (process.pid % 1000);
    const fresh = (): number => {
      while (hostIndexes.has(next)) next++;
      return next++;
    };
    index.a = fresh();
    index.b = fresh();
    index.b2 = fresh();
    index.c = fresh();
    A = spaces.add('udpa');
    B = spaces.add('udpb');
    C = spaces.add('udpc');
    link(A, 'a', B, 'b');
    link(B, 'b2', C, 'c');
    nsFd.A = openSync(`/run/netns/${A}`, 'r');
    nsFd.B = openSync(`/run/netns/${B}`, 'r');
    nsFd.C = openSync(`/run/netns/${C}`, 'r');
  });

  after(() => {
    for (const fd of sockets.splice(0)) native().close(fd);
    for (const fd of Object.values(nsFd)) if (fd >= 0) closeSync(fd);
    spaces.destroy();
  });

  test('the devices have the ifindexes the test gave them, none of which the host has', () => {
    assert.equal(links(A).find((l) => l.ifname === 'veth-a')?.ifindex, index.a);
    assert.equal(links(B).find((l) => l.ifname === 'veth-b')?.ifindex, index.b);
    assert.equal(links(B).find((l) => l.ifname === 'veth-b2')?.ifindex, index.b2);
    assert.equal(links(C).find((l) => l.ifname === 'veth-c')?.ifindex, index.c);
    const host = new Set((JSON.parse(ip('-j', 'link', 'show')) as Array<{ ifindex: number }>).map((l) => l.ifindex));
    for (const i of Object.values(index)) assert.ok(!host.has(i), `ifindex ${i} exists in the test's namespace`);
  });

  for (const family of FAMILIES) {
    test(`IPv${family}: multicast from A reaches B with A's source, B's ifindex, the group and hop limit 255`, async () => {
      const a = mdns('A', 'a', family);
      const b = mdns('B', 'b', family);
      try {
        const payload = Buffer.from(`query v${family}`);
        assert.equal(native().sendInet(a, payload, family, GROUP[family], MDNS, index.a), payload.length);
        const d = await receive(b);
        assert.deepEqual(
          { data: d.data.toString(), truncated: d.truncated, family: d.family, source: d.source, sourcePort: d.sourcePort, ifindex: d.ifindex, destination: d.destination, hopLimit: d.hopLimit },
          { data: payload.toString(), truncated: false, family, source: ADDR.a[family], sourcePort: MDNS, ifindex: index.b, destination: GROUP[family], hopLimit: 255 },
        );
      } finally {
        closeSocket(a);
        closeSocket(b);
      }
    });

    test(`IPv${family}: unicast to B's address arrives with the default hop limit (64), B's address as destination`, async () => {
      const a = mdns('A', 'a', family);
      const b = mdns('B', 'b', family);
      try {
        // IPv4 unicast needs no interface; fe80::b does (its scope: A's ifindex, in A's namespace).
        const sent = native().sendInet(a, Buffer.from('unicast'), family, ADDR.b[family], MDNS, family === 6 ? index.a : 0);
        assert.equal(sent, 7);
        const d = await receive(b);
        assert.equal(d.data.toString(), 'unicast');
        assert.equal(d.source, ADDR.a[family]);
        assert.equal(d.destination, ADDR.b[family]);
        assert.equal(d.ifindex, index.b);
        assert.equal(d.hopLimit, 64, 'the received TTL / hop limit, not the socket\'s multicast setting (255)');
      } finally {
        closeSocket(a);
        closeSocket(b);
      }
    });

    test(`IPv${family}: with loop off A does not get its own multicast; with loop on it does`, async () => {
      for (const loop of [false, true]) {
        const a = mdns('A', 'a', family, loop);
        const b = mdns('B', 'b', family);
        try {
          native().sendInet(a, Buffer.from('own'), family, GROUP[family], MDNS, index.a);
          await receive(b); // it went out
          // A marker from B after it: whatever A has queued before the marker came back to it.
          native().sendInet(b, Buffer.from('marker'), family, ADDR.a[family], MDNS, family === 6 ? index.b : 0);
          const first = await receive(a);
          if (loop) {
            assert.equal(first.data.toString(), 'own', 'loop on: the copy comes back (so the test can see one)');
            assert.equal(first.ifindex, index.a);
            assert.equal((await receive(a)).data.toString(), 'marker');
          } else {
            assert.equal(first.data.toString(), 'marker', 'loop off: nothing before the marker');
          }
          assert.equal(native().recvInet(a, 1500), null);
        } finally {
          closeSocket(a);
          closeSocket(b);
        }
      }
    });

    test(`IPv${family}: SO_BINDTODEVICE: multicast arriving on B's second device reaches only the socket bound to it`, async () => {
      const a = mdns('A', 'a', family);
      const b = mdns('B', 'b', family);
      const b2 = mdns('B', 'b2', family);
      const c = mdns('C', 'c', family);
      // Control: the same socket without SO_BINDTODEVICE, its group joined on veth-b only. The
      // kernel delivers to it anyway (IP_MULTICAST_ALL is on by default; IPv6 membership is not
      // per device at delivery): the device binding is what keeps veth-b2's traffic away.
      const nb = native();
      const unbound = nb.socketInNetns(nsFd.B, family === 4 ? AF_INET : AF_INET6, SOCK_DGRAM, IPPROTO_UDP, true);
      sockets.push(unbound);
      try {
        nb.setsockoptInt(unbound, SOL_SOCKET, SO_REUSEADDR, 1);
        nb.setsockoptInt(unbound, SOL_SOCKET, SO_REUSEPORT, 1);
        if (family === 6) nb.setsockoptInt(unbound, IPPROTO_IPV6, IPV6_V6ONLY, 1);
        nb.bindInet(unbound, family, family === 4 ? '0.0.0.0' : '::', MDNS);
        const g = parseAddress(family, GROUP[family])!;
        if (family === 4) nb.setsockoptBytes(unbound, IPPROTO_IP, IP_ADD_MEMBERSHIP, ipMreqn(g, index.b));
        else nb.setsockoptBytes(unbound, IPPROTO_IPV6, IPV6_JOIN_GROUP, ipv6Mreq(g, index.b));

        nb.sendInet(c, Buffer.from('from C'), family, GROUP[family], MDNS, index.c);
        const got = await receive(b2);
        assert.equal(got.data.toString(), 'from C');
        assert.equal(got.ifindex, index.b2);
        assert.equal(got.source, ADDR.c[family]);
        assert.equal((await receive(unbound)).data.toString(), 'from C', 'the control socket gets it');
        // veth-b's socket: the marker from A is the first thing it sees.
        nb.sendInet(a, Buffer.from('marker'), family, GROUP[family], MDNS, index.a);
        assert.equal((await receive(b)).data.toString(), 'marker', 'nothing from veth-b2 before the marker');
      } finally {
        for (const fd of [a, b, b2, c, unbound]) closeSocket(fd);
      }
    });

    test(`IPv${family}: sendInet's ifindex: 0 leaves the device binding to choose; another device's overrides it`, async () => {
      const a = mdns('A', 'a', family);
      const b = mdns('B', 'b', family);
      const c = mdns('C', 'c', family);
      try {
        // 0: the bound device (veth-b) for the group and, for IPv6, the link-local peer as well.
        native().sendInet(b, Buffer.from('group, 0'), family, GROUP[family], MDNS, 0);
        assert.equal((await receive(a)).data.toString(), 'group, 0');
        native().sendInet(b, Buffer.from('unicast, 0'), family, ADDR.a[family], MDNS, 0);
        assert.equal((await receive(a)).data.toString(), 'unicast, 0');
        // veth-b2's index on the socket bound to veth-b: the kernel does not hold it to the binding
        // (IP_PKTINFO for IPv4, sin6_scope_id for IPv6): it goes out veth-b2, to C. Callers pass 0
        // or the bound device's ifindex.
        native().sendInet(b, Buffer.from('escaped'), family, GROUP[family], MDNS, index.b2);
        const d = await receive(c);
        assert.equal(d.data.toString(), 'escaped');
        assert.equal(d.source, ADDR.b2[family]);
        native().sendInet(b, Buffer.from('marker'), family, GROUP[family], MDNS, index.b);
        assert.equal((await receive(a)).data.toString(), 'marker', 'A saw nothing of it');
      } finally {
        closeSocket(a);
        closeSocket(b);
        closeSocket(c);
      }
    });

    test(`IPv${family}: a datagram longer than maxBytes is reported truncated`, async () => {
      const a = mdns('A', 'a', family);
      const b = mdns('B', 'b', family);
      try {
        native().sendInet(a, Buffer.alloc(300, 0x61), family, GROUP[family], MDNS, index.a);
        const d = await receive(b, 2000, 100);
        assert.equal(d.data.length, 100);
        assert.equal(d.truncated, true);
        assert.equal(native().recvInet(b, 1500), null, 'the rest is gone, not left for the next read');
      } finally {
        closeSocket(a);
        closeSocket(b);
      }
    });

    test(`IPv${family}: errors name the step and the errno, and leave no descriptor behind`, () => {
      const before = openFds();
      const base = { netnsFd: nsFd.B, family, port: MDNS, group: GROUP[family] } as const;
      const failure = (o: LinkSocketOptions): LinkSocketError => {
        try {
          sockets.push(openLinkSocket(o));
        } catch (e) {
          assert.ok(e instanceof LinkSocketError, String(e));
          return e;
        }
        assert.fail('openLinkSocket succeeded');
      };
      let e = failure({ ...base, ifname: 'nosuchdev0', ifindex: index.b });
      assert.deepEqual([e.step, e.code], ['bindtodevice', 'ENODEV'], e.message);
      // The name of veth-b2 with veth-b's index: the two disagree.
      e = failure({ ...base, ifname: 'veth-b2', ifindex: index.b });
      assert.deepEqual([e.step, e.code], ['bindtodevice', 'ENODEV'], e.message);
      assert.match(e.message, new RegExp(`veth-b2 is ifindex ${index.b2} in the namespace, not ${index.b}`));
      e = failure({ ...base, ifname: 'a-name-longer-than-15', ifindex: index.b });
      assert.deepEqual([e.step, e.code], ['bindtodevice', 'EINVAL'], e.message);
      for (const group of [family === 4 ? '224.0.0.256' : 'ff02::fb::1', GROUP[family === 4 ? 6 : 4], 'ff02::fb%veth-b']) {
        e = failure({ ...base, ifname: 'veth-b', ifindex: index.b, group });
        assert.deepEqual([e.step, e.code, e.errno], ['join', 'EINVAL', 22], e.message);
      }
      // A unicast "group": the kernel refuses the membership itself.
      e = failure({ ...base, ifname: 'veth-b', ifindex: index.b, group: ADDR.b[family] });
      assert.equal(e.step, 'join', e.message);
      assert.equal(e.code, 'EINVAL', e.message);
      e = failure({ ...base, netnsFd: 99999, ifname: 'veth-b', ifindex: index.b });
      assert.deepEqual([e.step, e.code], ['socket', 'EBADF'], e.message);
      assert.equal(openFds(), before, 'every failed socket was closed');
    });

    test(`IPv${family}: bindInet and sendInet refuse address texts that are not addresses (EINVAL, by name)`, () => {
      const b = mdns('B', 'b', family);
      try {
        const bad = family === 4 ? ['1.2.3', '1.2.3.4.5', '::1', '', 'fe80::1'] : ['fe80::b%veth-b', '1.2.3.4', 'fe80:::1', ''];
        for (const text of bad) {
          assert.throws(() => native().sendInet(b, Buffer.from('x'), family, text, MDNS, 0), (err: unknown) =>
            err instanceof NativeError && err.code === 'EINVAL' && err.syscall === 'sendInet' && err.message.includes(`not an IPv${family} address`), text);
          assert.throws(() => native().bindInet(b, family, text, 0), (err: unknown) =>
            err instanceof NativeError && err.code === 'EINVAL' && err.syscall === 'bindInet', text);
        }
        assert.throws(() => native().sendInet(b, Buffer.from('x'), 5 as 4, GROUP[4], MDNS, 0), /family must be 4 or 6/);
        assert.throws(() => native().recvInet(b, 65536), /maxBytes must be an integer in \[0, 65535\]/);
      } finally {
        closeSocket(b);
      }
    });
  }
});
