/**
 * The client side of bench/allocate, run inside a namespace (`ip netns exec NS node worker.js ...`):
 *   ontap SOCKET TYPE COUNT WINDOW   COUNT allocations, at most WINDOW leases held at once
 *   hold SOCKET TYPE COUNT           hold COUNT leases, then close them all at once and report
 *                                    how long until the kernel has deleted every device
 *   iplink UPLINK COUNT              baseline: `ip link add ... type macvtap` + open, per call
 *   cni NETNS COUNT                  baseline: the CNI macvlan plugin, ADD then DEL, per call
 *   dhcp SOCKET COUNT                a macvlan with ipv4 "dhcp", one after another
 *   dhcp-burst SOCKET COUNT          COUNT of them asked for at once from this one process
 * Prints one JSON line: latencies in microseconds, wall time in ms.
 */
import { openSync, constants } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { requestDevice } from '../src/ontap-client/client.js';
import { native } from '../src/native/index.js';
import { RouteSocket } from '../src/netns/route-socket.js';
import { isTapType, type DeviceType } from '../src/protocol/messages.js';
import { openTap } from '../src/ontapd/tap.js';
import { AF_UNIX, SOCK_SEQPACKET } from '../src/native/constants.js';

const now = (): bigint => process.hrtime.bigint();
const us = (from: bigint): number => Number(now() - from) / 1000;

/** A lease and its tap descriptors, kept like a VM keeps them until it exits. */
function allocate(socket: string, type: DeviceType, nsFd: number | undefined): number[] {
  const lease = requestDevice(socket, { v: 1, op: 'allocate', type, ...(isTapType(type) ? { queues: 1 } : {}) }, nsFd);
  return [lease.fd, ...lease.tapFds];
}

function release(fds: number[]): void {
  for (const fd of fds) native().close(fd);
}

async function main(): Promise<void> {
  const [mode, a, b, c, d] = process.argv.slice(2);
  const lat: number[] = [];
  const started = now();
  if (mode === 'ontap' || mode === 'hold') {
    const type = b as DeviceType;
    const nsFd = isTapType(type) ? undefined : openSync('/proc/self/ns/net', constants.O_RDONLY);
    const count = Number(c);
    const window = mode === 'hold' ? count + 1 : Number(d);
    const held: number[][] = [];
    for (let i = 0; i < count; i++) {
      const t = now();
      held.push(allocate(a!, type, nsFd));
      lat.push(us(t));
      while (held.length >= window) release(held.shift()!);
    }
    if (mode === 'hold') {
      const rtnl = RouteSocket.open();
      const t = now();
      for (const fds of held.splice(0)) release(fds);
      let polls = 0;
      while (rtnl.dumpLinks().some((l) => l.kind === type)) {
        polls++;
        await new Promise((r) => setTimeout(r, 1));
      }
      process.stdout.write(JSON.stringify({ releaseMs: us(t) / 1000, count, polls }) + '\n');
      return;
    }
    for (const fds of held) release(fds);
  } else if (mode === 'dhcp') {
    // A macvlan with an IPv4 lease, COUNT times one after another: connect to the reply, which
    // ontapd sends once the address is bound; then the lease is ended (DHCPRELEASE).
    const nsFd = openSync('/proc/self/ns/net', constants.O_RDONLY);
    const count = Number(b);
    for (let i = 0; i < count; i++) {
      const t = now();
      const lease = requestDevice(a!, { v: 1, op: 'allocate', type: 'macvlan', ipv4: 'dhcp' }, nsFd, 75000);
      lat.push(us(t));
      if (lease.device.ipv4 === undefined) throw new Error('no ipv4 in the reply');
      release([lease.fd]);
    }
  } else if (mode === 'dhcp-burst') {
    // COUNT requests at once from one process: every connection opened and its request sent,
    // then each reply taken as it arrives (nonblocking sockets, swept every half millisecond).
    const nb = native();
    const nsFd = openSync('/proc/self/ns/net', constants.O_RDONLY);
    const count = Number(b);
    const request = Buffer.from(JSON.stringify({ v: 1, op: 'allocate', type: 'macvlan', ipv4: 'dhcp' }));
    const pending = new Map<number, bigint>();
    const done: number[] = [];
    for (let i = 0; i < count; i++) {
      const fd = nb.socket(AF_UNIX, SOCK_SEQPACKET, 0, true);
      nb.connectUnix(fd, a!);
      const t = now();
      nb.sendmsg(fd, request, [nsFd], undefined);
      pending.set(fd, t);
    }
    while (pending.size > 0) {
      for (const [fd, t] of pending) {
        const r = nb.recvmsg(fd, 16384, 16);
        if (r === null) continue;
        const reply = JSON.parse(r.data.toString('utf8')) as { ok: boolean; device?: { ipv4?: unknown } };
        if (!reply.ok || reply.device?.ipv4 === undefined) throw new Error(`no lease: ${r.data.toString('utf8')}`);
        lat.push(Number(now() - t) / 1000);
        pending.delete(fd);
        done.push(fd);
      }
      await new Promise((res) => setTimeout(res, 0.5));
    }
    release(done);
  } else if (mode === 'iplink') {
    const count = Number(b);
    for (let i = 0; i < count; i++) {
      const t = now();
      const r = spawnSync('ip', ['link', 'add', 'link', a!, 'name', `bm${i}`, 'group', '77', 'up', 'type', 'macvtap']);
      if (r.status !== 0) throw new Error(`ip link add: ${r.stderr}`);
      const fds = openTap(`bm${i}`, 1);
      lat.push(us(t));
      for (const fd of fds) native().close(fd);
    }
    const t = now();
    spawnSync('ip', ['link', 'del', 'group', '77']);
    process.stdout.write(JSON.stringify({ lat, ms: us(started) / 1000, groupDeleteMs: us(t) / 1000 }) + '\n');
    return;
  } else if (mode === 'cni') {
    const count = Number(b);
    const config = JSON.stringify({ cniVersion: '1.0.0', name: 'bench', type: 'macvlan', master: c ?? 'up0', mode: 'bridge', ipam: {} });
    const del: number[] = [];
    for (let i = 0; i < count; i++) {
      const env = { ...process.env, CNI_CONTAINERID: `bench${process.pid}x${i}`, CNI_NETNS: a!, CNI_IFNAME: `eth${process.pid % 1000}x${i}`, CNI_PATH: '/usr/lib/cni' };
      let t = now();
      const add = spawnSync('/usr/lib/cni/macvlan', [], { input: config, env: { ...env, CNI_COMMAND: 'ADD' } });
      if (add.status !== 0) throw new Error(`CNI ADD: ${add.stdout} ${add.stderr}`);
      lat.push(us(t));
      t = now();
      const rm = spawnSync('/usr/lib/cni/macvlan', [], { input: config, env: { ...env, CNI_COMMAND: 'DEL' } });
      if (rm.status !== 0) throw new Error(`CNI DEL: ${rm.stdout} ${rm.stderr}`);
      del.push(us(t));
    }
    process.stdout.write(JSON.stringify({ lat, del, ms: us(started) / 1000 }) + '\n');
    return;
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
  process.stdout.write(JSON.stringify({ lat, ms: us(started) / 1000 }) + '\n');
}

main().catch((e: unknown) => {
  process.stderr.write(`worker: ${(e as Error).stack}\n`);
  process.exit(1);
});
