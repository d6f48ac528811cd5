/**
 * The addon's background closer and closeIfNothingInFlight (native/closer.cc), against real
 * sockets: a TCP socket whose last close waits for its linger time (made by python3, which can set
 * SO_LINGER) is closed off the calling thread and interrupted; a unix socket with nothing in
 * flight closes at once, one with descriptors queued is left for the closer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { native } from '../../src/native/index.js';
import { SOCK_SEQPACKET } from '../../src/native/constants.js';
import { PROGRAM } from '../helpers/socket-attacks.js';
import { hasCommand } from '../helpers/requirements.js';
import { eventually } from '../helpers/netns.js';

const open = (fd: number): boolean => existsSync(`/proc/self/fd/${fd}`);

test('closeIfNothingInFlight closes a unix socket whose queue holds data only', () => {
  const [a, b] = native().socketpair(SOCK_SEQPACKET);
  native().sendmsg(a, Buffer.from('data only'), undefined, undefined);
  assert.equal(native().closeIfNothingInFlight(b), true);
  assert.equal(open(b), false);
  // Closed with a record unread: the peer's next send reports the reset.
  assert.throws(() => native().sendmsg(a, Buffer.from('more'), undefined, undefined), { code: 'ECONNRESET' });
  native().close(a);
});

test('closeIfNothingInFlight leaves a unix socket with descriptors queued open, shut for its peer', () => {
  const [a, b] = native().socketpair(SOCK_SEQPACKET);
  const [c, d] = native().socketpair(SOCK_SEQPACKET);
  native().sendmsg(a, Buffer.from('x'), [c], undefined);
  assert.equal(native().closeIfNothingInFlight(b), false);
  assert.equal(open(b), true);
  assert.throws(() => native().sendmsg(a, Buffer.from('more'), undefined, undefined), { code: 'EPIPE' });
  for (const fd of [a, b, c, d]) native().close(fd);
});

test('a lingering TCP socket is closed in the background, interrupted, without blocking the caller', { skip: hasCommand('python3') ? false : 'needs python3 (SO_LINGER)' }, async () => {
  const [mine, theirs] = native().socketpair(SOCK_SEQPACKET);
  const child = spawn('python3', ['-I', '-c', PROGRAM, 'send-lingering', '3', '2'], { stdio: ['pipe', 'pipe', 'inherit', theirs] });
  try {
    native().close(theirs);
    native().setTimeouts(mine, 15000, 0);
    const r = native().recvmsg(mine, 64, 8);
    assert.ok(r !== null && r.fds.length === 2, 'two lingering sockets received');
    // Only once python closed its copies are ours the last references.
    let out = '';
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    await eventually('python closed its copies', () => out.includes('sent\n'), 10000);
    const before = native().closerStats();
    const started = performance.now();
    native().closeInBackground(4242, r.fds);
    const returned = performance.now() - started;
    assert.ok(returned < 20, `closeInBackground returned after ${returned.toFixed(1)} ms`);
    assert.ok(native().backgroundCloses(4242) > 0, 'the closes are counted on their lane');
    // Each close waits until its 100 ms interrupt; the lane runs both at once.
    await eventually('both closes done', () => native().backgroundCloses(4242) === 0, 2000);
    const after = native().closerStats();
    assert.equal(after.interrupts, true);
    assert.equal(after.closed - before.closed, 2);
    assert.equal(after.interrupted - before.interrupted, 2, 'both closes waited and were interrupted');
    for (const fd of r.fds) assert.equal(open(fd), false);
  } finally {
    child.kill('SIGKILL');
    native().close(mine);
  }
});
