/**
 * ontap-zone (root) writing into an output directory that group 65534 may write to, and uid 65534
 * planting things there: a symlink at every name the writer could use (its temporary file, the file
 * itself) pointing at a file root owns, and a FIFO at the file's name. Root's file stays untouched,
 * and the zone file is still written, as a regular file.
 */
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestNamespaces, eventually, ip, sweepStaleNamespaces } from '../helpers/netns.js';
import { describeWhen, hasCommand, isRoot, kernelHasKind, missing } from '../helpers/requirements.js';
import { TestZone } from '../helpers/zone.js';

const NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];
const PRECIOUS = 'root\'s own file: ontap-zone must never write here\n';

function asNobody(argv: string[]): void {
  const r = spawnSync(NOBODY[0]!, [...NOBODY.slice(1), ...argv], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} as uid 65534: ${r.status} ${r.stderr}`);
}

const reason = missing([
  [isRoot, 'needs root (network namespaces, chown)'],
  [() => hasCommand('ip') && hasCommand('setpriv') && hasCommand('mkfifo'), 'needs iproute2, setpriv and mkfifo'],
  [() => kernelHasKind('macvlan'), 'this kernel cannot create macvlan devices'],
]);

describeWhen('ontap-zone writing into a group-writable directory where uid 65534 plants things', reason, () => {
  const nets = new TestNamespaces();
  let host = '';
  let work = '';
  let target = '';
  const zones: TestZone[] = [];

  /** ontap-zone writing into a fresh directory: root's, group 65534, mode 0775 (no sticky bit). */
  function zoneInGroupDir(domain: string): TestZone {
    const zone = new TestZone(host, ['--domain', domain], mkdtempSync(join(work, 'out-')));
    zones.push(zone);
    chownSync(zone.dir, 0, 65534);
    chmodSync(zone.dir, 0o775);
    return zone;
  }

  before(() => {
    sweepStaleNamespaces();
    ({ host } = nets.uplink());
    // A workload, so that there is a change to write after the first file.
    const w = nets.add('w');
    ip('-n', host, 'link', 'add', 'link', 'up0', 'name', 'd0', 'netns', w, 'type', 'macvlan', 'mode', 'bridge');
    ip('-n', w, 'link', 'set', 'd0', 'alias', 'victim', 'up');
    ip('-n', host, 'netns', 'set', w, 'auto');
    ip('-n', w, 'addr', 'add', '203.0.113.7/32', 'dev', 'd0');
    work = mkdtempSync(join(tmpdir(), 'ontap-zone-t-'));
    chmodSync(work, 0o755);
    const safe = mkdtempSync(join(work, 'root-'));
    target = join(safe, 'precious');
    writeFileSync(target, PRECIOUS, { mode: 0o644 });
    // The namespace w's name, for the second write.
    wNs = w;
  });
  let wNs = '';

  after(async () => {
    for (const z of zones) await z.stop();
    if (process.env.ONTAP_TEST_LOG) writeFileSync(process.env.ONTAP_TEST_LOG, zones.map((z) => z.log).join('\n'));
    if (work) rmSync(work, { recursive: true, force: true });
    nets.destroy();
  });

  test('symlinks at the temporary file\'s name and at the file: root\'s file is untouched, the zone file is written', async () => {
    const zone = zoneInGroupDir('planted.test');
    const dir = zone.dir;
    const planted: string[] = [];
    await zone.start(15000, (pid) => {
      // Every name a writer that knows its pid (or none) could use: the pid-named temporary file
      // ontap-zone used to open with O_TRUNC, a few neighbours, and the file itself.
      for (const name of ['data', ...[pid, pid + 1, pid - 1].map((p) => `.data.ontap-zone.${p}.tmp`), '.data.tmp', 'data.tmp', '.data.ontap-zone.tmp']) {
        asNobody(['ln', '-s', target, join(dir, name)]);
        planted.push(name);
      }
    });
    assert.equal(readFileSync(target, 'utf8'), PRECIOUS, 'root\'s file after the first write');
    const st = lstatSync(zone.file);
    assert.ok(st.isFile(), 'the zone file is a regular file, not the planted symlink');
    assert.match(zone.content, /^# ontap-zone: /);
    assert.match(zone.content, /^\+victim\.wan\.planted\.test:203\.0\.113\.7:60$/m);
    // A second write, with the symlinks still there.
    ip('-n', wNs, 'addr', 'add', '203.0.113.8/32', 'dev', 'd0');
    await eventually('the second write', () => zone.content.includes('+victim.wan.planted.test:203.0.113.8:'), 5000);
    assert.equal(readFileSync(target, 'utf8'), PRECIOUS, 'root\'s file after the second write');
    // Nothing left behind: the planted links (still links to the target), the file, the log.
    for (const name of planted.filter((n) => n !== 'data')) assert.equal(readlinkSync(join(dir, name)), target);
    const extra = readdirSync(dir).filter((n) => !planted.includes(n) && n !== 'data' && !n.startsWith('zone.'));
    assert.deepEqual(extra, [], 'no temporary file left');
    ip('-n', wNs, 'addr', 'del', '203.0.113.8/32', 'dev', 'd0');
  });

  test('a FIFO at the file\'s name: ontap-zone starts and replaces it with the file', async () => {
    const zone = zoneInGroupDir('fifo.test');
    asNobody(['mkfifo', zone.file]);
    await zone.start(10000);
    assert.ok(lstatSync(zone.file).isFile());
    assert.match(zone.content, /^\+victim\.wan\.fifo\.test:203\.0\.113\.7:60$/m);
  });
});
