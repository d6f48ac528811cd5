import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { NativeBinding } from '../../src/native/index.js';
import { SO_RCVBUF, SO_RCVBUFFORCE, SOL_SOCKET } from '../../src/netns/netlink/index.js';
import { decodeProcEvents, PROC_CN_MCAST_IGNORE, PROC_CN_MCAST_LISTEN } from '../../src/netns/proc-events.js';
import { ProcEventMonitor, ProcEventSubscribeError, type ProcMonitorEvent } from '../../src/netns/proc-monitor.js';
import { FakeKernel, nativeError } from '../fixtures/netlink/fake-kernel.js';
import { loadProcFixtures } from '../fixtures/proc-events/load.js';

const fx = Object.fromEntries(loadProcFixtures().filter((f) => f.kernel === 'linux-6.18').map((f) => [f.name, f.data]));
const FORK = fx.fork!;
const EXEC = fx.exec!;
const EXIT = fx.exit!;

/** The captured ack, answering a request whose cn_msg.ack was `ack`. */
function ackDatagram(ack: number, err = 0): Buffer {
  const b = Buffer.from(fx['ack-listen']!);
  b.writeUInt32LE((ack + 1) >>> 0, 28);
  b.writeUInt32LE(err, 52);
  return b;
}

/** The fork capture with another child pid, to tell events apart. */
function forkOf(child: number): Buffer {
  const b = Buffer.from(FORK);
  b.writeInt32LE(child, 60);
  b.writeInt32LE(child, 64);
  return b;
}

const tick = () => new Promise((r) => setImmediate(r));
async function settle(n = 20): Promise<void> {
  for (let i = 0; i < n; i++) await tick();
}

function collect(m: ProcEventMonitor): Array<ProcMonitorEvent | 'overrun'> {
  const seen: Array<ProcMonitorEvent | 'overrun'> = [];
  m.on('event', (e) => seen.push(e));
  m.on('overrun', () => seen.push('overrun'));
  return seen;
}

/** Subscription requests as sent: [op, cn_msg.ack, nlmsg_pid]. */
function subscriptions(k: FakeKernel): Array<[number, number, number]> {
  return k.sent.map((s) => [s.data.readUInt32LE(36), s.data.readUInt32LE(28), s.data.readUInt32LE(12)]);
}

function open(k: FakeKernel, opts: { rcvbuf?: number; batch?: number; binding?: NativeBinding } = {}): ProcEventMonitor {
  return ProcEventMonitor.open({ binding: k.binding, ...opts });
}

describe('ProcEventMonitor', () => {
  test('a nonblocking socket on group CN_IDX_PROC with a 4 MiB SO_RCVBUFFORCE; LISTEN carries the port id as its ack', () => {
    const k = new FakeKernel();
    const groups: number[] = [];
    const binding = { ...k.binding, bindNetlink: (fd: number, g: number) => (groups.push(g), k.binding.bindNetlink(fd, g)) };
    const m = open(k, { binding });
    assert.equal(k.sockets.get(m.fd)?.nonblocking, true);
    assert.deepEqual(groups, [1]);
    assert.deepEqual(k.sockopts.map((o) => [o.level, o.name, o.value]), [[SOL_SOCKET, SO_RCVBUFFORCE, 4 << 20]]);
    assert.deepEqual(subscriptions(k), [[PROC_CN_MCAST_LISTEN, m.portId, m.portId]]);
    assert.equal(k.sockets.get(m.fd)?.poller?.active, true);
    m.close();
  });

  test('SO_RCVBUF when SO_RCVBUFFORCE is refused; rcvbuf 0 leaves the default', () => {
    const k = new FakeKernel();
    k.failSockopt.add(SO_RCVBUFFORCE);
    open(k, { rcvbuf: 8192 }).close();
    assert.deepEqual(k.sockopts.map((o) => o.name), [SO_RCVBUF]);
    const k2 = new FakeKernel();
    open(k2, { rcvbuf: 0 }).close();
    assert.deepEqual(k2.sockopts, []);
  });

  test('events in order, under their kind and under "event"; our ack says subscribed, others\' acks are ignored', async () => {
    const k = new FakeKernel();
    const m = open(k);
    const seen = collect(m);
    const forks: number[] = [];
    m.on('fork', (e) => forks.push(e.childPid));
    let subscribed = 0;
    m.on('subscribed', () => subscribed++);
    for (const d of [ackDatagram(m.portId + 5), FORK, ackDatagram(m.portId), EXEC, fx.comm!, ackDatagram(m.portId), EXIT]) k.push(m.fd, { data: d });
    assert.equal(m.subscribed, false);
    await settle();
    assert.equal(subscribed, 1);
    assert.equal(m.subscribed, true);
    assert.deepEqual(seen, [...[FORK, EXEC, fx.comm!, EXIT].flatMap((d) => decodeProcEvents(d))]);
    assert.deepEqual(forks, [(decodeProcEvents(FORK)[0] as { childPid: number }).childPid]);
    m.close();
  });

  test('close() says IGNORE once, closes the poller, then the socket', () => {
    const k = new FakeKernel();
    const m = open(k);
    const poller = k.sockets.get(m.fd)!.poller!;
    m.close();
    m.close();
    assert.deepEqual(subscriptions(k).map((s) => s[0]), [PROC_CN_MCAST_LISTEN, PROC_CN_MCAST_IGNORE]);
    assert.equal(poller.closed, true);
    assert.deepEqual(k.closedFds, [m.fd]);
  });

  test('a refused subscription (ack err EPERM): error ProcEventSubscribeError, closed, and no IGNORE', async () => {
    const k = new FakeKernel();
    const m = open(k);
    const errors: Error[] = [];
    m.on('error', (e) => errors.push(e));
    k.push(m.fd, { data: ackDatagram(m.portId, 1) });
    k.push(m.fd, { data: FORK });
    const seen = collect(m);
    await settle();
    assert.equal(errors.length, 1);
    assert.ok(errors[0] instanceof ProcEventSubscribeError);
    assert.equal((errors[0] as ProcEventSubscribeError).code, 'EPERM');
    assert.deepEqual(seen, []);
    assert.deepEqual(k.closedFds, [m.fd]);
    assert.deepEqual(subscriptions(k).map((s) => s[0]), [PROC_CN_MCAST_LISTEN]);
  });

  test('bind EPERM and send ECONNREFUSED become ProcEventSubscribeError, and the socket is closed', () => {
    const k = new FakeKernel();
    const binding = { ...k.binding, bindNetlink: () => { throw nativeError('EPERM', 1, 'bind'); } };
    assert.throws(() => open(k, { binding }), (e: unknown) => e instanceof ProcEventSubscribeError && e.code === 'EPERM' && /CAP_NET_ADMIN/.test(e.message));
    assert.equal(k.closedFds.length, 1);
    const k2 = new FakeKernel();
    const binding2 = { ...k2.binding, sendmsg: () => { throw nativeError('ECONNREFUSED', 111, 'sendmsg'); } };
    assert.throws(() => open(k2, { binding: binding2 }), (e: unknown) => e instanceof ProcEventSubscribeError && e.code === 'ECONNREFUSED' && /initial network namespace/.test(e.message));
    assert.equal(k2.closedFds.length, 1);
  });

  test('at most `batch` datagrams per readiness callback: the loop runs in between', async () => {
    const k = new FakeKernel();
    const m = open(k, { batch: 100 });
    const seen = collect(m);
    for (let i = 0; i < 1000; i++) k.push(m.fd, { data: forkOf(10_000 + i) });
    const atImmediates: number[] = [];
    for (let i = 0; i < 15; i++) {
      await tick();
      atImmediates.push(seen.length);
    }
    assert.equal(seen.length, 1000);
    assert.ok(atImmediates.every((n) => n % 100 === 0), atImmediates.join(' '));
    assert.ok(atImmediates.filter((n) => n > 0 && n < 1000).length >= 5, atImmediates.join(' '));
    assert.deepEqual(seen.map((e) => (e as { childPid: number }).childPid), Array.from({ length: 1000 }, (_, i) => 10_000 + i));
    m.close();
  });

  test('ENOBUFS: one "overrun", after the events that were queued, even when reported twice', async () => {
    const k = new FakeKernel();
    const m = open(k);
    const seen = collect(m);
    k.pushOverrun(m.fd); // the kernel reports the error before what is queued
    k.push(m.fd, { data: forkOf(1) });
    k.pushOverrun(m.fd);
    k.push(m.fd, { data: forkOf(2) });
    await settle();
    assert.deepEqual(seen.map((e) => (e === 'overrun' ? e : (e as { childPid: number }).childPid)), [1, 2, 'overrun']);
    k.push(m.fd, { data: forkOf(3) });
    await settle();
    assert.deepEqual(seen.slice(3).map((e) => (e as { childPid: number }).childPid), [3]);
    m.close();
  });

  test('ENOBUFS through the poller: watched again, one "overrun" once drained', async () => {
    const k = new FakeKernel();
    const m = open(k);
    const seen = collect(m);
    k.push(m.fd, { data: forkOf(1) });
    await settle();
    k.sockets.get(m.fd)!.queue.push({ data: forkOf(2) });
    k.pollError(m.fd, nativeError('ENOBUFS', 105, 'poll'));
    await settle();
    assert.equal(k.sockets.get(m.fd)?.poller?.active, true);
    k.push(m.fd, { data: forkOf(3) });
    await settle();
    assert.deepEqual(seen.map((e) => (e === 'overrun' ? e : (e as { childPid: number }).childPid)), [1, 2, 'overrun', 3]);
    m.close();
  });

  test('an overrun waits for the drain across readiness callbacks', async () => {
    const k = new FakeKernel();
    const m = open(k, { batch: 10 });
    const seen = collect(m);
    k.pushOverrun(m.fd);
    for (let i = 0; i < 35; i++) k.push(m.fd, { data: forkOf(100 + i) });
    await settle();
    assert.equal(seen.length, 36);
    assert.equal(seen.indexOf('overrun'), 35);
    m.close();
  });

  test('a truncated datagram counts as a loss', async () => {
    const k = new FakeKernel();
    const m = open(k);
    const seen = collect(m);
    k.push(m.fd, { data: FORK, truncated: true });
    k.push(m.fd, { data: EXEC });
    await settle();
    assert.deepEqual(seen.map((e) => (e === 'overrun' ? e : e.kind)), ['exec', 'overrun']);
    m.close();
  });

  test('undecodable datagrams are warnings; datagrams from user space are ignored', async () => {
    const k = new FakeKernel();
    const m = open(k);
    const seen = collect(m);
    const warnings: Error[] = [];
    m.on('warning', (e) => warnings.push(e));
    k.push(m.fd, { data: FORK.subarray(0, 40) });
    k.push(m.fd, { data: EXEC, senderPortId: 4242 });
    k.push(m.fd, { data: EXIT });
    await settle();
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]!.name, 'ProcEventDecodeError');
    assert.deepEqual(seen.map((e) => (e === 'overrun' ? e : e.kind)), ['exit']);
    m.close();
  });

  test('another socket error: "error", and the monitor is closed', async () => {
    const k = new FakeKernel();
    const m = open(k);
    const errors: Error[] = [];
    m.on('error', (e) => errors.push(e));
    k.pollError(m.fd, nativeError('EBADF', 9, 'poll'));
    await settle();
    assert.deepEqual(errors.map((e) => (e as { code?: string }).code), ['EBADF']);
    assert.deepEqual(k.closedFds, [m.fd]);
  });

  test('a listener that closes the monitor stops the delivery at once', async () => {
    const k = new FakeKernel();
    const m = open(k);
    const seen = collect(m);
    m.on('fork', () => m.close());
    for (const d of [EXEC, FORK, EXIT]) k.push(m.fd, { data: d });
    await settle();
    assert.deepEqual(seen.map((e) => (e === 'overrun' ? e : e.kind)), ['exec']);
  });
});
