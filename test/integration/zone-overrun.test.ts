/**
 * Overruns: ontap-zone with a tiny netlink receive buffer, a burst of thousands of events (one
 * `ip -batch` adding and deleting addresses and changing the alias, and a namespace getting its nsid
 * meanwhile). The kernel drops notifications (ENOBUFS); ontap-zone must notice, dump everything
 * again, and end with the file a fresh dump (`ontap-zone --once`) gives, byte for byte.
 */
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestNamespaces, eventually, ip, sweepStaleNamespaces } from '../helpers/netns.js';
import { describeWhen, hasCommand, isRoot, kernelHasKind, missing } from '../helpers/requirements.js';
import { TestZone, zoneOnce } from '../helpers/zone.js';

// The storm leaves 500 addresses on one workload: all of them published, to compare them all.
const ARGS = ['--domain', 'storm.test', '--lan', '10.0.0.0/8', '--max-addresses', '1000'];

const reason = missing([
  [isRoot, 'needs root (network namespaces)'],
  [() => hasCommand('ip'), 'needs iproute2'],
  [() => kernelHasKind('macvlan'), 'this kernel cannot create macvlan devices'],
]);

describeWhen('ontap-zone under an event storm that overruns its socket', reason, () => {
  const nets = new TestNamespaces();
  let host = '';
  let w1 = '';
  let w2 = '';
  let zone: TestZone;
  let scratch = '';

  before(async () => {
    sweepStaleNamespaces();
    scratch = mkdtempSync(join(tmpdir(), 'ontap-zone-t-'));
    host = nets.add('host');
    const wire = nets.add('wire');
    w1 = nets.add('w1');
    w2 = nets.add('w2');
    nets.veth(host, 'up0', wire, 'peer0');
    for (const [ns, name] of [[w1, 'storm'], [w2, 'quiet']] as const) {
      ip('-n', host, 'link', 'add', 'link', 'up0', 'name', 'mv0', 'netns', ns, 'type', 'macvlan', 'mode', 'bridge');
      ip('-n', ns, 'link', 'set', 'mv0', 'alias', name, 'up');
    }
    ip('-n', host, 'netns', 'set', w1, 'auto');
    ip('-n', w2, 'addr', 'add', '203.0.113.2/24', 'dev', 'mv0');
    // The smallest buffer the kernel allows (it doubles the value and keeps a floor of ~2.3 KiB).
    zone = new TestZone(host, [...ARGS, '--rcvbuf', '1024']);
    await zone.start();
  });

  after(async () => {
    await zone?.stop();
    if (process.env.ONTAP_TEST_LOG) writeFileSync(process.env.ONTAP_TEST_LOG, zone?.log ?? '');
    zone?.removeDir();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
    nets.destroy();
  });

  test('after the burst the published file equals a fresh dump, byte for byte', async () => {
    const lines: string[] = [];
    for (let i = 1; i <= 600; i++) {
      lines.push(`addr add 2001:db8:5::${i.toString(16)}/128 dev mv0 nodad`);
      if (i % 3 === 0) lines.push(`addr add 10.5.${i >> 8}.${i & 255}/32 dev mv0`);
      if (i % 100 === 0) lines.push(`link set mv0 alias storm${i}`);
    }
    for (let i = 1; i <= 300; i++) lines.push(`addr del 2001:db8:5::${(i * 2).toString(16)}/128 dev mv0`);
    lines.push('link set mv0 alias storm-final');
    const batch = join(scratch, 'burst');
    writeFileSync(batch, lines.join('\n') + '\n');
    const started = Date.now();
    const burst = spawnSync('ip', ['-n', w1, '-batch', batch], { encoding: 'utf8' });
    assert.equal(burst.status, 0, burst.stderr);
    // A namespace gets its nsid right after: its newnsid may be lost too.
    ip('-n', host, 'netns', 'set', w2, 'auto');
    const burstMs = Date.now() - started;

    await eventually('an overrun noticed', () => /event=overrun /.test(zone.log), 5000);
    let fresh = '';
    await eventually('the file equals a fresh dump', () => {
      const once = zoneOnce(host, ARGS);
      assert.equal(once.status, 0, once.stderr);
      fresh = once.content;
      return zone.content === fresh;
    }, 20000).catch((e: Error) => {
      throw new Error(`${e.message}\n--- log tail:\n${zone.log.split('\n').slice(-20).join('\n')}`);
    });
    // And the fresh dump is what `ip` sees: 300 global IPv6 and 200 lan IPv4 under the final alias.
    assert.equal(fresh.match(/^:storm-final\.wan\.storm\.test:28:/gm)?.length, 300);
    assert.equal(fresh.match(/^\+storm-final\.lan\.storm\.test:10\.5\./gm)?.length, 200);
    assert.doesNotMatch(fresh, /^[+:]storm[0-9]+\./m, 'no intermediate alias survives');
    assert.match(fresh, /^\+quiet\.wan\.storm\.test:203\.0\.113\.2:60$/m, 'the namespace whose nsid came during the storm');
    const overruns = zone.log.match(/event=overrun /g)?.length ?? 0;
    const resyncs = zone.log.match(/event=resynced /g)?.length ?? 0;
    assert.ok(resyncs >= 1);
    process.stdout.write(`# burst of ${lines.length} changes in ${burstMs} ms: ${overruns} overrun(s), ${resyncs} resync pass(es), converged ${Date.now() - started} ms after the burst began\n`);
  });
});
