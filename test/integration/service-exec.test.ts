/**
 * The privilege drop as an exec chain: the command line of systemd/ontap-exec@.service, expanded
 * as systemd would expand it for a workload "arroyocc", run in a test namespace without systemd:
 *
 *   ontap -t macvlan -n arroyocc --netns --uts SOCKET -- setpriv --reuid=nobody --regid=nogroup
 *     --init-groups --inh-caps=-all,+net_bind_service --ambient-caps=-all,+net_bind_service
 *     --bounding-set=-all,+net_bind_service -- busybox httpd -f -p 80 -h WWW
 *
 * (busybox httpd stands in for darkhttpd, which Debian does not package; macvlan for ipvlan,
 * which this kernel lacks: service-systemd.vmtest.ts runs the ipvlan form under real systemd.)
 * The workload runs as nobody with exactly CAP_NET_BIND_SERVICE, binds port 80 in its own network
 * namespace, has hostname arroyocc, and serves a page over its own address to another namespace.
 * Without the capability the same chain cannot bind port 80.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestNamespaces, eventually, sweepStaleNamespaces } from '../helpers/netns.js';
import { ONTAP, TestDaemon } from '../helpers/ontapd.js';
import { Background } from '../helpers/background.js';
import { describeWhen, hasCommand, isRoot, kernelHasKind, missing } from '../helpers/requirements.js';
import { expandCommand, readUnit, unitEnvironment, values } from '../helpers/units.js';
import { BUSYBOX, CAP_NET_BIND_SERVICE, CAP_SETS, fetchOverLinkLocal, hasBusyboxApplets, listening, nsenter, procStatus, usableLinkLocal } from '../helpers/workload.js';

const NAME = 'arroyocc';

describeWhen('ontap-exec@.service\'s chain: ontap, then setpriv, then the workload', missing([
  [isRoot, 'needs root (network namespaces)'],
  [() => hasCommand('ip') && hasCommand('nsenter') && hasCommand('setpriv'), 'needs iproute2 and util-linux (nsenter, setpriv)'],
  [() => hasBusyboxApplets('httpd', 'wget'), `needs ${BUSYBOX} with httpd and wget (apt-get install busybox-static)`],
  [() => kernelHasKind('macvlan'), 'this kernel cannot create macvlan devices'],
]), () => {
  const nets = new TestNamespaces();
  let wire = '';
  let client = '';
  let daemon: TestDaemon;
  let dir = '';
  let www = '';
  const workloads: Background[] = [];

  before(async () => {
    sweepStaleNamespaces();
    const up = nets.uplink();
    const host = up.host;
    wire = up.wire;
    client = nets.add('client');
    daemon = new TestDaemon(host, ['up0']);
    await daemon.start();
    dir = mkdtempSync(join(tmpdir(), 'ontap-exec-'));
    chmodSync(dir, 0o755);
    www = join(dir, 'www');
    mkdirSync(www, { mode: 0o755 });
    writeFileSync(join(www, 'index.html'), `hello from ${NAME}\n`, { mode: 0o644 });
  });

  after(async () => {
    for (const w of workloads) await w.kill('SIGKILL');
    await daemon?.stop();
    daemon?.removeDir();
    nets.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The unit's ExecStart for /etc/ontap/exec/arroyocc.conf = `conf`, pointed at the test's ontap and socket. */
  function chain(conf: Record<string, string>): string[] {
    const unit = readUnit('ontap-exec@.service', NAME);
    const argv = expandCommand(values(unit, 'Service', 'ExecStart')[0]!, unitEnvironment(unit, {
      ONTAP_EXEC_UPLINK: 'up0', ONTAP_EXEC_USER: 'nobody', ONTAP_EXEC_GROUP: 'nogroup', ONTAP_EXEC_TYPE: 'macvlan',
      ONTAP_EXEC_COMMAND: `${BUSYBOX} httpd -f -vv -p 80 -h ${www}`, ...conf,
    }));
    assert.equal(argv[0], 'ontap');
    const socket = argv.indexOf('/run/ontap/port.up0');
    assert.ok(socket > 0, argv.join(' '));
    argv[socket] = daemon.socket();
    return ['ip', 'netns', 'exec', client, process.execPath, ONTAP, ...argv.slice(1)];
  }

  test('the workload runs as nobody with only CAP_NET_BIND_SERVICE, in its own namespaces, and serves port 80', async () => {
    const argv = chain({ ONTAP_EXEC_CAPS: '+net_bind_service' });
    assert.ok(argv.includes('--netns') && argv.includes('--uts'), `namespaces by default: ${argv.join(' ')}`);
    const httpd = new Background(argv, join(dir, 'httpd.log'));
    workloads.push(httpd);
    // One pid all along: ip netns exec, ontap, setpriv and httpd each exec the next.
    await eventually('httpd listening on port 80', () => listening(httpd.pid, 80), 10000)
      .catch((e: Error) => assert.fail(`${e.message}\n${httpd.log}\n${daemon.log}`));

    const st = procStatus(httpd.pid);
    assert.match(st.Name!, /busybox|httpd/);
    assert.deepEqual(st.Uid!.split(/\s+/), ['65534', '65534', '65534', '65534']);
    assert.deepEqual(st.Gid!.split(/\s+/), ['65534', '65534', '65534', '65534']);
    for (const set of CAP_SETS) assert.equal(st[set], CAP_NET_BIND_SERVICE, `${set}: ${st[set]}`);

    assert.equal(nsenter(httpd.pid, ['-u'], ['hostname']).trim(), NAME);
    const own = statSync(`/proc/${httpd.pid}/ns/net`).ino;
    assert.notEqual(own, statSync(`/run/netns/${client}`).ino, 'not the caller\'s namespace');
    const inside = JSON.parse(nsenter(httpd.pid, ['-n'], ['ip', '-j', '-d', 'link', 'show'])) as Array<{ ifname: string; ifalias?: string; linkinfo?: { info_kind?: string } }>;
    assert.deepEqual(inside.map((l) => l.linkinfo?.info_kind ?? l.ifname).sort(), ['lo', 'macvlan'], 'lo and the device, nothing else');
    assert.equal(inside.find((l) => l.linkinfo?.info_kind === 'macvlan')?.ifalias, NAME);

    // Its own address: the stable link-local one, once duplicate address detection is over.
    const address = await usableLinkLocal(['nsenter', '-t', String(httpd.pid), '-n', '--']);
    assert.equal(await fetchOverLinkLocal(wire, 'peer0', address), `hello from ${NAME}\n`);

    assert.equal(await httpd.kill('SIGTERM'), 128, 'httpd dies by the signal');
    await eventually('the device released after the workload ended', () => /event=release conn=\d+ uid=0 ifname=ot/.test(daemon.log));
  });

  test('the same chain without the capability cannot bind port 80', async () => {
    // The name gives the macvlan a stable MAC: the earlier workload's device must be gone.
    for (const w of workloads) await w.kill('SIGKILL');
    await eventually('earlier devices released', () => (daemon.log.match(/event=release conn/g)?.length ?? 0) >= workloads.length);
    const httpd = new Background(chain({ ONTAP_EXEC_CAPS: '-all' }), join(dir, 'httpd-nocap.log'));
    workloads.push(httpd);
    const code = await httpd.wait(15000);
    assert.notEqual(code, undefined, 'httpd gave up');
    assert.notEqual(code, 0);
    assert.match(httpd.log, /bind.*(Permission denied|not permitted)/i);
  });
});
