// Network namespaces through the native addon: nsid-tagged netlink events, netlink overruns and
// writeFileInNetns. Needs root and iproute2; every namespace is named ontap-t-<pid>-<n> and
// deleted by the test that made it, whatever the outcome.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, fstatSync, mkdtempSync, openSync, readFileSync, readlinkSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { native, NativeError } from '../../src/native/index.js';
import type { RecvResult } from '../../src/native/index.js';
import {
  AF_NETLINK,
  NETLINK_LISTEN_ALL_NSID,
  NETLINK_ROUTE,
  AF_UNIX,
  SOCK_RAW,
  SOCK_SEQPACKET,
  SOL_NETLINK,
  SOL_SOCKET,
  SO_RCVBUF,
  IFF_NO_PI,
  IFF_TAP,
  IFF_VNET_HDR,
} from '../../src/native/constants.js';
import { requireOrSkip } from '../helpers/skip.js';

const RTM_NEWLINK = 16;
const RTMGRP_LINK = 1;

const canRun = process.getuid?.() === 0 && spawnSync('ip', ['-V']).status === 0;
const why = 'needs root and iproute2 (ip netns)';

// Namespaces left by a test process that was killed: ours are tagged with the pid.
for (const name of existsSync('/run/netns') ? readdirSync('/run/netns') : []) {
  const m = /^ontap-t-(\d+)-\d+$/.exec(name);
  if (m && !existsSync(`/proc/${m[1]}`)) spawnSync('ip', ['netns', 'del', name]);
}

let counter = 0;
function addNetns(t: TestContext): string {
  const name = `ontap-t-${process.pid}-${++counter}`;
  execFileSync('ip', ['netns', 'add', name]);
  t.after(() => {
    spawnSync('ip', ['netns', 'del', name]);
  });
  return name;
}

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8' });
}

/** The nsid our namespace has for `name` (after `ip netns set NAME auto`). */
function nsidOf(name: string): number {
  const line = ip('netns', 'list-id').split('\n').find((l) => l.includes(`name: ${name})`));
  const m = line && /^nsid (\d+)/.exec(line);
  assert.ok(m?.[1], `no nsid for ${name}`);
  return Number(m[1]);
}

function drain(fd: number): RecvResult[] {
  const out: RecvResult[] = [];
  for (let r = native().recvmsg(fd, 65536, 0); r !== null; r = native().recvmsg(fd, 65536, 0)) out.push(r);
  return out;
}

function linkEventSocket(t: TestContext): number {
  const n = native();
  const fd = n.socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE, true);
  t.after(() => n.close(fd));
  n.bindNetlink(fd, RTMGRP_LINK);
  n.setsockoptInt(fd, SOL_NETLINK, NETLINK_LISTEN_ALL_NSID, 1);
  return fd;
}

test('NETLINK_LISTEN_ALL_NSID: a link event from another namespace carries its nsid', (t) => {
  if (!requireOrSkip(t, canRun, why)) return;
  const name = addNetns(t);
  ip('netns', 'set', name, 'auto');
  const nsid = nsidOf(name);
  const fd = linkEventSocket(t);
  ip('-n', name, 'link', 'set', 'lo', 'up'); // the broadcast is queued before ip returns

  // Other tests may be making events of their own: look for ours.
  const ours = drain(fd).filter((r) => r.nsid === nsid);
  assert.ok(ours.length > 0, `no event tagged with nsid ${nsid}`);
  const event = ours[0]!;
  assert.equal(event.senderPortId, 0);
  assert.equal(event.data.readUInt16LE(4), RTM_NEWLINK);
  assert.equal(event.data.readInt32LE(20), 1, 'lo');
});

test('a netlink overrun surfaces as ENOBUFS from poll (via SO_ERROR) or from recvmsg', { timeout: 10_000 }, async (t) => {
  if (!requireOrSkip(t, canRun, why)) return;
  const n = native();
  const name = addNetns(t);
  ip('netns', 'set', name, 'auto');
  const polled = linkEventSocket(t);
  const plain = linkEventSocket(t);
  for (const fd of [polled, plain]) n.setsockoptInt(fd, SOL_SOCKET, SO_RCVBUF, 1); // the kernel minimum
  const flaps = Array.from({ length: 10 }, (_, i) => `link set lo ${i % 2 === 0 ? 'up' : 'down'}`).join('\n');
  execFileSync('ip', ['-n', name, '-batch', '-'], { input: flaps });

  const err = await new Promise<Error | null>((resolve) => {
    const poller = n.poll(polled, (e) => {
      poller.close();
      resolve(e);
    });
    poller.start(true, false);
  });
  assert.ok(err instanceof NativeError, `expected an error, got ${String(err)}`);
  assert.equal(err.code, 'ENOBUFS');
  assert.equal(err.syscall, 'poll');
  assert.ok(drain(polled).length > 0, 'what fitted is still queued');

  assert.throws(() => n.recvmsg(plain, 65536, 0), { code: 'ENOBUFS', syscall: 'recvmsg' });
  assert.ok(drain(plain).length > 0);
});

test('writeFileInNetns writes /proc/sys/net of the target namespace from a thread', (t) => {
  if (!requireOrSkip(t, canRun && existsSync('/proc/sys/net/ipv6'), `${why}, and IPv6`)) return;
  const n = native();
  const name = addNetns(t);
  const nsFd = openSync(`/run/netns/${name}`, 'r');
  t.after(() => closeSync(nsFd));
  const knob = '/proc/sys/net/ipv6/conf/lo/disable_ipv6';
  const inNs = (path: string) => ip('netns', 'exec', name, 'cat', path).trim();
  const hostBefore = readFileSync(knob, 'utf8').trim();
  const ourNetns = readlinkSync('/proc/thread-self/ns/net');
  const target = inNs(knob) === '1' ? '0' : '1';

  n.writeFileInNetns(nsFd, knob, target);
  assert.equal(inNs(knob), target);
  assert.equal(readFileSync(knob, 'utf8').trim(), hostBefore, 'the host value is unchanged');
  assert.equal(readlinkSync('/proc/thread-self/ns/net'), ourNetns, 'the event-loop thread never moved');

  // A device that exists only in the target namespace: the path resolves there, not on the host.
  const dev = `ontapv${process.pid % 100000}`;
  ip('-n', name, 'link', 'add', dev, 'type', 'veth', 'peer', `${dev}p`);
  assert.ok(!existsSync(`/proc/sys/net/ipv6/conf/${dev}`));
  n.writeFileInNetns(nsFd, `/proc/sys/net/ipv6/conf/${dev}/disable_ipv6`, '1');
  assert.equal(inNs(`/proc/sys/net/ipv6/conf/${dev}/disable_ipv6`), '1');

  // /proc/thread-self/net is the thread's view (the file opens; it is read-only, so write fails),
  // while /proc/self and /proc/net are the thread-group leader's, i.e. the host's, and so is
  // /sys/class/net (sysfs shows the namespace it was mounted in).
  assert.throws(() => n.writeFileInNetns(nsFd, `/proc/thread-self/net/dev_snmp6/${dev}`, '1'), { syscall: 'write' });
  for (const hostView of [`/proc/self/net/dev_snmp6/${dev}`, `/proc/net/dev_snmp6/${dev}`, `/sys/class/net/${dev}/mtu`]) {
    assert.throws(() => n.writeFileInNetns(nsFd, hostView, '1'), { code: 'ENOENT', syscall: 'open' }, hostView);
  }

  assert.throws(
    () => n.writeFileInNetns(nsFd, '/proc/sys/net/ipv6/conf/ontap-absent/disable_ipv6', '1'),
    (e: unknown) => e instanceof NativeError && e.code === 'ENOENT' && e.syscall === 'open' && e.message.includes('ontap-absent'),
  );
  assert.throws(() => n.writeFileInNetns(nsFd, knob, 'not a number'), { code: 'EINVAL', syscall: 'write' });
  const notNs = openSync('/dev/null', 'r');
  t.after(() => closeSync(notNs));
  assert.throws(() => n.writeFileInNetns(notNs, knob, '1'), { code: 'EINVAL', syscall: 'setns' });
});

test('socketNetns of an accepted unix connection is the namespace the client created its socket in', (t) => {
  if (!requireOrSkip(t, canRun, why)) return;
  const n = native();
  const name = addNetns(t);
  const nsFd = openSync(`/run/netns/${name}`, 'r');
  const dir = mkdtempSync(join(tmpdir(), 'ontap-native-'));
  const fds: number[] = [];
  t.after(() => {
    for (const fd of fds) n.close(fd);
    closeSync(nsFd);
    rmSync(dir, { recursive: true, force: true });
  });
  const server = n.socket(AF_UNIX, SOCK_SEQPACKET, 0, true);
  fds.push(server);
  n.bindUnix(server, join(dir, 's'));
  n.listen(server, 4);
  const same = (fd: number, path: string) => {
    const a = fstatSync(fd, { bigint: true });
    const b = statSync(path, { bigint: true });
    return a.dev === b.dev && a.ino === b.ino;
  };
  // One client socket made inside the namespace (by a thread that setns()es), one in ours; both
  // connect from here: a filesystem socket path does not depend on the namespace.
  for (const [client, netns] of [[n.socketInNetns(nsFd, AF_UNIX, SOCK_SEQPACKET, 0, false), `/run/netns/${name}`],
    [n.socket(AF_UNIX, SOCK_SEQPACKET, 0, false), '/proc/self/ns/net']] as const) {
    fds.push(client);
    n.connectUnix(client, join(dir, 's'));
    const conn = n.accept(server);
    fds.push(conn);
    const ns = n.socketNetns(conn);
    fds.push(ns);
    assert.ok(same(ns, netns), `the accepted connection belongs to ${netns}`);
    assert.match(readlinkSync(`/proc/self/fd/${ns}`), /^net:\[\d+\]$/);
    const flags = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${ns}`, 'utf8'))?.[1] ?? '0';
    assert.ok(parseInt(flags, 8) & 0o2000000, 'O_CLOEXEC');
    const own = n.socketNetns(client);
    fds.push(own);
    assert.ok(same(own, netns), 'so does the client socket');
  }
  const notSocket = openSync('/dev/null', 'r');
  t.after(() => closeSync(notSocket));
  assert.throws(() => n.socketNetns(notSocket), { code: 'ENOTTY', syscall: 'ioctl' });
});

test('tapSetIff/tapGetIff on a macvtap character device', (t) => {
  if (!requireOrSkip(t, canRun, why)) return;
  const n = native();
  const name = addNetns(t);
  ip('-n', name, 'link', 'add', 'up0', 'type', 'veth', 'peer', 'up1');
  ip('-n', name, 'link', 'add', 'link', 'up0', 'name', 'mvt0', 'type', 'macvtap');
  // /dev/tapN is named by ifindex, which is only unique per namespace: two namespaces can both
  // have a tap4 and devtmpfs then holds only the first. Use the device number and our own node.
  const devNo = ip('netns', 'exec', name, 'sh', '-c', 'cat /sys/class/net/mvt0/macvtap/*/dev').trim();
  const [major, minor] = devNo.split(':');
  assert.ok(major && minor, devNo);
  const dir = mkdtempSync(join(tmpdir(), 'ontap-native-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  execFileSync('mknod', [join(dir, 'tap'), 'c', major, minor]);
  const fd = openSync(join(dir, 'tap'), 'r+');
  t.after(() => closeSync(fd));

  assert.equal(n.tapGetIff(fd), IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, 'macvtap defaults');
  n.tapSetIff(fd, IFF_TAP | IFF_NO_PI);
  assert.equal(n.tapGetIff(fd), IFF_TAP | IFF_NO_PI);
  n.tapSetIff(fd, IFF_TAP | IFF_NO_PI | IFF_VNET_HDR);
  assert.equal(n.tapGetIff(fd), IFF_TAP | IFF_NO_PI | IFF_VNET_HDR);
  assert.throws(() => n.tapSetIff(fd, IFF_TAP), { code: 'EINVAL', syscall: 'ioctl' }, 'macvtap insists on IFF_NO_PI');
});

test('nsOwnerUserns: the owner of our namespace is our user namespace; of an unshare -Urn one, another', async (t) => {
  if (!requireOrSkip(t, canRun && spawnSync('unshare', ['--version']).status === 0, 'needs root and unshare (util-linux)')) return;
  const ours = readlinkSync('/proc/self/ns/user');
  const nameOf = (fd: number): string => readlinkSync(`/proc/self/fd/${fd}`);
  const ownFd = openSync('/proc/self/ns/net', 'r');
  const ownerFd = native().nsOwnerUserns(ownFd);
  try {
    assert.equal(nameOf(ownerFd), ours);
  } finally {
    closeSync(ownerFd);
    closeSync(ownFd);
  }
  // A namespace made by a process in a user namespace of its own is owned by that one.
  const child = spawn('unshare', ['-Urn', 'sleep', '10'], { stdio: 'ignore' });
  t.after(() => child.kill('SIGKILL'));
  let netFd = -1;
  for (let i = 0; i < 250 && netFd < 0; i++) {
    try {
      if (readlinkSync(`/proc/${child.pid}/ns/user`) !== ours) netFd = openSync(`/proc/${child.pid}/ns/net`, 'r');
    } catch {
      // not yet unshared
    }
    if (netFd < 0) await new Promise((r) => setTimeout(r, 20));
  }
  assert.ok(netFd >= 0, 'the child unshared');
  const theirs = native().nsOwnerUserns(netFd);
  try {
    assert.equal(nameOf(theirs), readlinkSync(`/proc/${child.pid}/ns/user`));
    assert.notEqual(nameOf(theirs), ours);
  } finally {
    closeSync(theirs);
    closeSync(netFd);
  }
  const file = openSync('/proc/self/stat', 'r');
  try {
    assert.throws(() => native().nsOwnerUserns(file), (e: unknown) => e instanceof NativeError && e.syscall === 'ioctl');
  } finally {
    closeSync(file);
  }
});
