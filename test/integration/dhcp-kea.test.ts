/**
 * ontapd's DHCP client through a lease's whole life, against Kea (kea-dhcp4, which grants leases
 * of seconds; dnsmasq's least is 2 minutes): an 8 s lease, T1 3 s, T2 6 s.
 *  - renewal: at T1 a REQUEST goes to Kea (its lease file gets a later expiry) and the address's
 *    lifetimes on the device move back up;
 *  - Kea stopped: RENEWING, REBINDING, then at the lease's end the address and the default route
 *    are gone, the workload keeps running, and ontapd says so (event=dhcp-lost reason=expired);
 *  - Kea back in another subnet: the client finds it (DISCOVER again), and when Kea is moved to
 *    yet another subnet under a bound client, the renewal is NAKed: the address goes, a new one
 *    from the new pool comes.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { TestNamespaces, eventually, sweepStaleNamespaces } from '../helpers/netns.js';
import { TestDaemon, ONTAP } from '../helpers/ontapd.js';
import { describeWhen, hasCommand, isRoot, kernelHasKind, missing } from '../helpers/requirements.js';
import { dhcpServersMissing, startKea, type KeaServer } from '../helpers/dhcp-server.js';

const reason = missing([
  [isRoot, 'needs root (network namespaces)'],
  [() => hasCommand('ip') && hasCommand('nsenter'), 'needs iproute2 and util-linux'],
  [() => dhcpServersMissing() === undefined, dhcpServersMissing() ?? ''],
  [() => kernelHasKind('macvlan'), 'this kernel cannot create macvlan devices'],
]);

interface Inet { local: string; prefixlen: number; valid_life_time: number; preferred_life_time: number }

describeWhen('ontapd\'s DHCP client through renewal, rebinding, expiry and NAK (Kea)', reason, () => {
  const nets = new TestNamespaces();
  let daemon: TestDaemon | undefined;
  let kea: KeaServer | undefined;
  let workload: ChildProcess | undefined;
  let ifname = '';

  const inside = (...argv: string[]): string => spawnSync('nsenter', ['-t', String(workload!.pid), '-n', ...argv], { encoding: 'utf8' }).stdout;
  const addresses = (): Inet[] => (JSON.parse(inside('ip', '-j', '-4', 'addr', 'show', 'dev', ifname)) as Array<{ addr_info: Inet[] }>).flatMap((a) => a.addr_info);
  const defaultRoute = (): boolean => /^default via /m.test(inside('ip', '-4', 'route'));

  before(async () => {
    sweepStaleNamespaces();
    const { host, wire } = nets.uplink();
    kea = await startKea({
      netns: wire, ifname: 'peer0', address: '10.79.0.1/24', subnet: '10.79.0.0/24', pool: ['10.79.0.100', '10.79.0.150'],
      validSeconds: 8, renewSeconds: 3, rebindSeconds: 6, routers: ['10.79.0.1'], dns: ['10.79.0.53'],
    });
    daemon = new TestDaemon(host, ['up0'], ['--family=macvlan']);
    await daemon.start();
    workload = spawn('ip', ['netns', 'exec', host, process.execPath, ONTAP, '-t', 'macvlan', '-n', 'kea', '--dhcp', '--netns', daemon.socket(), '--',
      'sh', '-c', 'echo "ifname=$ONTAP_IFNAME ipv4=$ONTAP_IPV4"; exec sleep 600'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      workload!.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(out);
      });
      workload!.on('exit', (code) => reject(new Error(`ontap exited ${code}\n${daemon!.log.slice(-2000)}`)));
    });
    ifname = /ifname=(\S+)/.exec(line)![1]!;
    assert.match(line, /ipv4=10\.79\.0\.1[0-5]\d\/24/);
  });

  after(async () => {
    workload?.kill('SIGKILL');
    await daemon?.stop();
    await kea?.stop();
    nets.destroy();
  });

  test('at T1 the lease is renewed: Kea extends it, and the lifetimes on the device move back up', async () => {
    const [first] = addresses();
    assert.ok(first && first.valid_life_time <= 8, JSON.stringify(addresses()));
    const expiry = kea!.leases().find((l) => l.address === first.local)!.expire;
    await new Promise((r) => setTimeout(r, 4500));
    const [now] = addresses();
    assert.equal(now?.local, first.local);
    // 4.5 s after binding, without the renewal at 3 s it would be 3 or 4.
    assert.ok(now!.valid_life_time >= 6, `valid_lft ${now!.valid_life_time} 4.5 s after binding`);
    assert.ok(now!.preferred_life_time >= 6, `preferred_lft ${now!.preferred_life_time}`);
    assert.ok(kea!.leases().find((l) => l.address === first.local)!.expire > expiry, 'Kea extended the lease');
  });

  test('Kea stopped: at the lease\'s end the address and the default route are gone; the workload runs on', async () => {
    const [held] = addresses();
    await kea!.stop();
    const t0 = Date.now();
    await eventually('the address gone', () => addresses().length === 0, 12000);
    const ms = Date.now() - t0;
    assert.ok(ms > 1000, `gone after ${ms} ms: not before the lease ended`);
    // The kernel removes it at its valid lifetime's end, ontapd's timer for the lease's end fires
    // in the same millisecond or so: either may be first.
    const lost = new RegExp(`event=dhcp-lost .*address=${held!.local.replace(/\./g, '\\.')} reason=expired`);
    await eventually('ontapd says the lease ended', () => lost.test(daemon!.log), 2000);
    assert.equal(defaultRoute(), false, 'the default route went with it');
    assert.equal(workload!.exitCode, null, 'the workload still runs');
  });

  test('Kea back: the client, asking again since the lease ended, gets an address and a route', async () => {
    kea = await startKea({
      netns: nets.names[1]!, ifname: 'peer0', address: '10.79.0.1/24', subnet: '10.79.0.0/24', pool: ['10.79.0.100', '10.79.0.150'],
      validSeconds: 8, renewSeconds: 3, rebindSeconds: 6, routers: ['10.79.0.1'], dns: ['10.79.0.53'],
    });
    // DISCOVER is retransmitted at 2, 4, 8 ... 64 s: the next one comes within 64 s at worst.
    await eventually('an address again', () => addresses().length === 1, 70000);
    await eventually('the default route again', () => defaultRoute(), 3000);
  });

  test('Kea moved to another subnet under a bound client: the renewal is NAKed, the address goes, one from the new pool comes', async () => {
    const [old] = addresses();
    assert.ok(old);
    await kea!.restart({ subnet: '10.80.0.0/24', pool: ['10.80.0.100', '10.80.0.150'], routers: [] });
    await eventually('an address of the new pool', () => addresses().some((a) => a.local.startsWith('10.80.0.')), 15000);
    assert.deepEqual(addresses().map((a) => a.local).filter((a) => a === old.local), [], 'the old address is gone');
    assert.match(daemon!.log, new RegExp(`event=dhcp-lost .*address=${old.local.replace(/\./g, '\\.')} reason=nak`));
    assert.equal(defaultRoute(), false, 'no router in the new subnet: no default route');
  });
});
