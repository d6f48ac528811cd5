// Unix sockets through the native addon: everything here runs unprivileged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, readFileSync, readSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { native, NativeError, asNativeError, isErrno } from '../../src/native/index.js';
import type { Poller } from '../../src/native/index.js';
import { AF_UNIX, SOCK_NONBLOCK, SOCK_SEQPACKET, SOL_SOCKET, SO_PASSCRED, SO_SNDBUF } from '../../src/native/constants.js';

const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;

/** The open-file flags of one of our descriptors, from /proc/self/fdinfo ('flags:' is octal). */
function fdFlags(fd: number): number {
  const m = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
  assert.ok(m?.[1], `no flags line for fd ${fd}`);
  return parseInt(m[1], 8);
}

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

function pair(nonblocking = true): [number, number] {
  return native().socketpair(SOCK_SEQPACKET | (nonblocking ? SOCK_NONBLOCK : 0));
}

function closeAll(...fds: number[]): void {
  for (const fd of fds) native().close(fd);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('errors are NativeError with errno, code, syscall and a readable message', () => {
  const n = native();
  const fd = openSync('/dev/null', 'r');
  try {
    let caught: unknown;
    try {
      n.recvmsg(fd, 16, 0);
    } catch (e) {
      caught = e;
    }
    assert.ok(caught instanceof NativeError);
    assert.equal(caught.errno, 88);
    assert.equal(caught.code, 'ENOTSOCK');
    assert.equal(caught.syscall, 'recvmsg');
    assert.equal(caught.message, 'recvmsg: Socket operation on non-socket (ENOTSOCK)');
    assert.equal(caught.name, 'NativeError');
    assert.equal(asNativeError(caught), caught);
    assert.ok(isErrno(caught, 'ENOTSOCK'));
    assert.ok(!isErrno(caught, 'EAGAIN'));
    assert.equal(asNativeError(new Error('plain')), undefined);
  } finally {
    closeSync(fd);
  }
  // Bad arguments have the same shape (EINVAL, named after the function).
  assert.throws(
    () => n.socket(AF_UNIX, -1, 0, false),
    (e: unknown) => e instanceof NativeError && e.code === 'EINVAL' && e.syscall === 'socket' && e.errno === 22,
  );
  assert.throws(() => n.sendmsg(0, 'x' as unknown as Uint8Array, undefined, undefined), { code: 'EINVAL', syscall: 'sendmsg' });
  assert.throws(() => n.bindUnix(0, 'x'.repeat(108)), { code: 'ENAMETOOLONG', syscall: 'bind' });
});

test('SOCK_SEQPACKET listen, connect, accept, socketInfo and peerCred on a filesystem path', (t) => {
  const n = native();
  const dir = mkdtempSync(join(tmpdir(), 'ontap-native-'));
  const fds: number[] = [];
  t.after(() => {
    closeAll(...fds);
    rmSync(dir, { recursive: true, force: true });
  });
  const path = join(dir, 'port');
  const server = n.socket(AF_UNIX, SOCK_SEQPACKET, 0, true);
  fds.push(server);
  assert.equal(fdFlags(server) & (O_CLOEXEC | O_NONBLOCK), O_CLOEXEC | O_NONBLOCK);
  n.bindUnix(server, path);
  n.listen(server, 8);
  assert.deepEqual(n.socketInfo(server), { domain: AF_UNIX, type: SOCK_SEQPACKET, listening: true, path });
  assert.equal(n.accept(server), -1, 'nothing to accept yet: EAGAIN is -1');

  const client = n.socket(AF_UNIX, SOCK_SEQPACKET, 0, false);
  fds.push(client);
  assert.equal(fdFlags(client) & (O_CLOEXEC | O_NONBLOCK), O_CLOEXEC);
  n.connectUnix(client, path);
  const conn = n.accept(server);
  assert.ok(conn >= 0);
  fds.push(conn);
  assert.equal(fdFlags(conn) & (O_CLOEXEC | O_NONBLOCK), O_CLOEXEC | O_NONBLOCK, 'accept4 flags');
  assert.deepEqual(n.socketInfo(conn), { domain: AF_UNIX, type: SOCK_SEQPACKET, listening: false, path });
  assert.deepEqual(n.socketInfo(client), { domain: AF_UNIX, type: SOCK_SEQPACKET, listening: false, path: undefined });
  assert.deepEqual(n.peerCred(conn), { pid: process.pid, uid: process.getuid!(), gid: process.getgid!() });

  assert.equal(n.sendmsg(client, Buffer.from('hello'), undefined, undefined), 5);
  const r = n.recvmsg(conn, 64, 0);
  assert.ok(r);
  assert.equal(r.data.toString(), 'hello');
  assert.equal(r.senderPortId, undefined);
  assert.equal(r.nsid, undefined);

  const other = n.socket(AF_UNIX, SOCK_SEQPACKET, 0, false);
  fds.push(other);
  assert.throws(() => n.connectUnix(other, join(dir, 'absent')), { code: 'ENOENT', syscall: 'connect' });
  assert.throws(() => n.bindUnix(other, path), { code: 'EADDRINUSE', syscall: 'bind' });
});

test('SCM_RIGHTS: a FIFO descriptor arrives working and O_CLOEXEC', (t) => {
  const n = native();
  const dir = mkdtempSync(join(tmpdir(), 'ontap-native-'));
  const [a, b] = pair();
  const fifo = join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const original = openSync(fifo, 'r+'); // O_RDWR on a FIFO: both ends in one descriptor
  const received: number[] = [];
  t.after(() => {
    closeAll(a, b, ...received);
    closeSync(original);
    rmSync(dir, { recursive: true, force: true });
  });
  n.setCloexec(original, false); // the copy must be CLOEXEC because of MSG_CMSG_CLOEXEC, not inheritance
  assert.equal(n.sendmsg(a, Buffer.from('fd'), [original], undefined), 2);
  const r = n.recvmsg(b, 16, 4);
  assert.ok(r);
  received.push(...r.fds);
  assert.equal(r.data.toString(), 'fd');
  assert.equal(r.fds.length, 1);
  assert.equal(r.controlTruncated, false);
  const fd = r.fds[0]!;
  assert.notEqual(fd, original);
  assert.equal(fdFlags(fd) & O_CLOEXEC, O_CLOEXEC);
  writeSync(fd, 'ping');
  const buf = Buffer.alloc(8);
  assert.equal(readSync(original, buf, 0, 8, null), 4);
  assert.equal(buf.subarray(0, 4).toString(), 'ping');
});

test('descriptors beyond maxFds are closed and reported as controlTruncated', (t) => {
  const n = native();
  const [a, b] = pair();
  const extra = [openSync('/dev/null', 'r'), openSync('/dev/null', 'r'), openSync('/dev/null', 'r')];
  const received: number[] = [];
  t.after(() => {
    closeAll(a, b, ...received);
    extra.forEach((fd) => closeSync(fd));
  });
  const before = openFds();
  n.sendmsg(a, Buffer.from('x'), extra, undefined);
  const r = n.recvmsg(b, 16, 1);
  assert.ok(r);
  received.push(...r.fds);
  assert.equal(r.fds.length, 1);
  assert.equal(r.controlTruncated, true);
  assert.equal(openFds(), before + 1, 'the two extra descriptors were closed');

  n.sendmsg(a, Buffer.from('y'), extra, undefined);
  const none = n.recvmsg(b, 16, 0);
  assert.ok(none);
  assert.deepEqual(none.fds, []);
  assert.equal(none.controlTruncated, true);
  assert.equal(openFds(), before + 1);
});

test('recvmsg reports truncation with the full record length; peek does not consume', (t) => {
  const n = native();
  const [a, b] = pair();
  t.after(() => closeAll(a, b));
  const record = Buffer.alloc(100, 7);
  n.sendmsg(a, record, undefined, undefined);
  n.sendmsg(a, record, undefined, undefined);

  const peeked = n.recvmsg(b, 0, 0, true);
  assert.ok(peeked);
  assert.equal(peeked.length, 100);
  assert.equal(peeked.data.length, 0);
  assert.equal(peeked.truncated, true);

  const full = n.recvmsg(b, 4096, 0);
  assert.ok(full);
  assert.equal(full.length, 100);
  assert.equal(full.truncated, false);
  assert.ok(full.data.equals(record));

  const cut = n.recvmsg(b, 10, 0);
  assert.ok(cut);
  assert.equal(cut.data.length, 10);
  assert.equal(cut.length, 100);
  assert.equal(cut.truncated, true);
  assert.equal(n.recvmsg(b, 10, 0), null, 'the rest of a truncated record is gone; EAGAIN is null');

  // Larger than the reused scratch buffer: a temporary buffer, same result.
  const big = Buffer.alloc(200_000, 3);
  const [c, d] = native().socketpair(SOCK_SEQPACKET | SOCK_NONBLOCK);
  t.after(() => closeAll(c, d));
  n.setsockoptInt(c, SOL_SOCKET, SO_SNDBUF, 1 << 20);
  assert.equal(n.sendmsg(c, big, undefined, undefined), big.length);
  const rb = n.recvmsg(d, 300_000, 0);
  assert.ok(rb);
  assert.ok(rb.data.equals(big));
});

test('nonblocking send fills up and returns -1; setTimeouts turns a blocking recv into null', (t) => {
  const n = native();
  const [a, b] = pair();
  const [c, d] = pair(false);
  t.after(() => closeAll(a, b, c, d));
  let sent = 0;
  while (n.sendmsg(a, Buffer.alloc(1024), undefined, undefined) !== -1) sent++;
  assert.ok(sent > 0);

  n.setTimeouts(d, 100, 0);
  const start = Date.now();
  assert.equal(n.recvmsg(d, 16, 0), null);
  assert.ok(Date.now() - start >= 90, 'waited for SO_RCVTIMEO');
});

test('setsockoptInt/getsockoptInt and setCloexec', (t) => {
  const n = native();
  const [a, b] = pair();
  t.after(() => closeAll(a, b));
  assert.equal(n.getsockoptInt(a, SOL_SOCKET, SO_PASSCRED), 0);
  n.setsockoptInt(a, SOL_SOCKET, SO_PASSCRED, 1);
  assert.equal(n.getsockoptInt(a, SOL_SOCKET, SO_PASSCRED), 1);
  n.setCloexec(a, false);
  assert.equal(fdFlags(a) & O_CLOEXEC, 0);
  n.setCloexec(a, true);
  assert.equal(fdFlags(a) & O_CLOEXEC, O_CLOEXEC);
  // SO_PASSCRED adds an SCM_CREDENTIALS message next to the rights: both must fit.
  const devnull = openSync('/dev/null', 'r');
  n.sendmsg(b, Buffer.from('c'), [devnull], undefined);
  closeSync(devnull);
  const r = n.recvmsg(a, 8, 1);
  assert.ok(r);
  assert.equal(r.fds.length, 1);
  assert.equal(r.controlTruncated, false);
  n.close(r.fds[0]!);
});

test('poll fires readable on a socketpair and is silent after stop()', async (t) => {
  const n = native();
  const [a, b] = pair();
  const events: Array<[Error | null, boolean, boolean]> = [];
  let wake: (() => void) | undefined;
  const poller = n.poll(b, (err, readable, writable) => {
    events.push([err, readable, writable]);
    wake?.();
  });
  t.after(() => {
    poller.close();
    closeAll(a, b);
  });
  const next = () => new Promise<void>((resolve) => (wake = resolve));

  poller.start(true, false);
  let fired = next();
  n.sendmsg(a, Buffer.from('1'), undefined, undefined);
  await fired;
  assert.deepEqual(events, [[null, true, false]]);
  assert.equal(n.recvmsg(b, 8, 0)?.data.toString(), '1');

  poller.stop();
  n.sendmsg(a, Buffer.from('2'), undefined, undefined);
  await sleep(50);
  assert.equal(events.length, 1, 'no callback after stop()');

  fired = next();
  poller.start(true, true);
  await fired;
  assert.deepEqual(events[1], [null, true, true]);
  poller.close();
  assert.throws(() => poller.start(true, false), { code: 'EBADF', syscall: 'uv_poll_start' });
  poller.close(); // idempotent
});

test('poll reports a socket error by its real errno and stops', async (t) => {
  const n = native();
  const [a, b] = pair();
  t.after(() => n.close(a));
  // Closing a seqpacket end with unread data gives its peer ECONNRESET (POLLERR).
  n.sendmsg(a, Buffer.from('unread'), undefined, undefined);
  n.close(b);
  const result = await new Promise<[Error | null, boolean, boolean]>((resolve) => {
    const poller: Poller = n.poll(a, (err, readable, writable) => {
      poller.close();
      resolve([err, readable, writable]);
    });
    poller.start(true, false);
  });
  const err = asNativeError(result[0]);
  assert.ok(err, `expected a NativeError, got ${String(result[0])}`);
  assert.equal(err.code, 'ECONNRESET');
  assert.equal(err.syscall, 'poll');
});

test('poll on a non-pollable descriptor throws from poll()', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ontap-native-'));
  const fd = openSync(join(dir, 'file'), 'w');
  try {
    assert.throws(() => native().poll(fd, () => {}), { code: 'EPERM', syscall: 'uv_poll_init' });
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('pollers dropped without close() are collected without crashing; active ones keep firing', () => {
  const index = fileURLToPath(new URL('../../src/native/index.js', import.meta.url));
  const script = `
    import { native } from ${JSON.stringify(index)};
    const n = native();
    const pairs = [];
    for (let i = 0; i < 50; i++) {
      const [a, b] = n.socketpair(5 | 2048);
      pairs.push([a, b]);
      const p = n.poll(b, () => {});
      if (i % 2 === 0) p.start(true, false); else p.stop();
    }
    let fired = false;
    (() => {
      const [a, b] = n.socketpair(5 | 2048);
      const p = n.poll(b, (err, readable) => { fired = readable; p.close(); });
      p.start(true, false);
      setTimeout(() => n.sendmsg(a, Buffer.from('x'), undefined, undefined), 20);
    })();
    for (let i = 0; i < 5; i++) globalThis.gc();
    await new Promise((r) => setTimeout(r, 100));
    for (let i = 0; i < 5; i++) globalThis.gc();
    await new Promise((r) => setImmediate(r));
    if (!fired) { console.error('active poller did not fire after gc'); process.exit(2); }
    // Started pollers keep the loop alive, as sockets do: leave explicitly.
    process.exit(0);
  `;
  const r = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  assert.equal(r.signal, null, `child died by ${r.signal}: ${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
});

test('an exception thrown by a poll callback is an ordinary uncaught exception', () => {
  const index = fileURLToPath(new URL('../../src/native/index.js', import.meta.url));
  const script = `
    import { native } from ${JSON.stringify(index)};
    const n = native();
    const [a, b] = n.socketpair(5 | 2048);
    process.on('uncaughtException', (e) => { console.log('caught ' + e.message); process.exit(0); });
    const p = n.poll(b, () => { throw new Error('from callback'); });
    p.start(true, false);
    n.sendmsg(a, Buffer.from('x'), undefined, undefined);
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'caught from callback');
});

test('sendmsgAsync sends a copy from the thread pool and reports errors as NativeError', async (t) => {
  const n = native();
  const [a, b] = pair();
  t.after(() => closeAll(a, b));
  const data = Buffer.from('async payload');
  const sent = await new Promise<number>((resolve, reject) => {
    n.sendmsgAsync(a, data, undefined, (err, count) => (err ? reject(err) : resolve(count)));
    data.fill(0); // the worker must have copied it already
  });
  assert.equal(sent, 13);
  assert.equal(n.recvmsg(b, 64, 0)?.data.toString(), 'async payload');

  const devnull = openSync('/dev/null', 'w');
  t.after(() => closeSync(devnull));
  const [err, count] = await new Promise<[Error | null, number]>((resolve) =>
    n.sendmsgAsync(devnull, Buffer.from('x'), undefined, (e, c) => resolve([e, c])),
  );
  assert.ok(err instanceof NativeError);
  assert.equal(err.code, 'ENOTSOCK');
  assert.equal(err.syscall, 'sendmsg');
  assert.equal(count, -1);
});
