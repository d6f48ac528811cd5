// execve, unshare, sethostname and TUNSETIFF change the calling process for good, so each runs in
// a child `node -e` that imports the built addon.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, openSync, closeSync } from 'node:fs';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { native } from '../../src/native/index.js';
import { requireOrSkip } from '../helpers/skip.js';

const index = fileURLToPath(new URL('../../src/native/index.js', import.meta.url));
const constants = fileURLToPath(new URL('../../src/native/constants.js', import.meta.url));
const isRoot = process.getuid?.() === 0;

/** Runs an ES module snippet with `n` (the binding) and `C` (constants) in scope. */
function child(body: string): { status: number | null; stdout: string; stderr: string } {
  const script =
    `import { native } from ${JSON.stringify(index)};\n` +
    `import * as C from ${JSON.stringify(constants)};\n` +
    `import * as fs from 'node:fs';\nimport * as os from 'node:os';\n` +
    `const n = native();\n${body}`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** SigIgn/SigBlk/... of a /proc/PID/status text, as bigints. */
function sigField(status: string, field: string): bigint {
  const m = new RegExp(`^${field}:\\s+([0-9a-f]+)$`, 'm').exec(status);
  assert.ok(m?.[1], `no ${field} in ${status}`);
  return BigInt(`0x${m[1]}`);
}

// Bit n-1 of SigIgn is signal n. Node ignores SIGPIPE (13) and SIGXFSZ (25).
const NODE_IGNORED = (1n << 12n) | (1n << 24n);
const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;

test('execve runs the program with exactly the given argv and env; only non-CLOEXEC fds survive', () => {
  const r = child(`
    const keep = fs.openSync('/dev/null', 'r');
    n.setCloexec(keep, false);
    const drop = fs.openSync('/dev/null', 'r');
    n.execve('/bin/sh', ['sh', '-c', 'echo "$0 $1 X=$X HOME=\${HOME-unset}"; ' +
      '[ -e /proc/self/fd/$KEEP ] && echo keep-open; [ -e /proc/self/fd/$DROP ] || echo drop-closed', 'zero', 'one'],
      ['X=hello world', 'KEEP=' + keep, 'DROP=' + drop]);
  `);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n'), ['zero one X=hello world HOME=unset', 'keep-open', 'drop-closed']);
});

test('execve starts the program with default signal dispositions, an empty mask and inherited, blocking stdio', () => {
  const r = child(`
    const status = fs.readFileSync('/proc/self/status', 'utf8');
    process.stdout.write(status.split('\\n').filter((l) => /^Sig(Ign|Blk)/.test(l)).join('\\n') + '\\n');
    process.stdout.write(fs.readFileSync('/proc/self/fdinfo/1', 'utf8').split('\\n')[1] + '\\n---\\n');
    n.execve('/bin/cat', ['cat', '/proc/self/status', '/proc/self/fdinfo/1'], []);
  `);
  assert.equal(r.status, 0, r.stderr);
  const [before, after] = r.stdout.split('---\n') as [string, string];
  assert.equal(sigField(before, 'SigIgn') & NODE_IGNORED, NODE_IGNORED, 'Node ignores SIGPIPE and SIGXFSZ');
  const flagsBefore = parseInt(/^flags:\s+([0-7]+)/m.exec(before)![1]!, 8);
  assert.ok((flagsBefore & O_NONBLOCK) !== 0, 'Node made its stdout pipe O_NONBLOCK: the reset is needed');
  assert.ok((flagsBefore & O_CLOEXEC) !== 0, 'Node made its stdout close-on-exec: the reset is needed');
  // That cat could print at all shows stdout survived execve.
  assert.equal(sigField(after, 'SigIgn'), 0n);
  assert.equal(sigField(after, 'SigBlk'), 0n);
  const flagsAfter = parseInt(/^flags:\s+([0-7]+)/m.exec(after)![1]!, 8);
  assert.equal(flagsAfter & O_NONBLOCK, 0);
});

test('a failed execve throws ENOENT and restores the signal state and stdio flags', () => {
  const r = child(`
    const sig = () => fs.readFileSync('/proc/self/status', 'utf8').split('\\n').filter((l) => /^Sig(Ign|Blk)/.test(l)).join();
    const fl = () => /^flags:\\s+(\\d+)/m.exec(fs.readFileSync('/proc/self/fdinfo/1', 'utf8'))[1];
    process.stdout.write('');
    const before = [sig(), fl()];
    try {
      n.execve('/nonexistent/ontap-command', ['x'], []);
    } catch (e) {
      console.log(JSON.stringify({ name: e.name, code: e.code, errno: e.errno, syscall: e.syscall, message: e.message,
        same: JSON.stringify(before) === JSON.stringify([sig(), fl()]) }));
    }
  `);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), {
    name: 'NativeError',
    code: 'ENOENT',
    errno: 2,
    syscall: 'execve',
    message: 'execve: No such file or directory: /nonexistent/ontap-command (ENOENT)',
    same: true,
  });
});

test('unshare moves only the main thread; sethostname applies to the new UTS namespace', (t) => {
  if (!requireOrSkip(t, isRoot, 'unshare needs root')) return;
  const hostBefore = hostname();
  const name = `ontap-t-${process.pid}`;
  const r = child(`
    n.unshare(C.CLONE_NEWUTS);
    n.sethostname(${JSON.stringify(name)});
    console.log(os.hostname());
    n.unshare(C.CLONE_NEWNET);
    // /proc/self/net follows the main thread, which is now alone in a fresh namespace.
    console.log(fs.readFileSync('/proc/self/net/dev', 'utf8').split('\\n').slice(2).filter(Boolean).map((l) => l.split(':')[0].trim()).join(','));
    try { n.unshare(C.CLONE_NEWUSER); console.log('userns: ok'); } catch (e) { console.log('userns: ' + e.code + ' ' + e.syscall); }
  `);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n'), [name, 'lo', 'userns: EINVAL unshare']);
  assert.equal(hostname(), hostBefore);
});

test('TUNSETIFF/TUNGETIFF on /dev/net/tun in a private namespace', (t) => {
  if (!requireOrSkip(t, isRoot && existsSync('/dev/net/tun'), 'needs root and /dev/net/tun')) return;
  // The tap lives in the child's own namespace and vanishes with its descriptor.
  const r = child(`
    n.unshare(C.CLONE_NEWNET);
    const fd = fs.openSync('/dev/net/tun', 'r+');
    n.tapSetIff(fd, C.IFF_TAP | C.IFF_NO_PI);
    console.log(n.tapGetIff(fd));
    console.log(fs.readFileSync('/proc/self/net/dev', 'utf8').includes('tap0:'));
  `);
  assert.equal(r.status, 0, r.stderr);
  const [flags, present] = r.stdout.trim().split('\n');
  assert.equal(Number(flags) & 0x1003, 0x1002, 'IFF_TAP|IFF_NO_PI');
  assert.equal(present, 'true');
});

test('tapGetIff on a non-tap descriptor throws ENOTTY from ioctl', () => {
  const fd = openSync('/dev/null', 'r');
  try {
    assert.throws(() => native().tapGetIff(fd), { code: 'ENOTTY', syscall: 'ioctl' });
  } finally {
    closeSync(fd);
  }
});
