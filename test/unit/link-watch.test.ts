// LinkWatch against a scripted kernel: what it asks the kernel when a watched device changes,
// moves or goes while events were lost, and what it ignores.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeAttrs, decodeMessages, type NetlinkMessage } from '../../src/netns/netlink/index.js';
import { IFLA, linkPolicy, RTM } from '../../src/netns/rtnl/index.js';
import { RouteSocket } from '../../src/netns/route-socket.js';
import { Logger } from '../../src/common/log.js';
import { FLOOD_EVENTS, LinkWatch, type LinkProblem } from '../../src/ontapd/link-watch.js';
import type { Device } from '../../src/ontapd/devices.js';
import { ack, errorMessage, FakeKernel, restamp } from '../fixtures/netlink/fake-kernel.js';
import { loadFixture, metaNumber } from '../fixtures/netlink/load.js';

const quiet = new Logger('test', 'error');
const tick = () => new Promise((r) => setImmediate(r));

/** m0 (a macvlan) from a real dump, re-stamped as the kernel stamps a notification (seq 0, port 0). */
function m0Event(): { data: Buffer; ifindex: number; address: string } {
  const f = loadFixture('link-dump');
  const ifindex = metaNumber(f, 'm0');
  for (const d of f.received) {
    for (const m of decodeMessages(d)) {
      if (m.header.type !== RTM.NEWLINK || m.payload.readInt32LE(4) !== ifindex) continue;
      const data = restamp(Buffer.from(d.subarray(m.offset, m.offset + m.header.length)), 0, 0);
      const mac = decodeAttrs(m.payload, linkPolicy, 16).raw(IFLA.ADDRESS)!;
      return { data, ifindex, address: [...mac].map((b) => b.toString(16).padStart(2, '0')).join(':') };
    }
  }
  throw new Error('no m0 in link-dump');
}

function device(ifindex: number, hwaddr: string): Device {
  return {
    info: { type: 'macvlan', ifname: 'm0', ifindex, hwaddr, mtu: 1500, queues: 1, vnetHdr: false, mode: 'bridge', uplink: 'up0' },
    nsid: undefined, netnsFd: undefined, ifindex, family: 'macvlan',
  };
}

function setup() {
  const k = new FakeKernel();
  const requests: NetlinkMessage[] = [];
  k.handler = (m, kk, fd) => {
    requests.push(m);
    return [ack(m, kk.portOf(fd))];
  };
  const rtnl = RouteSocket.open({ binding: k.binding });
  const watch = LinkWatch.open(rtnl, quiet, k.binding);
  const monitorFd = Math.max(...k.sockets.keys());
  return { k, requests, rtnl, watch, monitorFd };
}

test('an address that is not ours is put back (RTM_SETLINK with ours), then reported', async () => {
  const { k, requests, watch, monitorFd } = setup();
  const ev = m0Event();
  const problems: LinkProblem[] = [];
  watch.watch({ device: device(ev.ifindex, '02:6f:74:61:70:01'), uplinkIfindex: 3, guardAddress: true, onProblem: (p) => problems.push(p) });
  k.push(monitorFd, { data: ev.data });
  for (let i = 0; i < 5; i++) await tick();
  const set = requests.find((m) => m.header.type === RTM.SETLINK);
  assert.ok(set, 'a RTM_SETLINK was sent');
  assert.equal(set.payload.readInt32LE(4), ev.ifindex);
  assert.equal(decodeAttrs(set.payload, linkPolicy, 16).raw(IFLA.ADDRESS)?.toString('hex'), '026f74617001');
  assert.deepEqual(problems, [{ kind: 'address-changed', address: ev.address, restored: true }]);
  watch.close();
});

test('the same address, an unguarded device, or a link that is not watched: nothing is sent', async () => {
  const { k, requests, watch, monitorFd } = setup();
  const ev = m0Event();
  const problems: LinkProblem[] = [];
  watch.watch({ device: device(ev.ifindex, ev.address), uplinkIfindex: 3, guardAddress: true, onProblem: (p) => problems.push(p) });
  // The same ifindex in namespace 5: an ipvlan-like device whose address is not ontapd's to keep.
  watch.watch({ device: { ...device(ev.ifindex, '02:00:00:00:00:01'), nsid: 5 }, uplinkIfindex: 3, guardAddress: false, onProblem: (p) => problems.push(p) });
  k.push(monitorFd, { data: ev.data });
  k.push(monitorFd, { data: ev.data, nsid: 5 });
  k.push(monitorFd, { data: ev.data, nsid: 6 }); // not watched there
  for (let i = 0; i < 5; i++) await tick();
  assert.deepEqual(requests, []);
  assert.deepEqual(problems, []);
  watch.close();
});

test('after lost events every watched device is asked for; one the kernel no longer has vanished', async () => {
  const { k, requests, watch, monitorFd } = setup();
  const problems: Array<[number, LinkProblem]> = [];
  k.handler = (m, kk, fd) => {
    requests.push(m);
    return [errorMessage(m, kk.portOf(fd), 19)]; // ENODEV
  };
  for (const ifindex of [7, 8]) watch.watch({ device: device(ifindex, '02:00:00:00:00:07'), uplinkIfindex: 3, guardAddress: true, onProblem: (p) => problems.push([ifindex, p]) });
  assert.equal(watch.size, 2);
  k.pushOverrun(monitorFd);
  for (let i = 0; i < 5; i++) await tick();
  assert.deepEqual(requests.map((m) => [m.header.type, m.payload.readInt32LE(4)]), [[RTM.GETLINK, 7], [RTM.GETLINK, 8]]);
  assert.deepEqual(problems, [[7, { kind: 'vanished' }], [8, { kind: 'vanished' }]]);
  assert.equal(watch.size, 0, 'no longer watched');
  watch.close();
});

test('a move: asked for where the kernel said it went; gone from there already, it is reported as not deleted', async () => {
  const { k, requests, watch, monitorFd } = setup();
  const f = loadFixture('event-dellink-moved');
  const [m] = decodeMessages(f.received[0]!);
  const problems: LinkProblem[] = [];
  k.handler = (req, kk, fd) => {
    requests.push(req);
    return [errorMessage(req, kk.portOf(fd), 19)];
  };
  watch.watch({ device: device(m!.payload.readInt32LE(4), '02:00:00:00:00:07'), uplinkIfindex: 3, guardAddress: true, onProblem: (p) => problems.push(p) });
  k.push(monitorFd, { data: f.received[0]! });
  for (let i = 0; i < 5; i++) await tick();
  const get = requests.find((r) => r.header.type === RTM.GETLINK)!;
  assert.equal(get.payload.readInt32LE(4), metaNumber(f, 'mv0InC'));
  assert.equal(decodeAttrs(get.payload, linkPolicy, 16).number(IFLA.TARGET_NETNSID), metaNumber(f, 'nsidC'));
  assert.equal(requests.some((r) => r.header.type === RTM.DELLINK), false, 'nothing deleted');
  assert.deepEqual(problems, [{ kind: 'moved', deleted: false }]);
  watch.close();
});

test('more than FLOOD_EVENTS events of one device in a second are reported, once', async () => {
  const { k, requests, watch, monitorFd } = setup();
  const ev = m0Event();
  const problems: LinkProblem[] = [];
  watch.watch({ device: device(ev.ifindex, ev.address), uplinkIfindex: 3, guardAddress: true, onProblem: (p) => problems.push(p) });
  for (let i = 0; i < FLOOD_EVENTS; i++) k.push(monitorFd, { data: ev.data });
  for (let i = 0; i < 10; i++) await tick();
  assert.deepEqual(problems, [], `${FLOOD_EVENTS} events are allowed`);
  for (let i = 0; i < 100; i++) k.push(monitorFd, { data: ev.data });
  for (let i = 0; i < 10; i++) await tick();
  assert.deepEqual(problems, [{ kind: 'flooding', events: FLOOD_EVENTS + 1 }]);
  assert.deepEqual(requests, [], 'nothing to put back: the address is ours');
  watch.close();
});

test('overruns in a row start one check of the devices per interval, not one per overrun', async () => {
  const { k, requests, watch, monitorFd } = setup();
  const ev = m0Event();
  k.handler = (m, kk, fd) => {
    requests.push(m);
    return [restamp(ev.data, m.header.seq, kk.portOf(fd))];
  };
  const problems: LinkProblem[] = [];
  watch.watch({ device: device(ev.ifindex, ev.address), uplinkIfindex: 3, guardAddress: true, onProblem: (p) => problems.push(p) });
  for (let i = 0; i < 10; i++) {
    k.pushOverrun(monitorFd);
    await tick();
  }
  assert.equal(requests.length, 1, 'one check at once');
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(requests.length, 2, 'and one more after the interval, for the overruns since');
  assert.equal(watch.stats.overruns, 10);
  assert.deepEqual(problems, [], 'the device is as it was');
  watch.close();
});
