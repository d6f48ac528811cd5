/**
 * ontap-zone with real servers: ontapd hands macvlan devices to workloads in their namespaces,
 * ontap-zone (in ontapd's namespace) writes tinydns-data and runs tinydns-data, tinydns serves it in
 * a "dns" namespace, and dig asks from a lan and from a wan source address there.
 */
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { TestNamespaces, eventually, ip, sweepStaleNamespaces } from '../helpers/netns.js';
import { TestDaemon, ONTAP } from '../helpers/ontapd.js';
import { describeWhen, hasCommand, isRoot, kernelHasKind, missing } from '../helpers/requirements.js';
import { TestTinydns, TestZone, commandPath, dig } from '../helpers/zone.js';

const DOMAIN = 'zone.test';
const DNS = '127.0.0.53';
const LAN_CLIENT = '10.77.0.2';
const WAN_CLIENT = '198.51.100.2';

interface AddrJson { ifname: string; ifalias?: string; addr_info: Array<{ family: string; local: string; prefixlen: number; scope: string; tentative?: boolean; dadfailed?: boolean }> }

function addrs(ns: string): AddrJson[] {
  return JSON.parse(ip('-n', ns, '-j', 'addr', 'show')) as AddrJson[];
}

/** The ifname of the link with this alias in ns. */
function linkWithAlias(ns: string, alias: string): string {
  const links = JSON.parse(ip('-n', ns, '-j', '-d', 'link', 'show')) as Array<{ ifname: string; ifalias?: string }>;
  const l = links.find((x) => x.ifalias === alias);
  if (!l) throw new Error(`no link with alias ${alias} in ${ns}`);
  return l.ifname;
}

const reason = missing([
  [isRoot, 'needs root (network namespaces)'],
  [() => hasCommand('ip'), 'needs iproute2'],
  [() => hasCommand('dig'), 'needs dig (apt-get install dnsutils)'],
  [() => commandPath('tinydns') !== undefined && commandPath('tinydns-data') !== undefined, 'needs tinydns and tinydns-data (apt-get install tinydns)'],
  [() => kernelHasKind('macvlan'), 'this kernel cannot create macvlan devices'],
]);

describeWhen('ontap-zone: DNS names of ontapd workloads, served by tinydns', reason, () => {
  const nets = new TestNamespaces();
  let host = '';
  let wire = '';
  let w1 = '';
  let w2 = '';
  let w3 = '';
  let w4 = '';
  let dns = '';
  let daemon: TestDaemon;
  let zone: TestZone;
  let tinydns: TestTinydns;
  const holders: ChildProcess[] = [];

  /** A workload: `ontap -t macvlan -n NAME` holding its device until killed. Returns its ifname. */
  async function workload(ns: string, name: string): Promise<{ ifname: string; holder: ChildProcess }> {
    const holder = spawn('ip', ['netns', 'exec', ns, process.execPath, ONTAP, '-t', 'macvlan', '-n', name, daemon.socket(), '--', 'sh', '-c', 'echo started; exec sleep 600'],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    holders.push(holder);
    await new Promise<void>((resolve, reject) => {
      let out = '';
      holder.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('started')) resolve();
      });
      holder.on('exit', (code) => reject(new Error(`ontap exited with ${code}`)));
    });
    return { ifname: linkWithAlias(ns, name), holder };
  }

  function q(source: string, name: string, type: 'A' | 'AAAA') {
    return dig(dns, source, DNS, name, type);
  }

  /** Waits until dig from `source` answers exactly `want` for name/type. */
  async function answers(source: string, name: string, type: 'A' | 'AAAA', want: string[], timeoutMs = 5000): Promise<void> {
    const expected = want.map((a) => `${type} ${a}`).sort();
    let last: unknown;
    try {
      await eventually(`${name} ${type} from ${source} = ${want.join(',') || 'nothing'}`, () => {
        const r = q(source, name, type);
        last = r;
        return JSON.stringify(r.answers) === JSON.stringify(expected);
      }, timeoutMs);
    } catch (e) {
      throw new Error(`${(e as Error).message}; last answer ${JSON.stringify(last)}\n--- file:\n${zone.content}\n--- log tail:\n${zone.log.split('\n').slice(-15).join('\n')}`);
    }
  }

  const both = [LAN_CLIENT, WAN_CLIENT];
  let web1 = '';
  let web1LinkLocal = '';

  before(async () => {
    sweepStaleNamespaces();
    host = nets.add('host');
    wire = nets.add('wire');
    w1 = nets.add('w1');
    w2 = nets.add('w2');
    w3 = nets.add('w3');
    w4 = nets.add('w4');
    dns = nets.add('dns');
    nets.veth(host, 'up0', wire, 'peer0');
    ip('-n', dns, 'addr', 'add', `${LAN_CLIENT}/32`, 'dev', 'lo');
    ip('-n', dns, 'addr', 'add', `${WAN_CLIENT}/32`, 'dev', 'lo');
    daemon = new TestDaemon(host, ['up0'], ['--mode', '0666']);
    await daemon.start();
    zone = new TestZone(host, ['--domain', DOMAIN, '--lan', '10.77.0.0/16', '--ttl', '30', '--exec', commandPath('tinydns-data')!]);
    await zone.start();
    tinydns = new TestTinydns(dns, zone.dir, DNS);
    await tinydns.start();
  });

  after(async () => {
    for (const h of holders) h.kill('SIGKILL');
    await zone?.stop();
    await tinydns?.stop();
    await daemon?.stop();
    if (process.env.ONTAP_TEST_LOG) {
      const { writeFileSync } = await import('node:fs');
      writeFileSync(process.env.ONTAP_TEST_LOG, `${zone?.log ?? ''}\n${daemon?.log ?? ''}`);
    }
    zone?.removeDir();
    daemon?.removeDir();
    nets.destroy();
  });

  test('the zone answers before any workload: SOA at the apex, NXDOMAIN below', () => {
    const r = q(WAN_CLIENT, `nothing.${DOMAIN}`, 'A');
    assert.equal(r.status, 'NXDOMAIN');
    assert.match(zone.content, new RegExp(`^Z${DOMAIN.replace('.', '\\.')}:ns\\.${DOMAIN.replace('.', '\\.')}:`, 'm'));
  });

  test('an ontapd workload with addresses of every class: all four name forms, A and AAAA, per client location', async () => {
    ({ ifname: web1 } = await workload(w1, 'web1'));
    for (const a of ['203.0.113.10/24', '10.77.1.10/24', '169.254.7.10/16']) ip('-n', w1, 'addr', 'add', a, 'dev', web1);
    for (const a of ['2001:db8:1::10/64', 'fd00:77::10/64']) ip('-n', w1, 'addr', 'add', a, 'dev', web1, 'nodad');
    // The RFC 7217 link-local address ontapd's stable secret gives it, once DAD is through.
    await eventually('web1 has a link-local address past DAD', () => {
      const ll = addrs(w1).find((l) => l.ifname === web1)?.addr_info.find((a) => a.family === 'inet6' && a.scope === 'link' && !a.tentative);
      web1LinkLocal = ll?.local ?? '';
      return web1LinkLocal !== '';
    }, 5000);
    for (const src of both) {
      await answers(src, `web1.wan.${DOMAIN}`, 'A', ['203.0.113.10']);
      await answers(src, `web1.wan.${DOMAIN}`, 'AAAA', ['2001:db8:1::10']);
      await answers(src, `web1.lan.${DOMAIN}`, 'A', ['10.77.1.10']);
      await answers(src, `web1.lan.${DOMAIN}`, 'AAAA', ['fd00:77::10']);
      await answers(src, 'web1.local', 'A', ['169.254.7.10']);
      await answers(src, 'web1.local', 'AAAA', [web1LinkLocal]);
    }
    await answers(LAN_CLIENT, `web1.${DOMAIN}`, 'A', ['10.77.1.10']);
    await answers(LAN_CLIENT, `web1.${DOMAIN}`, 'AAAA', ['fd00:77::10']);
    await answers(WAN_CLIENT, `web1.${DOMAIN}`, 'A', ['203.0.113.10']);
    await answers(WAN_CLIENT, `web1.${DOMAIN}`, 'AAAA', ['2001:db8:1::10']);
  });

  test('adding, removing and changing addresses shows up in DNS', async () => {
    // /32: a second /24 would be a secondary, which the kernel deletes with its primary.
    ip('-n', w1, 'addr', 'add', '203.0.113.11/32', 'dev', web1);
    await answers(WAN_CLIENT, `web1.${DOMAIN}`, 'A', ['203.0.113.10', '203.0.113.11']);
    ip('-n', w1, 'addr', 'del', '203.0.113.10/24', 'dev', web1);
    await answers(WAN_CLIENT, `web1.wan.${DOMAIN}`, 'A', ['203.0.113.11']);
    // Renumbering the lan: the old address goes, a new one comes.
    ip('-n', w1, 'addr', 'del', '10.77.1.10/24', 'dev', web1);
    ip('-n', w1, 'addr', 'add', '10.77.1.12/24', 'dev', web1);
    await answers(LAN_CLIENT, `web1.${DOMAIN}`, 'A', ['10.77.1.12']);
    await answers(LAN_CLIENT, `web1.lan.${DOMAIN}`, 'A', ['10.77.1.12']);
    // Deprecating the only wan IPv6 keeps it; a preferred one beside it replaces it in DNS.
    ip('-n', w1, 'addr', 'change', '2001:db8:1::10/64', 'dev', web1, 'preferred_lft', '0');
    ip('-n', w1, 'addr', 'add', '203.0.113.12/32', 'dev', web1); // a marker: the file was rewritten after the change
    await answers(WAN_CLIENT, `web1.${DOMAIN}`, 'A', ['203.0.113.11', '203.0.113.12']);
    await answers(WAN_CLIENT, `web1.${DOMAIN}`, 'AAAA', ['2001:db8:1::10']);
    ip('-n', w1, 'addr', 'add', '2001:db8:1::20/64', 'dev', web1, 'nodad');
    await answers(WAN_CLIENT, `web1.${DOMAIN}`, 'AAAA', ['2001:db8:1::20']);
    await answers(WAN_CLIENT, `web1.wan.${DOMAIN}`, 'AAAA', ['2001:db8:1::20']);
  });

  test('a tentative address is published only once DAD is through; a dadfailed one never', async () => {
    // Someone on the link already holds ::40: DAD fails for it.
    ip('-n', wire, 'addr', 'add', '2001:db8:1::40/64', 'dev', 'peer0', 'nodad');
    ip('-n', w1, 'addr', 'add', '2001:db8:1::30/64', 'dev', web1);
    ip('-n', w1, 'addr', 'add', '2001:db8:1::40/64', 'dev', web1);
    ip('-n', w1, 'addr', 'add', '2001:db8:1::31/64', 'dev', web1, 'nodad'); // marker
    await answers(WAN_CLIENT, `web1.wan.${DOMAIN}`, 'AAAA', ['2001:db8:1::20', '2001:db8:1::31']);
    const info = () => addrs(w1).find((l) => l.ifname === web1)!.addr_info;
    assert.ok(info().find((a) => a.local === '2001:db8:1::30')?.tentative, 'still tentative when the marker was published');
    await eventually('::40 dadfailed and ::30 past DAD', () => {
      const i = info();
      return i.find((a) => a.local === '2001:db8:1::40')?.dadfailed === true && i.find((a) => a.local === '2001:db8:1::30')?.tentative !== true;
    }, 5000);
    await answers(WAN_CLIENT, `web1.wan.${DOMAIN}`, 'AAAA', ['2001:db8:1::20', '2001:db8:1::30', '2001:db8:1::31']);
    assert.doesNotMatch(zone.content, /\\000\\000\\000\\000\\000\\100:/, 'no record of the dadfailed ::40');
  });

  test('an alias change moves the names; reverting moves them back', async () => {
    ip('-n', w1, 'link', 'set', 'dev', web1, 'alias', 'web9');
    await answers(WAN_CLIENT, `web9.wan.${DOMAIN}`, 'A', ['203.0.113.11', '203.0.113.12']);
    await answers(WAN_CLIENT, `web1.wan.${DOMAIN}`, 'A', []);
    assert.equal(q(WAN_CLIENT, `web1.wan.${DOMAIN}`, 'A').status, 'NXDOMAIN');
    ip('-n', w1, 'link', 'set', 'dev', web1, 'alias', 'web1');
    await answers(WAN_CLIENT, `web1.wan.${DOMAIN}`, 'A', ['203.0.113.11', '203.0.113.12']);
    await answers(WAN_CLIENT, `web9.wan.${DOMAIN}`, 'A', []);
  });

  test('two workloads with one name: both withheld and reported, published again when one goes', async () => {
    const { ifname, holder } = await workload(w2, 'web2');
    ip('-n', w2, 'addr', 'add', '203.0.113.20/24', 'dev', ifname);
    await answers(WAN_CLIENT, `web2.${DOMAIN}`, 'A', ['203.0.113.20']);
    ip('-n', w2, 'link', 'set', 'dev', ifname, 'alias', 'web1');
    await answers(WAN_CLIENT, `web1.wan.${DOMAIN}`, 'A', []);
    await answers(WAN_CLIENT, `web2.wan.${DOMAIN}`, 'A', []);
    await eventually('the collision is logged', () => /event=name-withheld reason=collision name=web1 /.test(zone.log));
    assert.match(zone.content, /^# withheld "web1" \(collision/m);
    ip('-n', w2, 'link', 'set', 'dev', ifname, 'alias', 'bad_name');
    await answers(WAN_CLIENT, `web1.wan.${DOMAIN}`, 'A', ['203.0.113.11', '203.0.113.12']);
    await eventually('the invalid name is logged', () => /event=name-withheld reason=invalid-name name=bad_name /.test(zone.log));
    ip('-n', w2, 'link', 'set', 'dev', ifname, 'alias', 'web2');
    await answers(WAN_CLIENT, `web2.${DOMAIN}`, 'A', ['203.0.113.20']);
    // The lease ends: ontapd deletes the device, and its names go.
    holder.kill('SIGKILL');
    await answers(WAN_CLIENT, `web2.${DOMAIN}`, 'A', []);
  });

  test('renames do not matter; a link moved to another namespace keeps its name there; a destroyed namespace takes its names', async () => {
    ip('-n', host, 'netns', 'set', w3, 'auto');
    ip('-n', host, 'netns', 'set', w4, 'auto');
    ip('-n', host, 'link', 'add', 'link', 'up0', 'name', 'mv0', 'netns', w3, 'type', 'macvlan', 'mode', 'bridge');
    ip('-n', w3, 'link', 'set', 'mv0', 'alias', 'mover', 'up');
    ip('-n', w3, 'addr', 'add', '203.0.113.30/24', 'dev', 'mv0');
    await answers(WAN_CLIENT, `mover.${DOMAIN}`, 'A', ['203.0.113.30']);
    ip('-n', w3, 'link', 'set', 'mv0', 'down');
    await answers(WAN_CLIENT, `mover.${DOMAIN}`, 'A', [], 5000);
    ip('-n', w3, 'link', 'set', 'mv0', 'name', 'mv1', 'up');
    await answers(WAN_CLIENT, `mover.${DOMAIN}`, 'A', ['203.0.113.30']);
    // Moving flushes its addresses (the kernel's doing); in w4 it gets new ones.
    ip('-n', w3, 'link', 'set', 'mv1', 'netns', w4);
    await answers(WAN_CLIENT, `mover.${DOMAIN}`, 'A', []);
    ip('-n', w4, 'link', 'set', 'mv1', 'up');
    ip('-n', w4, 'addr', 'add', '203.0.113.31/24', 'dev', 'mv1');
    await answers(WAN_CLIENT, `mover.${DOMAIN}`, 'A', ['203.0.113.31']);
    ip('netns', 'del', w4);
    nets.names.splice(nets.names.indexOf(w4), 1);
    await answers(WAN_CLIENT, `mover.${DOMAIN}`, 'A', []);
    await eventually('the namespace is forgotten', () => /event=namespace-forgotten .*why=delnsid/.test(zone.log));
  });

  test('SIGHUP resyncs without changing a byte and runs --exec; event-to-file latency as logged', async () => {
    const before = zone.content;
    const execs = (zone.log.match(/event=exec /g) ?? []).length;
    zone.signal('SIGHUP');
    await eventually('the resync pass', () => /event=resynced .*reason=SIGHUP/.test(zone.log));
    await eventually('--exec ran once more', () => (zone.log.match(/event=exec /g) ?? []).length === execs + 1);
    assert.equal(zone.content, before);
    const lags = zone.lags().sort((a, b) => a - b);
    assert.ok(lags.length > 10, `writes logged: ${lags.length}`);
    const p = (q: number) => lags[Math.min(lags.length - 1, Math.floor(q * lags.length))]!;
    process.stdout.write(`# ontap-zone event-to-file over ${lags.length} writes: p50 ${p(0.5).toFixed(2)} ms, p99 ${p(0.99).toFixed(2)} ms, max ${p(1).toFixed(2)} ms\n`);
  });
});
