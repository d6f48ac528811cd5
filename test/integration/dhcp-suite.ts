/**
 * ontap --dhcp against Debian's dnsmasq, one body for both families: macvlan on the host
 * (dhcp-dnsmasq.test.ts), ipvlan L2 in the VM (dhcp-dnsmasq.vmtest.ts), where every device shares
 * the uplink's MAC and only the client identifier tells them apart. dnsmasq serves 10.78.0.0/24 on
 * peer0 in the "wire" namespace; ontapd runs in "host" on up0; each workload is `ontap --netns`, a
 * network namespace of its own.
 */
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { TestNamespaces, eventually, linksOfKind, sweepStaleNamespaces } from '../helpers/netns.js';
import { TestDaemon, ONTAP } from '../helpers/ontapd.js';
import { describeWhen, hasCommand, isRoot, kernelHasKind, missing } from '../helpers/requirements.js';
import { startDnsmasq, type DnsmasqServer } from '../helpers/dhcp-server.js';

export interface DhcpFamily {
  type: 'macvlan' | 'ipvlan';
  /** ontapd's --family. */
  family: 'macvlan' | 'ipvlan';
  /** Bound on one workload getting its lease, in ms (TCG is slower). */
  leaseMs: number;
  /**
   * ontapd's --dhcp-timeout, in seconds. In the VM 16 ontap clients starting at once under TCG
   * keep both vCPUs busy for seconds (node's start-up), and dnsmasq with them: 5 s was seen
   * running out for one of the 16 there.
   */
  timeoutSeconds: number;
}

interface Workload {
  child: ChildProcess;
  /** Its environment and what `ip` saw in its namespace, once its command ran. */
  env: Record<string, string>;
  addrs: Array<{ ifname: string; addr_info: Array<{ family: string; local: string; prefixlen: number; valid_life_time?: number; preferred_life_time?: number }> }>;
  routes: Array<{ dst: string; gateway?: string; dev: string; protocol?: string }>;
  ms: number;
}

/**
 * Name servers and a domain (dnsmasq with --port=0 serves no DNS, so it names none itself), and no
 * ping before an offer: dnsmasq's own conflict check holds a new address's first offer for 3 s.
 */
const SERVER_OPTIONS = ['--no-ping', '--dhcp-option=option:dns-server,10.78.0.53,10.78.0.54', '--dhcp-option=option:domain-name,lan.example'];

/** What the workload's command prints: its ONTAP_ variables, then ip's view, then it waits on stdin. */
const SHOW = 'env | grep ^ONTAP_; echo "addrs=$(ip -j addr show dev "$ONTAP_IFNAME")"; echo "routes=$(ip -j -4 route)"; echo ready; read _';

export function dhcpSuite(f: DhcpFamily): void {
  const reason = missing([
    [isRoot, 'needs root (network namespaces)'],
    [() => hasCommand('ip') && hasCommand('dnsmasq'), 'needs iproute2 and dnsmasq (apt-get install dnsmasq-base)'],
    [() => kernelHasKind(f.type), `this kernel cannot create ${f.type} devices`],
  ]);

  describeWhen(`ontap --dhcp on ${f.type} against dnsmasq`, reason, () => {
    const nets = new TestNamespaces();
    let daemon: TestDaemon | undefined;
    let dnsmasq: DnsmasqServer | undefined;
    let host = '';
    const running = new Set<ChildProcess>();

    before(async () => {
      sweepStaleNamespaces();
      ({ host } = nets.uplink());
      const wire = nets.names[nets.names.length - 1]!;
      dnsmasq = await startDnsmasq({ netns: wire, ifname: 'peer0', address: '10.78.0.1/24', range: ['10.78.0.100', '10.78.0.150'], leaseSeconds: 600, extraArgs: SERVER_OPTIONS });
      daemon = new TestDaemon(host, ['up0'], [`--family=${f.family}`, `--dhcp-timeout=${f.timeoutSeconds}`]);
      await daemon.start();
    });

    after(async () => {
      for (const c of running) c.kill('SIGKILL');
      await daemon?.stop();
      await dnsmasq?.stop();
      nets.destroy();
    });

    function start(args: string[]): Promise<Workload> {
      const t0 = performance.now();
      const child = spawn('ip', ['netns', 'exec', host, process.execPath, ONTAP, '-t', f.type, '--dhcp', '--netns', ...args, daemon!.socket(), '--', 'sh', '-c', SHOW],
        { stdio: ['pipe', 'pipe', 'pipe'] });
      running.add(child);
      child.on('exit', () => running.delete(child));
      return new Promise((resolve, reject) => {
        let out = '';
        let err = '';
        child.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          if (!/^ready$/m.test(out)) return;
          const env: Record<string, string> = {};
          for (const m of out.matchAll(/^(ONTAP_[A-Z0-9_]+)=(.*)$/gm)) env[m[1]!] = m[2]!;
          const addrs = JSON.parse(/^addrs=(.*)$/m.exec(out)![1]!) as Workload['addrs'];
          const routes = JSON.parse(/^routes=(.*)$/m.exec(out)![1]!) as Workload['routes'];
          resolve({ child, env, addrs, routes, ms: performance.now() - t0 });
        });
        child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
        child.on('exit', (code) => reject(new Error(`ontap exited with ${code}: ${err}\n${daemon!.log.slice(-3000)}`)));
      });
    }

    async function end(w: Workload, how: 'exit' | 'SIGKILL'): Promise<void> {
      const exited = new Promise((r) => w.child.on('exit', r));
      if (how === 'exit') w.child.stdin!.end();
      else w.child.kill('SIGKILL');
      await exited;
    }

    function inRange(a: string): boolean {
      const last = Number(a.split('.')[3]);
      return a.startsWith('10.78.0.') && last >= 100 && last <= 150;
    }

    test('a workload gets an address from the range, on its device with the lease\'s lifetimes, and a default route', async () => {
      const w = await start(['-n', 'web']);
      try {
        const [address, prefix] = w.env.ONTAP_IPV4!.split('/');
        assert.ok(inRange(address!), `ONTAP_IPV4=${w.env.ONTAP_IPV4}`);
        assert.equal(prefix, '24');
        assert.equal(w.env.ONTAP_IPV4_GATEWAY, '10.78.0.1', 'dnsmasq gives itself as the router');
        assert.equal(w.env.ONTAP_DHCP_SERVER, '10.78.0.1');
        assert.equal(w.env.ONTAP_DHCP_LEASE, '600');
        assert.equal(w.env.ONTAP_DNS, '10.78.0.53,10.78.0.54');
        assert.equal(w.env.ONTAP_DOMAIN, 'lan.example');
        const v4 = w.addrs[0]!.addr_info.filter((a) => a.family === 'inet');
        assert.deepEqual(v4.map((a) => `${a.local}/${a.prefixlen}`), [w.env.ONTAP_IPV4], 'the address on the device is ONTAP_IPV4');
        assert.ok(v4[0]!.valid_life_time! > 590 && v4[0]!.valid_life_time! <= 600, `valid_lft ${v4[0]!.valid_life_time}: what is left of the lease, not forever`);
        assert.ok(v4[0]!.preferred_life_time! > 590 && v4[0]!.preferred_life_time! <= 600, `preferred_lft ${v4[0]!.preferred_life_time}`);
        const def = w.routes.find((r) => r.dst === 'default');
        assert.ok(def, `a default route: ${JSON.stringify(w.routes)}`);
        assert.equal(def.gateway, '10.78.0.1');
        assert.equal(def.dev, w.env.ONTAP_IFNAME);
        assert.equal(def.protocol, 'dhcp');
        assert.match(daemon!.log, new RegExp(`event=allocate .*name=web .*ipv4=${w.env.ONTAP_IPV4!.replace(/\./g, '\\.')} `), 'the allocate line names the address');
        // dnsmasq's lease file: the client id ontapd sent (RFC 4361: type 255), and the host name.
        const lease = await dnsmasq!.waitForLease((l) => l.address === address, 3000);
        assert.equal(lease.hostname, 'web');
        assert.match(lease.clientId ?? '', /^ff:/, `client id ${lease.clientId}: RFC 4361 (type 255, IAID, DUID)`);
        console.log(`dhcp ${f.type}: lease in ${w.ms.toFixed(0)} ms from ontap's start; ${address}, client id ${lease.clientId}`);
        assert.ok(w.ms < f.leaseMs, `${w.ms.toFixed(0)} ms to a lease`);
      } finally {
        await end(w, 'exit');
      }
      // Exit: DHCPRELEASE, so dnsmasq forgets the lease.
      await dnsmasq!.waitForNoLease((l) => l.hostname === 'web', 3000);
    });

    test('16 workloads at once get 16 distinct leases', async () => {
      const ws = await Promise.all(Array.from({ length: 16 }, (_, i) => start(i % 2 === 0 ? ['-n', `w${i}`] : [])));
      try {
        const addresses = ws.map((w) => w.env.ONTAP_IPV4!.split('/')[0]!);
        assert.equal(new Set(addresses).size, 16, `distinct: ${addresses.join(' ')}`);
        for (const a of addresses) assert.ok(inRange(a), a);
        if (f.type === 'ipvlan') assert.equal(new Set(ws.map((w) => w.env.ONTAP_HWADDR)).size, 1, 'one MAC for all');
        const ids = new Set<string>();
        for (const a of addresses) ids.add((await dnsmasq!.waitForLease((l) => l.address === a, 3000)).clientId ?? '');
        assert.equal(ids.size, 16, 'one client id each');
      } finally {
        await Promise.all(ws.map((w) => end(w, 'exit')));
      }
    });

    test('a named workload started again gets the same address', async () => {
      const first = await start(['-n', 'again']);
      const address = first.env.ONTAP_IPV4;
      await end(first, 'exit');
      const second = await start(['-n', 'again']);
      try {
        assert.equal(second.env.ONTAP_IPV4, address);
      } finally {
        await end(second, 'exit');
      }
    });

    test('a workload killed with SIGKILL: its lease is released all the same', async () => {
      const w = await start(['-n', 'killed']);
      const address = w.env.ONTAP_IPV4!.split('/')[0]!;
      await dnsmasq!.waitForLease((l) => l.address === address, 3000);
      await end(w, 'SIGKILL');
      await dnsmasq!.waitForNoLease((l) => l.address === address, 3000);
      await eventually('the device deleted', () => linksOfKind(host, f.type).length === 0, 5000);
    });

    test('ontapd killed with SIGKILL: the lease stays at the server; restarted, ontapd deletes the device and the name gets its address back', async () => {
      const w = await start(['-n', 'crash']);
      const address = w.env.ONTAP_IPV4!.split('/')[0]!;
      await daemon!.kill('SIGKILL');
      // Nothing released it: dnsmasq holds the lease until it ends (docs/design.md, "IPv4 by DHCP").
      await new Promise((r) => setTimeout(r, 500));
      assert.ok(dnsmasq!.leases().some((l) => l.address === address), 'the lease is still at the server');
      await daemon!.start();
      // The workload still runs: its device is gone because ontapd's reclaim deleted it.
      await eventually('the orphaned device deleted by the restarted ontapd',
        () => spawnSync('nsenter', ['-t', String(w.child.pid), '-n', 'ip', 'link', 'show', 'dev', w.env.ONTAP_IFNAME!], { stdio: 'ignore' }).status !== 0, 5000);
      assert.match(daemon!.log, /event=reclaim .*alias=crash/);
      await end(w, 'exit');
      const again = await start(['-n', 'crash']);
      try {
        assert.equal(again.env.ONTAP_IPV4!.split('/')[0], address, 'the same client id: the lease is taken up again');
      } finally {
        await end(again, 'exit');
      }
      await dnsmasq!.waitForNoLease((l) => l.address === address, 3000);
    });

    test('no DHCP server: ontap exits 69 within the timeout naming the uplink, and nothing is left', async () => {
      await dnsmasq!.stop();
      const fds = daemon!.fdCount();
      try {
        const t0 = performance.now();
        const r = spawnSync('ip', ['netns', 'exec', host, process.execPath, ONTAP, '-t', f.type, '--dhcp', '--netns', daemon!.socket(), '--', 'true'],
          { encoding: 'utf8', timeout: 60000 });
        const ms = performance.now() - t0;
        assert.equal(r.status, 69, r.stderr);
        assert.match(r.stderr, new RegExp(`no DHCP server answered on up0 within ${f.timeoutSeconds} s`));
        assert.ok(ms >= f.timeoutSeconds * 1000 && ms < f.timeoutSeconds * 1000 + 3000 + f.leaseMs, `${ms.toFixed(0)} ms`);
        await eventually('the device deleted', () => linksOfKind(host, f.type).length === 0, 5000);
        assert.match(daemon!.log, /event=request-failed .*code=unavailable .*field=ipv4/);
        await eventually('ontapd\'s descriptors back to what they were (socket, namespace, connection closed)', () => daemon!.fdCount() === fds, 3000)
          .catch(() => assert.fail(`ontapd holds ${daemon!.fdCount()} descriptors, ${fds} before`));
      } finally {
        const wire = nets.names[1]!;
        dnsmasq = await startDnsmasq({ netns: wire, ifname: 'peer0', address: '10.78.0.1/24', range: ['10.78.0.100', '10.78.0.150'], leaseSeconds: 600, extraArgs: SERVER_OPTIONS });
      }
    });
  });
}
