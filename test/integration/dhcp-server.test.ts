/**
 * The DHCP server harness (test/helpers/dhcp-server.ts), proven with a real client: busybox
 * udhcpc in namespace "host" (up0) against dnsmasq, then Kea, on peer0 in namespace "wire" (an
 * uplink each, so the two servers never share a link).
 *
 * udhcpc runs with -s SCRIPT: the script appends each event and the options it got to a file and,
 * with DHCP_CONFIGURE=1, puts the address on up0. A client that unicasts (renew, release) needs
 * the address: it binds its UDP socket to it, and without it a release fails ("bind(UDP): Cannot
 * assign requested address") and never leaves the machine.
 *
 * busybox 1.35: with -q the client exits before it counts as bound, so -q -R releases nothing; a
 * release here is a client in the foreground (-f -R) sent SIGTERM. SIGUSR1 makes a bound client
 * renew now (SIGUSR1 while rebinding is ignored). It loses a NAK to its renew about half the time
 * here (see the restart() test), so the NAK is looked for on the wire, with tcpdump.
 *
 * Figures on this machine (2 cores shared; dnsmasq 2.90, Kea 2.2.0; eight runs):
 * - start: dnsmasq 13-57 ms, Kea 61-106 ms, until their sockets are open; Kea's restart 59-106 ms.
 * - a new client's first dnsmasq lease: 3.07-3.12 s (dnsmasq pings the address before offering it
 *   and answers only udhcpc's second DISCOVER; with --no-ping about 0.1 s); Kea: 84-126 ms.
 * - dnsmasq drops a released lease from its file within 10 ms of the client's SIGTERM; Kea
 *   reclaims an expired one 0.1-1.0 s after its expiry (its reclaim timer runs every second).
 * - after the restart into another subnet: a new lease about 3.1 s after SIGUSR1 when udhcpc takes
 *   the NAK (it sleeps 3 s after a NAK), about 12.2 s when it lost it (renew timeout 3 s, three
 *   unanswered rebinding broadcasts 3 s apart, then a DISCOVER).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Background } from '../helpers/background.js';
import {
  KEA_STATE_DEFAULT, KEA_STATE_EXPIRED_RECLAIMED, dhcpServersMissing, startDnsmasq, startKea,
  type DnsmasqServer, type KeaServer,
} from '../helpers/dhcp-server.js';
import { TestNamespaces, eventually, ip, links, sweepStaleNamespaces } from '../helpers/netns.js';
import { describeWhen, hasCommand, isRoot, missing } from '../helpers/requirements.js';

const HOSTNAME = 'probe';
/** Option 61 as udhcpc's -x takes it (type 0xff: RFC 4361 IAID and DUID). */
const CLIENT_ID = 'ff00000001000102030405';
/** As both servers write it. */
const colons = (hex: string) => hex.match(/../g)!.join(':');

function busyboxHasUdhcpc(): boolean {
  try {
    return /^udhcpc$/m.test(execFileSync('busybox', ['--list'], { encoding: 'utf8' }));
  } catch {
    return false;
  }
}

/** Pids of processes whose command line mentions path. */
function processesMentioning(path: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(path)) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

function comm(pid: number): string {
  return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
}

function ipv4Of(ns: string, dev: string): string[] {
  const [link] = JSON.parse(ip('-n', ns, '-j', 'addr', 'show', 'dev', dev)) as Array<{ addr_info: Array<{ family: string; local: string; prefixlen: number }> }>;
  return (link?.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`);
}

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await fn();
  return { value, ms: Math.round(performance.now() - t0) };
}

/** fn(), failing with udhcpc's log and Kea's (from offset since) added to the error. */
async function withLogs<T>(client: Background, server: KeaServer, since: number, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw new Error(`${(e as Error).message}\nudhcpc:\n${client.log}\nkea-dhcp4:\n${server.log().slice(since)}`);
  }
}

const SCRIPT = `#!/bin/sh
# udhcpc's event script: one line per event with the options udhcpc passes in the environment.
echo "event=$1 ip=$ip mask=$mask router=$router dns=$dns domain=$domain lease=$lease serverid=$serverid" >> "$DHCP_EVENTS"
[ "$DHCP_CONFIGURE" = 1 ] || exit 0
case "$1" in
  bound|renew) ip addr flush dev "$interface" scope global; ip addr add "$ip/$mask" dev "$interface" ;;
  deconfig|nak) ip addr flush dev "$interface" scope global ;;
esac
exit 0
`;

const reason = missing([
  [isRoot, 'needs root (network namespaces)'],
  [() => hasCommand('ip'), 'needs iproute2'],
  [() => dhcpServersMissing() === undefined, dhcpServersMissing() ?? ''],
  [busyboxHasUdhcpc, 'needs busybox with udhcpc (apt-get install busybox)'],
  [() => hasCommand('tcpdump'), 'needs tcpdump'],
]);

describeWhen('real DHCP servers in a test namespace, with busybox udhcpc as the client', reason, () => {
  const nets = new TestNamespaces();
  const servers: Array<{ stop(): Promise<void> }> = [];
  const clients: Background[] = [];
  let dir = '';
  let clientCount = 0;

  before(() => {
    sweepStaleNamespaces();
    // Named like the helper's temp dirs, so it sweeps this one too if the run dies.
    dir = mkdtempSync(join(tmpdir(), `ontap-dhcp-${process.pid}-udhcpc-`));
    writeFileSync(join(dir, 'udhcpc.sh'), SCRIPT);
    chmodSync(join(dir, 'udhcpc.sh'), 0o755);
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.kill('SIGKILL')));
    await Promise.all(servers.map((s) => s.stop()));
    // Nothing may be left in the namespaces before they go (deleting a namespace kills nothing).
    const left = nets.names.map((ns) => [ns, ip('netns', 'pids', ns).trim()] as const).filter(([, pids]) => pids !== '');
    nets.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(left, [], 'processes left in the test namespaces');
  });

  interface Client {
    args: string[];
    events: string;
    env: NodeJS.ProcessEnv;
  }

  /** udhcpc's argv and environment: its own events file; configure: put the address on up0. */
  function client(host: string, clientId: string, configure: boolean, extra: string[]): Client {
    const events = join(dir, `events-${++clientCount}`);
    return {
      args: ['setpriv', '--pdeathsig', 'KILL', 'ip', 'netns', 'exec', host, 'busybox', 'udhcpc', '-f', '-i', 'up0', '-s', join(dir, 'udhcpc.sh'),
        '-x', `hostname:${HOSTNAME}`, '-x', `0x3d:${clientId}`, ...extra],
      events,
      env: { ...process.env, DHCP_EVENTS: events, DHCP_CONFIGURE: configure ? '1' : '0' },
    };
  }

  /** `udhcpc -q -n`: the address it was given (it exits once it has a lease, or fails). */
  function leaseOnce(host: string, clientId: string): Promise<{ address: string; output: string; events: string }> {
    const c = client(host, clientId, false, ['-q', '-n']);
    return new Promise((resolve, reject) => {
      execFile(c.args[0]!, c.args.slice(1), { env: c.env, encoding: 'utf8', timeout: 20000 }, (err, stdout, stderr) => {
        const output = stdout + stderr;
        const m = /lease of (\S+) obtained/.exec(output);
        if (err || !m) reject(new Error(`udhcpc got no lease (${err?.message ?? ''}):\n${output}`));
        else resolve({ address: m[1]!, output, events: readFileSync(c.events, 'utf8') });
      });
    });
  }

  /** udhcpc running on (renewing, releasing on SIGTERM with -R) until killed. */
  function background(host: string, clientId: string, extra: string[]): { bg: Background; events: () => string } {
    const c = client(host, clientId, true, extra);
    const bg = new Background(c.args, join(dir, `udhcpc-${clientCount}.log`), c.env);
    clients.push(bg);
    return { bg, events: () => (existsSync(c.events) ? readFileSync(c.events, 'utf8') : '') };
  }

  describe('dnsmasq', () => {
    let host = '';
    let wire = '';
    let server: DnsmasqServer;
    let mac = '';

    before(() => {
      ({ host, wire } = nets.uplink());
      mac = links(host).find((l) => l.ifname === 'up0')!.address!;
    });

    test('startDnsmasq returns once dnsmasq has bound port 67 on the interface', async (t) => {
      const r = await timed(() => startDnsmasq({
        netns: wire, ifname: 'peer0', address: '10.78.0.1/24', range: ['10.78.0.100', '10.78.0.150'], leaseSeconds: 120,
      }));
      server = r.value;
      servers.push(server);
      t.diagnostic(`startDnsmasq: ${r.ms} ms`);
      assert.equal(comm(server.pid), 'dnsmasq');
      assert.deepEqual(ipv4Of(wire, 'peer0'), ['10.78.0.1/24']);
      assert.match(ip('netns', 'exec', wire, 'ss', '-H', '-lunp'), new RegExp(`0\\.0\\.0\\.0%peer0:67 .*pid=${server.pid},`));
      assert.match(server.log(), /DHCP, IP range 10\.78\.0\.100 -- 10\.78\.0\.150, lease time 2m/);
      assert.deepEqual(server.leases(), []);
    });

    test('a client gets a lease; leases() has its MAC, hostname and client id', async (t) => {
      const r = await timed(() => leaseOnce(host, CLIENT_ID));
      const lease = await server.waitForLease((l) => l.clientId === colons(CLIENT_ID), 1000);
      t.diagnostic(`first lease: ${r.ms} ms (${r.value.address})`);
      assert.equal(lease.address, r.value.address);
      assert.equal(lease.mac, mac);
      assert.equal(lease.hostname, HOSTNAME);
      const now = Date.now() / 1000;
      assert.ok(Math.abs(lease.expires - (now + 120)) < 10, `expires ${lease.expires}, now ${now}`);
      assert.match(r.value.events, /event=bound ip=10\.78\.0\.\d+ mask=24 router=10\.78\.0\.1 .* lease=120 serverid=10\.78\.0\.1/);
      assert.match(server.log(), new RegExp(`DHCPACK\\(peer0\\) ${lease.address.replace(/\./g, '\\.')} ${mac} ${HOSTNAME}`));
    });

    test('a client that releases: its lease disappears (waitForNoLease), the other stays', async (t) => {
      const id = 'ff00000002000102030405';
      const { bg } = background(host, id, ['-R']);
      const got = await timed(() => server.waitForLease((l) => l.clientId === colons(id), 10000));
      // The script configured it: without it the release could not be sent.
      await eventually('the address on up0', () => ipv4Of(host, 'up0').includes(`${got.value.address}/24`));
      const released = await timed(async () => {
        await bg.kill('SIGTERM');
        await server.waitForNoLease((l) => l.clientId === colons(id), 3000);
      });
      t.diagnostic(`lease: ${got.ms} ms, gone from the lease file ${released.ms} ms after SIGTERM`);
      assert.match(bg.log, /unicasting a release of/);
      assert.match(server.log(), new RegExp(`DHCPRELEASE\\(peer0\\) ${got.value.address.replace(/\./g, '\\.')} ${mac}`));
      assert.deepEqual(server.leases().map((l) => l.clientId), [colons(CLIENT_ID)]);
      assert.deepEqual(ipv4Of(host, 'up0'), [], 'deconfig took the address away');
    });

    test('stop() leaves no process, no temp dir and no address', async () => {
      assert.ok(processesMentioning(server.dir).length > 0);
      await server.stop();
      assert.deepEqual(processesMentioning(server.dir), []);
      assert.equal(existsSync(server.dir), false);
      assert.deepEqual(ipv4Of(wire, 'peer0'), []);
      assert.equal(ip('netns', 'pids', wire).trim(), '');
      await server.stop(); // twice is fine
    });
  });

  describe('Kea', () => {
    let host = '';
    let wire = '';
    let server: KeaServer;
    let mac = '';
    let first = '';

    before(() => {
      ({ host, wire } = nets.uplink());
      mac = links(host).find((l) => l.ifname === 'up0')!.address!;
    });

    test('startKea returns once kea-dhcp4 has its sockets on the interface', async (t) => {
      const r = await timed(() => startKea({
        netns: wire, ifname: 'peer0', address: '10.79.0.1/24', subnet: '10.79.0.0/24', pool: ['10.79.0.100', '10.79.0.150'],
        validSeconds: 6, routers: ['10.79.0.1'], dns: ['10.79.0.53', '10.79.0.54'], domain: 'test.example',
      }));
      server = r.value;
      servers.push(server);
      t.diagnostic(`startKea: ${r.ms} ms`);
      assert.equal(comm(server.pid), 'kea-dhcp4');
      assert.deepEqual(ipv4Of(wire, 'peer0'), ['10.79.0.1/24']);
      assert.match(server.log(), /DHCPSRV_CFGMGR_SOCKET_TYPE_SELECT using socket type raw/);
      assert.deepEqual(server.leases(), []);
    });

    test('a client gets a 6 s lease with the options; leases() has its hostname and client id', async (t) => {
      const r = await timed(() => leaseOnce(host, CLIENT_ID));
      const lease = await server.waitForLease((l) => l.clientId === colons(CLIENT_ID), 2000);
      first = lease.address;
      t.diagnostic(`first lease: ${r.ms} ms (${r.value.address})`);
      assert.equal(lease.address, r.value.address);
      assert.equal(lease.hwaddr, mac);
      assert.equal(lease.hostname, HOSTNAME);
      assert.equal(lease.validLifetime, 6);
      assert.equal(lease.subnetId, 1);
      assert.equal(lease.state, KEA_STATE_DEFAULT);
      const now = Date.now() / 1000;
      assert.ok(lease.expire > now && lease.expire <= now + 7, `expire ${lease.expire}, now ${now}`);
      assert.match(r.value.output, /lease time 6\b/);
      assert.match(r.value.events,
        /event=bound ip=10\.79\.0\.\d+ mask=24 router=10\.79\.0\.1 dns=10\.79\.0\.53 10\.79\.0\.54 domain=test\.example lease=6 serverid=10\.79\.0\.1/);
    });

    test('the expired lease is reclaimed: state 2, hostname gone', async (t) => {
      const reclaimed = await server.waitForLease((l) => l.address === first && l.state === KEA_STATE_EXPIRED_RECLAIMED, 10000);
      t.diagnostic(`reclaimed ${(Date.now() / 1000 - reclaimed.expire).toFixed(1)} s after its expiry`);
      assert.equal(reclaimed.hostname, undefined);
      assert.equal(reclaimed.clientId, colons(CLIENT_ID));
    });

    test('a client that releases: Kea deletes its lease (waitForNoLease)', async (t) => {
      const id = 'ff00000004000102030405';
      const { bg } = background(host, id, ['-R']);
      const got = await server.waitForLease((l) => l.clientId === colons(id) && l.state === KEA_STATE_DEFAULT, 10000);
      await eventually('the address on up0', () => ipv4Of(host, 'up0').includes(`${got.address}/24`));
      const released = await timed(async () => {
        await bg.kill('SIGTERM');
        await server.waitForNoLease((l) => l.clientId === colons(id), 3000);
      });
      t.diagnostic(`gone from leases() ${released.ms} ms after SIGTERM`);
      assert.match(server.log(), new RegExp(`DHCP4_RELEASE .*address ${got.address.replace(/\./g, '\\.')} was released properly`));
      // The memfile's deletion row: the address, valid_lifetime 0.
      assert.match(readFileSync(server.leaseFile, 'utf8'), new RegExp(`^${got.address.replace(/\./g, '\\.')},${mac},${colons(id)},0,`, 'm'));
      // The reclaimed lease of the first client is still there, state 2.
      assert.ok(server.leases().some((l) => l.address === first && l.state === KEA_STATE_EXPIRED_RECLAIMED));
    });

    test('restart() in another subnet: a renewing client is NAKed, then gets an address in the new pool', async (t) => {
      const id = 'ff00000003000102030405';
      const { bg, events } = background(host, id, []);
      const old = await server.waitForLease((l) => l.clientId === colons(id) && l.state === KEA_STATE_DEFAULT, 10000);
      await eventually('the address on up0', () => ipv4Of(host, 'up0').includes(`${old.address}/24`));
      const oldPid = server.pid;
      // Same server address: the client's unicast renew to 10.79.0.1 still gets there. (A pool
      // change alone is no NAK in Kea 2.2: a request for an address of the subnet outside every
      // pool is dropped.)
      const restarted = await timed(() => server.restart({ subnet: '10.80.0.0/24', pool: ['10.80.0.100', '10.80.0.150'] }));
      assert.notEqual(server.pid, oldPid);
      assert.equal(comm(server.pid), 'kea-dhcp4');
      const since = server.log().length;
      // The NAK as it arrives on up0: busybox itself may not see it. It sends its renew from a
      // socket bound to the leased address and connected to the server, and closes it right
      // after; a reply back before the close (Kea answers within a millisecond) is delivered to
      // that socket and lost (about one run in four here). busybox then rebinds (three
      // broadcasts 3 s apart, which Kea 2.2 leaves unanswered) and starts over with a DISCOVER.
      const capture = new Background(
        ['setpriv', '--pdeathsig', 'KILL', 'ip', 'netns', 'exec', host, 'tcpdump', '-i', 'up0', '-n', '-l', '-v', 'udp dst port 68'],
        join(dir, 'tcpdump.log'),
      );
      clients.push(capture);
      await capture.waitFor(/listening on up0/, 'tcpdump listening', 10000);
      const renewed = await timed(async () => withLogs(bg, server, since, async () => {
        process.kill(bg.pid, 'SIGUSR1'); // renew now
        await capture.waitFor(/DHCP-Message \(53\), length 1: NACK/, 'a DHCPNAK on up0', 3000);
        return server.waitForLease((l) => l.clientId === colons(id) && l.address.startsWith('10.80.0.'), 20000);
      }));
      const clientSawNak = /received DHCP NAK/.test(bg.log);
      t.diagnostic(`restart: ${restarted.ms} ms; a new lease ${renewed.ms} ms after SIGUSR1 (${old.address} -> ${renewed.value.address}), `
        + (clientSawNak ? 'udhcpc took the NAK' : 'udhcpc lost the NAK and started over'));
      await capture.kill();
      assert.match(bg.log, /sending renew to server 10\.79\.0\.1/);
      assert.match(server.log().slice(since), /DHCP4_PACKET_NAK_0001 .*failed to select a subnet/);
      assert.match(capture.log, new RegExp(`10\\.79\\.0\\.1\\.67 > ${old.address.replace(/\./g, '\\.')}\\.68`));
      if (clientSawNak) assert.match(events(), /event=nak/);
      assert.equal(renewed.value.state, KEA_STATE_DEFAULT);
      await eventually('the new address on up0', () => ipv4Of(host, 'up0').includes(`${renewed.value.address}/24`));
      await bg.kill('SIGTERM');
    });

    test('stop() leaves no process, no temp dir and no address', async () => {
      assert.ok(processesMentioning(server.dir).length > 0);
      await server.stop();
      assert.deepEqual(processesMentioning(server.dir), []);
      assert.equal(existsSync(server.dir), false);
      assert.deepEqual(ipv4Of(wire, 'peer0'), []);
      assert.equal(ip('netns', 'pids', wire).trim(), '');
      await server.stop();
    });
  });
});
