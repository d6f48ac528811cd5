import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { decodeMessages, NetlinkSockopt, SO_RCVBUF, SO_RCVBUFFORCE, SOL_NETLINK, SOL_SOCKET } from '../../src/netns/netlink/index.js';
import { RTNLGRP } from '../../src/netns/rtnl/index.js';
import { RouteMonitor, type RouteEvent } from '../../src/netns/route-monitor.js';
import { FakeKernel, nativeError } from '../fixtures/netlink/fake-kernel.js';
import { loadFixture, metaNumber } from '../fixtures/netlink/load.js';

const linkEvent = loadFixture('event-newlink-other-ns');
const addrEvents = loadFixture('event-addr');

function openMonitor(k: FakeKernel, opts: Parameters<typeof RouteMonitor.open>[0] = {}) {
  const m = RouteMonitor.open({ ...opts, binding: k.binding });
  return { m, fd: m.fd };
}

function collect(m: RouteMonitor): RouteEvent[] {
  const seen: RouteEvent[] = [];
  m.on('event', (e) => seen.push(e));
  return seen;
}

const tick = () => new Promise((r) => setImmediate(r));

describe('RouteMonitor', () => {
  test('a nonblocking socket with LISTEN_ALL_NSID, the four groups, and SO_RCVBUFFORCE', () => {
    const k = new FakeKernel();
    const { m, fd } = openMonitor(k, { rcvbuf: 1 << 20 });
    assert.equal(k.sockets.get(fd)?.nonblocking, true);
    const opts = k.sockopts.filter((o) => o.fd === fd);
    assert.deepEqual(opts.filter((o) => o.level === SOL_SOCKET).map((o) => [o.name, o.value]), [[SO_RCVBUFFORCE, 1 << 20]]);
    assert.deepEqual(opts.filter((o) => o.level === SOL_NETLINK && o.name === NetlinkSockopt.listenAllNsid).length, 1);
    assert.deepEqual(
      opts.filter((o) => o.level === SOL_NETLINK && o.name === NetlinkSockopt.addMembership).map((o) => o.value),
      [RTNLGRP.LINK, RTNLGRP.IPV4_IFADDR, RTNLGRP.IPV6_IFADDR, RTNLGRP.NSID],
    );
    m.close();
  });

  test('falls back to SO_RCVBUF without CAP_NET_ADMIN', () => {
    const k = new FakeKernel();
    k.failSockopt.add(SO_RCVBUFFORCE);
    const { m, fd } = openMonitor(k, { rcvbuf: 4096, groups: ['link'] });
    assert.deepEqual(k.sockopts.filter((o) => o.fd === fd && o.level === SOL_SOCKET).map((o) => o.name), [SO_RCVBUF]);
    m.close();
  });

  test('events carry the nsid of their control message; link.nsid follows it', async () => {
    const k = new FakeKernel();
    const { m, fd } = openMonitor(k);
    const seen = collect(m);
    const nsid = metaNumber(linkEvent, 'nsidB');
    const newlinks: RouteEvent[] = [];
    m.on('newlink', (e) => newlinks.push(e));
    k.push(fd, { data: linkEvent.received[0]!, nsid });
    for (const d of addrEvents.received) k.push(fd, { data: d });
    await tick();
    await tick();
    assert.deepEqual(seen.map((e) => [e.type, e.nsid]), [['newlink', nsid], ['newaddr', undefined], ['deladdr', undefined]]);
    assert.equal(newlinks.length, 1);
    const e = seen[0]!;
    assert.ok(e.type === 'newlink' && e.link.nsid === nsid && e.link.kind === 'veth');
    m.close();
  });

  test('datagrams not from the kernel are ignored; undecodable ones are warnings', async () => {
    const k = new FakeKernel();
    const { m, fd } = openMonitor(k);
    const seen = collect(m);
    const warnings: Error[] = [];
    m.on('warning', (w) => warnings.push(w));
    k.push(fd, { data: linkEvent.received[0]!, senderPortId: 4242 });
    k.push(fd, { data: linkEvent.received[0]!.subarray(0, 40) });
    await tick();
    assert.deepEqual(seen, []);
    assert.equal(warnings.length, 1);
    m.close();
  });

  test('ENOBUFS from recvmsg or from the poller is an overrun event, and the monitor keeps going', async () => {
    const k = new FakeKernel();
    const { m, fd } = openMonitor(k);
    const seen = collect(m);
    k.pushOverrun(fd);
    k.push(fd, { data: addrEvents.received[0]! });
    await tick();
    k.pollError(fd, nativeError('ENOBUFS', 105, 'poll'));
    await tick();
    k.push(fd, { data: addrEvents.received[1]! });
    await tick();
    await tick();
    assert.deepEqual(seen.map((e) => e.type), ['overrun', 'newaddr', 'overrun', 'deladdr']);
    m.close();
  });

  test('linkFilter drops link events before they are decoded; briefLinks decodes the rest briefly', async () => {
    const k = new FakeKernel();
    const asked: Array<[number | undefined, number]> = [];
    const { m, fd } = openMonitor(k, { briefLinks: true, linkFilter: (nsid, ifindex) => (asked.push([nsid, ifindex]), nsid === 7) });
    const seen = collect(m);
    const warnings: Error[] = [];
    m.on('warning', (w) => warnings.push(w));
    const ifindex = decodeMessages(linkEvent.received[0]!)[0]!.payload.readInt32LE(4);
    k.push(fd, { data: linkEvent.received[0]!, nsid: 3 });
    // Undecodable after its header: a filtered-out event is not even decoded, so no warning.
    const broken = Buffer.from(linkEvent.received[0]!);
    broken.writeUInt16LE(0xffff, 32);
    k.push(fd, { data: broken, nsid: 3 });
    k.push(fd, { data: linkEvent.received[0]!, nsid: 7 });
    await tick();
    assert.deepEqual(asked, [[3, ifindex], [3, ifindex], [7, ifindex]]);
    assert.deepEqual(warnings, []);
    assert.deepEqual(seen.map((e) => [e.type, e.nsid]), [['newlink', 7]]);
    const e = seen[0]!;
    assert.ok(e.type === 'newlink' && e.link.kind === 'veth' && e.link.mtu === undefined && e.link.address !== undefined);
    m.close();
  });

  test('a flood is read in slices: the event loop runs between them', async () => {
    const k = new FakeKernel();
    const { m, fd } = openMonitor(k, { groups: ['link'] });
    let events = 0;
    let timerSawEvents = -1;
    m.on('event', () => {
      if (events++ === 0) setTimeout(() => (timerSawEvents = events), 0);
      const until = Date.now() + 1;
      while (Date.now() < until); // 1 ms of work per event
    });
    for (let i = 0; i < 200; i++) k.push(fd, { data: linkEvent.received[0]! });
    for (let i = 0; i < 50 && events < 200; i++) await tick();
    assert.equal(events, 200, 'every event, over several turns');
    assert.ok(timerSawEvents > 0 && timerSawEvents < 200, `a timer set by the first event ran after ${timerSawEvents} of 200`);
    m.close();
  });

  test('any other poll error closes the monitor and is emitted as error', async () => {
    const k = new FakeKernel();
    const { m, fd } = openMonitor(k);
    const failed = once(m, 'error');
    k.pollError(fd, nativeError('EBADF', 9, 'poll'));
    const [err] = await failed;
    assert.equal((err as { code: string }).code, 'EBADF');
    assert.ok(k.closedFds.includes(fd));
  });
});
