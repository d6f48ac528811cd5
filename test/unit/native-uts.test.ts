// UTS namespaces through the native addon: utsHostnames reads the host name of many namespaces on
// one thread; a prioritized poll of /proc/sys/kernel/hostname is the doorbell every host name
// change rings, in any UTS namespace, by sethostname(2) or by a write to the file. Needs root
// (setns) and unshare(1); the namespaces are held by child processes the tests end.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { hostname } from 'node:os';
import { native, NativeError } from '../../src/native/index.js';
import { requireOrSkip } from '../helpers/skip.js';

const canRun = process.getuid?.() === 0 && spawnSync('unshare', ['--version']).status === 0;
const why = 'needs root and unshare(1) (util-linux)';

/** A process in a UTS namespace of its own named `name`; resolves once the name is set. */
async function utsHolder(name: string): Promise<ChildProcess> {
  const child = spawn('unshare', ['--uts', 'sh', '-c', `hostname "$1" && echo ready && exec sleep 60`, 'sh', name], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    child.on('exit', (code) => reject(new Error(`unshare exited with ${code}`)));
  });
  return child;
}

test('utsHostnames: each descriptor\'s own name, raw bytes, in order; an errno for what is not a UTS namespace', async (t: TestContext) => {
  if (!requireOrSkip(t, canRun, why)) return;
  const holders = await Promise.all(['uts-a', 'uts-b.example', 'x'.repeat(64)].map(utsHolder));
  const fds: number[] = [];
  try {
    for (const h of holders) fds.push(openSync(`/proc/${h.pid}/ns/uts`, 'r'));
    const own = openSync('/proc/self/ns/uts', 'r');
    const net = openSync('/proc/self/ns/net', 'r');
    fds.push(own, net);
    const got = native().utsHostnames(fds);
    assert.equal(got.length, 5);
    assert.deepEqual(got.slice(0, 4).map((b) => (Buffer.isBuffer(b) ? b.toString('latin1') : b)), ['uts-a', 'uts-b.example', 'x'.repeat(64), hostname()]);
    assert.equal(got[4], 22, 'a network namespace descriptor: EINVAL');
    // The event-loop thread never moved.
    assert.equal(native().utsHostnames([own])[0]!.toString(), hostname());
    assert.deepEqual(native().utsHostnames([]), []);
    assert.throws(() => native().utsHostnames([-1]), (e: unknown) => e instanceof NativeError && e.code === 'EINVAL' && /fds must be/.test(e.message));
  } finally {
    for (const fd of fds) closeSync(fd);
    for (const h of holders) h.kill('SIGKILL');
  }
});

test('poll(priority) on /proc/sys/kernel/hostname: rung by sethostname and by a write in another UTS namespace, once each, and quiet otherwise', async (t: TestContext) => {
  if (!requireOrSkip(t, canRun, why)) return;
  const fd = openSync('/proc/sys/kernel/hostname', 'r');
  const rings: Array<{ err: Error | null; priority: boolean | undefined; readable: boolean }> = [];
  const poller = native().poll(fd, (err, readable, _w, priority) => rings.push({ err, priority, readable }));
  try {
    poller.start(false, false, true);
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(rings, [], 'nothing changed yet: no call');
    spawnSync('unshare', ['--uts', 'sh', '-c', 'hostname ring-1']);
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(rings, [{ err: null, priority: true, readable: false }]);
    spawnSync('unshare', ['--uts', 'sh', '-c', 'echo ring-2 > /proc/sys/kernel/hostname']);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(rings.length, 2, 'a write to the file rings too');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(rings.length, 2, 'and nothing more while nothing changes');
  } finally {
    poller.close();
    closeSync(fd);
  }
});
