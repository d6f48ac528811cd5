/**
 * The allocation suite, one body for both device families: the host runs it for macvlan/macvtap
 * (allocation-macvlan.test.ts), the VM harness for ipvlan/ipvtap (allocation-ipvlan.vmtest.ts).
 */
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, openSync, statSync, writeFileSync, constants } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { TestNamespaces, eventually, ip, linksOfKind, links, sweepStaleNamespaces } from '../helpers/netns.js';
import { TestDaemon, ONTAP, ROOT } from '../helpers/ontapd.js';
import { installed } from '../helpers/install.js';
import { RawConnection, exchange } from '../helpers/protocol.js';
import { describeWhen, hasCommand, isRoot, kernelHasKind, missing } from '../helpers/requirements.js';
import { native } from '../../src/native/index.js';

export interface Family {
  vlan: 'macvlan' | 'ipvlan';
  tap: 'macvtap' | 'ipvtap';
  defaultMode: string;
}

const FRAMES = join(ROOT, 'test/helpers/frames.py');
const STORM = join(ROOT, 'dist/test/helpers/storm.js');

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs ontap inside ns (as `ip netns exec` does for any workload). */
function ontap(ns: string, args: string[], prefix: string[] = [], client = [process.execPath, ONTAP]): Run {
  const r = spawnSync('ip', ['netns', 'exec', ns, ...prefix, ...client, ...args], { encoding: 'utf8', timeout: 30000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function ontapBackground(ns: string, args: string[]): ChildProcess {
  return spawn('ip', ['netns', 'exec', ns, process.execPath, ONTAP, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
}

function envOf(stdout: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const m = /^(ONTAP_[A-Z0-9_]+)=(.*)$/.exec(line);
    if (m) env[m[1]!] = m[2]!;
  }
  return env;
}

function netnsIno(ns: string): bigint {
  return statSync(`/run/netns/${ns}`, { bigint: true }).ino;
}

async function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs = 10000): Promise<string> {
  let buffer = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms; got: ${buffer}`)), timeoutMs);
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (s: string) => {
      buffer += s;
      const line = buffer.split('\n').find((l) => pattern.test(l));
      if (line !== undefined) {
        clearTimeout(timer);
        resolve(line);
      }
    });
  });
}

export function allocationSuite(family: Family): void {
  const { vlan, tap } = family;
  const reason = missing([
    [isRoot, 'needs root (network namespaces)'],
    [() => hasCommand('ip'), 'needs iproute2 (apt-get install iproute2)'],
    [() => hasCommand('python3'), 'needs python3 for raw frames'],
    [() => kernelHasKind(vlan), `this kernel cannot create ${vlan} devices`],
    [() => kernelHasKind(tap), `this kernel cannot create ${tap} devices`],
  ]);

  describeWhen(`allocation of ${vlan} and ${tap} devices`, reason, () => {
    const nets = new TestNamespaces();
    let host = '';
    let wire = '';
    let client = '';
    let daemon: TestDaemon;
    const background: ChildProcess[] = [];

    before(async () => {
      sweepStaleNamespaces();
      ({ host, wire } = nets.uplink());
      client = nets.add('client');
      // uid 65534 asks for this family too: ontapd's --family is the administrator's choice.
      daemon = new TestDaemon(host, ['up0'], ['--mode', '0666', '--family', vlan]);
      await daemon.start();
    });

    after(async () => {
      if (process.env.ONTAP_TEST_LOG) writeFileSync(process.env.ONTAP_TEST_LOG, daemon?.log ?? '');
      for (const c of background) c.kill('SIGKILL');
      await daemon?.stop();
      daemon?.removeDir();
      nets.destroy();
    });

    test(`${vlan} appears up in the caller's namespace, named, with lo up, and goes when COMMAND exits`, async () => {
      const r = ontap(client, ['-t', vlan, '-n', 'web1', daemon.socket(), '--', 'sh', '-c',
        'env; for i in $(seq 50); do ip -6 addr show dev "$ONTAP_IFNAME" scope link | grep -q inet6 && break; sleep 0.05; done; ip -j -6 addr show dev "$ONTAP_IFNAME" scope link']);
      assert.equal(r.status, 0, r.stderr);
      const env = envOf(r.stdout);
      assert.match(env.ONTAP_IFNAME ?? '', /^ot[0-9a-f]{4}[0-9a-z]+$/);
      assert.equal(env.ONTAP_TYPE, vlan);
      assert.equal(env.ONTAP_NAME, 'web1');
      assert.match(env.ONTAP_NSID ?? '', /^\d+$/);
      assert.match(env.ONTAP_HWADDR ?? '', /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
      assert.ok(Number(env.ONTAP_MTU) >= 1280);
      const lastLine = r.stdout.trim().split('\n').pop()!;
      const addrs = JSON.parse(lastLine) as Array<{ addr_info: Array<{ local: string }> }>;
      const linkLocal = addrs[0]?.addr_info[0]?.local;
      assert.ok(linkLocal?.startsWith('fe80:'), `a link-local address in ${lastLine}`);
      // Gone once COMMAND has exited: release is asynchronous and batched.
      await eventually(`${vlan} removed from the client namespace`, () => linksOfKind(client, vlan).length === 0);
    });

    test(`${vlan}: device attributes as the kernel reports them while COMMAND runs`, async () => {
      const child = ontapBackground(client, ['-t', vlan, '-n', 'web2', daemon.socket(), '--', 'sh', '-c', 'echo started; exec sleep 30']);
      background.push(child);
      await waitForLine(child, /^started$/);
      const [dev] = linksOfKind(client, vlan);
      assert.ok(dev, 'the device exists in the caller namespace');
      assert.ok(dev.flags.includes('UP'), 'the device is up');
      assert.equal(dev.ifalias, 'web2');
      assert.equal(dev.linkinfo?.info_data?.mode, family.defaultMode);
      const lo = links(client).find((l) => l.ifname === 'lo')!;
      assert.ok(lo.flags.includes('UP'), 'lo is up');
      assert.equal(linksOfKind(host, vlan).length, 0, 'nothing was created in ontapd\'s namespace');
      child.kill('SIGKILL');
      await eventually(`${vlan} removed after SIGKILL of COMMAND`, () => linksOfKind(client, vlan).length === 0);
    });

    test(`${vlan}: a name gives a stable IPv6 interface identifier, another name another one`, () => {
      const script = 'for i in $(seq 50); do ip -6 addr show dev "$ONTAP_IFNAME" scope link | grep -q inet6 && break; sleep 0.05; done; ip -6 -o addr show dev "$ONTAP_IFNAME" scope link; ip -d -o link show dev "$ONTAP_IFNAME"';
      const linkLocal = (name: string): string => {
        const r = ontap(client, ['-t', vlan, '-n', name, daemon.socket(), '--', 'sh', '-c', script]);
        assert.equal(r.status, 0, r.stderr);
        assert.match(r.stdout, /addrgenmode stable_secret/);
        const m = /inet6 (fe80::[0-9a-f:]+)\/64/.exec(r.stdout);
        assert.ok(m, `link-local in ${r.stdout}`);
        return m[1]!;
      };
      const first = linkLocal('stable-a');
      assert.equal(linkLocal('stable-a'), first, 'same name, same identifier');
      assert.notEqual(linkLocal('stable-b'), first, 'another name, another identifier');
    });

    test(`${vlan} with --netns lands in a new namespace; --uts sets the hostname`, () => {
      const r = ontap(client, ['--netns', '--uts', '-n', 'box1', '-t', vlan, daemon.socket(), '--', 'sh', '-c',
        'stat -L -c %i /proc/self/ns/net; hostname; ip -j -d link show']);
      assert.equal(r.status, 0, r.stderr);
      const [ino, hostname, json] = r.stdout.trim().split('\n');
      assert.notEqual(BigInt(ino!), netnsIno(client), 'a namespace other than the caller\'s');
      assert.equal(hostname, 'box1');
      const inside = JSON.parse(json!) as Array<{ ifname: string; flags: string[]; linkinfo?: { info_kind?: string } }>;
      assert.ok(inside.some((l) => l.linkinfo?.info_kind === vlan && l.flags.includes('UP')), 'device up inside');
      assert.ok(inside.find((l) => l.ifname === 'lo')?.flags.includes('UP'), 'lo up inside');
      // (The previous test's devices may still be in their goodbye window there: look for box1's.)
      assert.equal(linksOfKind(client, vlan).filter((l) => l.ifalias === 'box1').length, 0, 'nothing in the caller\'s own namespace');
    });

    for (const queues of [1, 4]) {
      test(`${tap} with ${queues} queue(s): frames written to the fds reach the uplink's peer and back`, async () => {
        const token = randomBytes(4).toString('hex');
        const peer = spawn('ip', ['netns', 'exec', wire, 'python3', FRAMES, 'peer', 'peer0', token, '20'], { stdio: ['ignore', 'pipe', 'pipe'] });
        background.push(peer);
        let peerOut = '';
        peer.stdout!.setEncoding('utf8');
        const ready = new Promise<void>((resolve) => peer.stdout!.on('data', (s: string) => {
          peerOut += s;
          if (peerOut.includes('ready')) resolve();
        }));
        await ready;
        const r = ontap(client, ['-t', tap, '-m', String(queues), daemon.socket(), '--', 'python3', FRAMES, 'tap', token, '10']);
        // spawnSync held the event loop: let the peer's output in before judging it.
        const closed = new Promise((resolve) => peer.on('close', resolve));
        peer.kill('SIGTERM');
        await closed;
        assert.equal(r.status, 0, `tap side: ${r.stdout} ${r.stderr}`);
        const answered = r.stdout.trim().split('\n').filter((l) => l.startsWith(`in ${token}`));
        assert.equal(answered.length, queues, 'an answer for every queue came back through the fds');
        const seen = peerOut.split('\n').filter((l) => l.startsWith(`out ${token}`));
        assert.equal(new Set(seen).size, queues, 'the peer saw a frame from every queue');
        await eventually(`${tap} removed after COMMAND exit`, () => linksOfKind(host, tap).length === 0);
      });
    }

    test(`${tap}: descriptors carry IFF_VNET_HDR, environment lists every queue, device is on the host with IPv6 off`, async () => {
      const child = ontapBackground(client, ['-t', tap, '-m', '2', daemon.socket(), '--', 'sh', '-c', 'env; echo started; exec sleep 30']);
      background.push(child);
      let out = '';
      child.stdout!.on('data', (s: Buffer) => (out += s.toString()));
      await waitForLine(child, /^started$/);
      const env = envOf(out);
      assert.equal(env.ONTAP_QUEUES, '2');
      assert.equal(env.ONTAP_VNET_HDR, '1');
      assert.match(env.ONTAP_FD0 ?? '', /^\d+$/);
      assert.match(env.ONTAP_FD1 ?? '', /^\d+$/);
      assert.equal(env.ONTAP_FD2, undefined);
      const [dev] = linksOfKind(host, tap);
      assert.ok(dev, 'the tap device stays in ontapd\'s namespace');
      assert.ok(dev.flags.includes('UP') && dev.flags.includes('ALLMULTI'), `up and allmulti: ${dev.flags}`);
      const disabled = spawnSync('ip', ['netns', 'exec', host, 'cat', `/proc/sys/net/ipv6/conf/${dev.ifname}/disable_ipv6`], { encoding: 'utf8' });
      assert.equal(disabled.stdout.trim(), '1');
      // Only the listed descriptors and the lease reach COMMAND, beyond what a COMMAND started the
      // same way without ontap inherits (the test runner may pass descriptors of its own).
      const fdsOf = (pid: number): number[] => spawnSync('ls', [`/proc/${pid}/fd`], { encoding: 'utf8' }).stdout.trim().split(/\s+/).map(Number);
      const control = spawn('ip', ['netns', 'exec', client, 'sh', '-c', 'echo started; exec sleep 30'], { stdio: ['ignore', 'pipe', 'pipe'] });
      background.push(control);
      await waitForLine(control, /^started$/);
      // Both read once they are sleep: "started" comes from sh, before its exec, and a shell may
      // hold a descriptor of its own for a moment (a 3 was seen in the control once).
      const isSleep = (pid: number): boolean => spawnSync('cat', [`/proc/${pid}/comm`], { encoding: 'utf8' }).stdout.trim() === 'sleep';
      await eventually('both commands exec\'d sleep', () => isSleep(control.pid!) && isSleep(child.pid!), 5000);
      const expected = [...fdsOf(control.pid!), Number(env.ONTAP_FD0), Number(env.ONTAP_FD1), Number(env.ONTAP_LEASE_FD)].sort((a, b) => a - b);
      control.kill('SIGKILL');
      assert.deepEqual(fdsOf(child.pid!).sort((a, b) => a - b), expected);
      child.kill('SIGKILL');
      await eventually(`${tap} removed after SIGKILL`, () => linksOfKind(host, tap).length === 0);
    });

    test('ontapd killed with SIGKILL and restarted deletes the devices it had handed out', async () => {
      const v = ontapBackground(client, ['-t', vlan, daemon.socket(), '--', 'sh', '-c', 'echo started; exec sleep 30']);
      const t = ontapBackground(client, ['-t', tap, daemon.socket(), '--', 'sh', '-c', 'echo started; exec sleep 30']);
      background.push(v, t);
      await Promise.all([waitForLine(v, /^started$/), waitForLine(t, /^started$/)]);
      await daemon.kill('SIGKILL');
      assert.equal(linksOfKind(client, vlan).length, 1, 'the kernel keeps the devices of a dead ontapd');
      assert.equal(linksOfKind(host, tap).length, 1);
      daemon = new TestDaemon(host, ['up0'], ['--mode', '0666', '--family', vlan], daemon.dir);
      await daemon.start();
      await eventually('leftovers deleted by the new ontapd', () => linksOfKind(client, vlan).length === 0 && linksOfKind(host, tap).length === 0);
      assert.match(daemon.log, /event=reclaimed devices=2/);
      v.kill('SIGKILL');
      t.kill('SIGKILL');
    });

    /** One allocation and release first, so sockets ontapd opens on first use count in the baseline. */
    async function settledFdCount(): Promise<number> {
      assert.equal(ontap(client, ['-t', vlan, daemon.socket(), '--', 'true']).status, 0);
      await eventually('warm-up device released', () => linksOfKind(client, vlan).length === 0);
      await new Promise((r) => setTimeout(r, 100));
      return daemon.fdCount();
    }

    test(`a storm of 200 connect/release cycles leaves no device and no descriptor behind`, async () => {
      const baseline = await settledFdCount();
      for (const type of [vlan, tap]) {
        const r = spawnSync('ip', ['netns', 'exec', client, process.execPath, STORM, daemon.socket(), type, type === vlan ? '200' : '100', '16'], { encoding: 'utf8', timeout: 120000 });
        assert.equal(r.status, 0, r.stderr);
        const result = JSON.parse(r.stdout) as { ok: number; failed: number; errors: string[] };
        assert.equal(result.failed, 0, result.errors.join('; '));
      }
      await eventually('every stormed device deleted', () => linksOfKind(client, vlan).length === 0 && linksOfKind(host, tap).length === 0, 10000);
      await eventually('ontapd back to its baseline descriptors', () => daemon.fdCount() === baseline);
    });

    test('bad input gets a structured error naming the field, and ontapd keeps serving', async () => {
      const socket = daemon.socket();
      const baseline = await settledFdCount();
      const cases: Array<[string, Buffer | string | object, string, string | undefined]> = [
        ['garbage bytes', Buffer.from([0, 0xff, 0x13, 0x37]), 'bad-request', undefined],
        ['truncated JSON', '{"v":1,"op":"allocate","ty', 'bad-request', undefined],
        ['a JSON array', '[1,2]', 'bad-request', undefined],
        ['an oversized request', JSON.stringify({ v: 1, op: 'allocate', type: tap, pad: 'x'.repeat(5000) }), 'bad-request', undefined],
        ['an unknown field', { v: 1, op: 'allocate', type: tap, colour: 'blue' }, 'bad-request', 'colour'],
        ['an unknown type', { v: 1, op: 'allocate', type: 'vxlan' }, 'bad-request', 'type'],
        ['a missing type', { v: 1, op: 'allocate' }, 'bad-request', 'type'],
        ['a wrong version', { v: 2, op: 'allocate', type: tap }, 'bad-request', 'v'],
        ['a name that is not a DNS label', { v: 1, op: 'allocate', type: tap, name: 'Web_1' }, 'bad-request', 'name'],
        ['too many queues', { v: 1, op: 'allocate', type: tap, queues: 17 }, 'bad-request', 'queues'],
        ['queues for a non-tap type', { v: 1, op: 'allocate', type: vlan, queues: 2 }, 'bad-request', 'queues'],
        ['a mode of the other family', { v: 1, op: 'allocate', type: tap, mode: vlan === 'ipvlan' ? 'passthru' : 'l3s' }, 'bad-request', 'mode'],
        [`${vlan} without a namespace descriptor`, { v: 1, op: 'allocate', type: vlan }, 'bad-request', undefined],
      ];
      for (const [what, data, code, field] of cases) {
        const { reply, eof } = exchange(socket, data);
        assert.equal(eof, false, `${what}: a reply, not a bare close`);
        assert.equal(reply.ok, false, what);
        assert.equal(reply.error.code, code, `${what}: ${JSON.stringify(reply)}`);
        if (field !== undefined) assert.equal(reply.error.field, field, `${what}: ${JSON.stringify(reply)}`);
        assert.ok(reply.error.message.length > 0);
      }
      // A namespace descriptor that is not the caller's own namespace (here: one of a process in
      // the client namespace, while the caller, this test, is in another).
      const other = spawn('ip', ['netns', 'exec', client, 'sh', '-c', 'echo started; exec sleep 30'], { stdio: ['ignore', 'pipe', 'pipe'] });
      background.push(other);
      await waitForLine(other, /^started$/);
      const foreign = openSync(`/proc/${other.pid}/ns/net`, constants.O_RDONLY);
      try {
        const { reply } = exchange(socket, { v: 1, op: 'allocate', type: vlan }, [foreign]);
        assert.equal(reply.error.code, 'forbidden', JSON.stringify(reply));
        assert.match(reply.error.message, /not the caller's own network namespace/);
      } finally {
        closeSync(foreign);
        other.kill('SIGKILL');
      }
      // A descriptor that is not a namespace at all is not even looked at.
      const notNs = openSync('/dev/null', constants.O_RDONLY);
      try {
        const { reply } = exchange(socket, { v: 1, op: 'allocate', type: vlan }, [notNs]);
        assert.equal(reply.error.code, 'bad-request', JSON.stringify(reply));
        assert.match(reply.error.message, /not an open \/proc\/self\/ns\/net/);
      } finally {
        closeSync(notNs);
      }
      // Still serving: a valid request works.
      const r = ontap(client, ['-t', vlan, socket, '--', 'true']);
      assert.equal(r.status, 0, r.stderr);
      await eventually('no descriptor leaked by bad requests', () => daemon.fdCount() === baseline);
    });

    test('a second request on one connection is refused and the first device stays', () => {
      const c = new RawConnection(daemon.socket());
      try {
        c.send({ v: 1, op: 'allocate', type: tap });
        const first = c.receive();
        assert.equal(first.reply.ok, true, JSON.stringify(first.reply));
        assert.equal(first.fds.length, 1);
        c.send({ v: 1, op: 'allocate', type: tap });
        const second = c.receive();
        assert.equal(second.reply.error.code, 'conflict');
        assert.equal(linksOfKind(host, tap).length, 1, 'the first device is still there');
        for (const fd of first.fds) native().close(fd);
      } finally {
        c.close();
      }
    });

    test('one uplink cannot carry both families, said clearly', async () => {
      const other = vlan === 'macvlan' ? 'ipvtap' : 'macvtap';
      const holder = ontapBackground(client, ['-t', vlan, daemon.socket(), '--', 'sh', '-c', 'echo started; exec sleep 30']);
      background.push(holder);
      await waitForLine(holder, /^started$/);
      const { reply } = exchange(daemon.socket(), { v: 1, op: 'allocate', type: other });
      assert.equal(reply.error.code, 'conflict', JSON.stringify(reply));
      assert.match(reply.error.message, /cannot carry ipvlan and macvlan/);
      holder.kill('SIGKILL');
      await eventually('holder released', () => linksOfKind(client, vlan).length === 0);
    });

    if (vlan === 'macvlan') {
      test('macvlan: a second running workload with the same name is a conflict (its MAC is taken)', async () => {
        const holder = ontapBackground(client, ['-t', 'macvlan', '-n', 'twin', daemon.socket(), '--', 'sh', '-c', 'echo started; exec sleep 30']);
        background.push(holder);
        await waitForLine(holder, /^started$/);
        const r = ontap(client, ['-t', 'macvlan', '-n', 'twin', daemon.socket(), '--', 'true']);
        assert.equal(r.status, 77, r.stderr);
        assert.match(r.stderr, /workload named "twin" running already/);
        holder.kill('SIGKILL');
        await eventually('holder released', () => linksOfKind(client, 'macvlan').length === 0);
      });
    }

    if (vlan === 'ipvlan') {
      test('ipvlan: a request for another mode than the uplink carries is refused', async () => {
        const holder = ontapBackground(client, ['-t', 'ipvlan', '--mode', 'l3', daemon.socket(), '--', 'sh', '-c', 'echo started; exec sleep 30']);
        background.push(holder);
        await waitForLine(holder, /^started$/);
        const r = ontap(client, ['-t', 'ipvlan', '--mode', 'l2', daemon.socket(), '--', 'true']);
        assert.equal(r.status, 77, r.stderr);
        assert.match(r.stderr, /mode/);
        holder.kill('SIGKILL');
        await eventually('holder released', () => linksOfKind(client, 'ipvlan').length === 0);
      });
    }

    test('no request within the request timeout: a timeout error, then the connection closes', async () => {
      // A second ontapd on the same uplink, with its own socket directory and a short timeout.
      const quick = new TestDaemon(host, ['up0'], ['--request-timeout', '200']);
      await quick.start();
      try {
        const c = new RawConnection(quick.socket());
        const started = Date.now();
        const { reply } = c.receive();
        assert.equal(reply.error.code, 'timeout');
        assert.ok(Date.now() - started < 2000);
        assert.equal(c.receive().eof, true);
        c.close();
      } finally {
        await quick.stop();
        quick.removeDir();
      }
    });

    for (const [option, message] of [['--max-per-uid', /uid 0 holds its maximum of 1 devices/], ['--max-devices', /ontapd holds its maximum of 1 devices/]] as const) {
      test(`${option} refuses with a limit error until a lease ends`, async () => {
        // A second ontapd on the same uplink with a tiny cap (no devices are held at this point,
        // so its start-up reclaim has nothing of the first one's to delete).
        const capped = new TestDaemon(host, ['up0'], [option, '1']);
        await capped.start();
        try {
          const first = new RawConnection(capped.socket());
          first.send({ v: 1, op: 'allocate', type: tap });
          const held = first.receive();
          assert.equal(held.reply.ok, true, JSON.stringify(held.reply));
          for (const fd of held.fds) native().close(fd);
          const { reply } = exchange(capped.socket(), { v: 1, op: 'allocate', type: tap });
          assert.equal(reply.error.code, 'limit', JSON.stringify(reply));
          assert.match(reply.error.message, message);
          first.close();
          await eventually('the capped lease released', () => linksOfKind(host, tap).length === 0);
          const again = exchange(capped.socket(), { v: 1, op: 'allocate', type: tap });
          assert.equal(again.reply.ok, true, JSON.stringify(again.reply));
        } finally {
          await capped.stop();
          capped.removeDir();
        }
      });
    }

    test('a vanished uplink is reported as unavailable', async () => {
      nets.veth(host, 'up1', wire, 'peer1');
      const second = new TestDaemon(host, ['up1'], ['--mode', '0666']);
      await second.start();
      try {
        ip('-n', host, 'link', 'del', 'up1');
        const r = ontap(client, ['-t', vlan, second.socket(), '--', 'true']);
        assert.equal(r.status, 69, r.stderr);
        assert.match(r.stderr, /uplink up1/);
      } finally {
        await second.stop();
        second.removeDir();
      }
    });

    test('permissions: socket mode decides who may connect; non-root may not use ontapd\'s own namespace', () => {
      const nobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];
      // Another uid runs ontap as installed: it may not be able to enter the checkout.
      const asInstalled = [installed().bin('ontap')];
      try {
        const denied = ontap(host, ['-t', vlan, daemon.socket(), '--', 'true'], nobody, asInstalled);
        assert.equal(denied.status, 77, denied.stderr);
        assert.match(denied.stderr, /namespace/);
        if (tap === 'macvtap') {
          // passthru would hand the whole uplink to one caller.
          const passthru = ontap(client, ['-t', tap, '--mode', 'passthru', daemon.socket(), '--', 'true'], nobody, asInstalled);
          assert.equal(passthru.status, 77, passthru.stderr);
          assert.match(passthru.stderr, /only root may ask for passthru/);
        }
        chmodSync(daemon.socket(), 0o600);
        const locked = ontap(client, ['-t', vlan, daemon.socket(), '--', 'true'], nobody, asInstalled);
        assert.equal(locked.status, 77, locked.stderr);
        assert.match(locked.stderr, /no permission/);
      } finally {
        chmodSync(daemon.socket(), 0o666);
      }
    });

    test('client exit codes: usage 64, unreachable 69, not executable 126, not found 127', () => {
      assert.equal(ontap(client, ['-t', 'vxlan', daemon.socket(), '--', 'true']).status, 64);
      assert.equal(ontap(client, ['-n', 'Bad_Name', daemon.socket(), '--', 'true']).status, 64);
      assert.equal(ontap(client, [daemon.socket()]).status, 64);
      assert.equal(ontap(client, ['/nonexistent/port.x', '--', 'true']).status, 69);
      assert.equal(ontap(client, [daemon.socket(), '--', 'no-such-command-ontap']).status, 127);
      assert.equal(ontap(client, [daemon.socket(), '--', '/etc']).status, 126, 'a directory is not executable');
    });

    test('inherited descriptors reach COMMAND with --keep-fd and as LISTEN_FDS, not otherwise', () => {
      const script = 'for fd in 7 3; do if [ -e /proc/self/fd/$fd ]; then echo "fd $fd open"; fi; done';
      const run = (args: string[], env: string[]): Run => {
        const r = spawnSync('sh', ['-c', `exec 7</dev/null 3</dev/null; exec env ${env.join(' ')} ip netns exec ${client} ${process.execPath} ${ONTAP} ${args.join(' ')} -- sh -c '${script}'`], { encoding: 'utf8' });
        return { status: r.status, stdout: r.stdout, stderr: r.stderr };
      };
      const plain = run(['-t', vlan, daemon.socket()], []);
      assert.equal(plain.status, 0, plain.stderr);
      assert.equal(plain.stdout, '', 'nothing inherited leaks through by default');
      const kept = run(['-t', vlan, '--keep-fd', '7', daemon.socket()], []);
      assert.equal(kept.stdout, 'fd 7 open\n', kept.stderr);
      // $$ is the shell that execs env, ip and node in turn: the same pid, as under systemd.
      const activated = run(['-t', vlan, daemon.socket()], ['LISTEN_FDS=1', 'LISTEN_PID=$$']);
      assert.equal(activated.stdout, 'fd 3 open\n', activated.stderr);
    });

    test('COMMAND keeps its exit status and its pid', () => {
      const r = ontap(client, ['-t', vlan, daemon.socket(), '--', 'sh', '-c', 'exit 42']);
      assert.equal(r.status, 42);
    });
  });
}
