/**
 * The units in systemd/ under a real systemd, in the VM guest (ipvlan and ipvtap exist there):
 * systemd runs as PID 1 of its own namespaces inside a test network namespace (the "host" whose
 * uplink is up0), with only the staged units. Proves, with every sandboxing option in the units
 * in force:
 *  - ontapd@up0.socket: the socket with SocketGroup=/SocketMode=; a connection starts
 *    ontapd@up0.service, Type=notify, which holds exactly CapabilityBoundingSet= and serves
 *    named ipvlans into new namespaces, ipvtaps through DeviceAllow=, and a private /dev/tapN
 *    node (mknod) when the name belongs to another namespace's tap;
 *  - ontap-exec@arroyocc.service (the root-then-setpriv chain): busybox httpd (for darkhttpd) as
 *    user www with only CAP_NET_BIND_SERVICE, hostname arroyocc, port 80 on its ipvlan, a page
 *    fetched over its own address from another namespace; with --dhcp (the README's example)
 *    an IPv4 address from dnsmasq on the wire, which ontapd@ leases inside its sandbox, and the
 *    page fetched over it too;
 *  - examples/darkhttpd.service (the unit form: User=, PrivateNetwork=, AmbientCapabilities=):
 *    the same with no root step at all;
 *  - ontap-zone.service with --mdns: it answers for arroyocc.local from inside the workload's
 *    namespace, then for the host name the workload is given (RestrictNamespaces=net uts lets it
 *    join network and UTS namespaces only);
 *  - stopping a workload deletes its device; stopping ontapd@ is clean.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { vmOnly } from './vm/guest.js';
import { TestNamespaces, eventually, linksOfKind, sweepStaleNamespaces } from '../helpers/netns.js';
import { occupyTapNames } from '../helpers/tap-clash.js';
import { installed } from '../helpers/install.js';
import { describeWhen, hasCommand, isRoot, kernelHasKind, missing } from '../helpers/requirements.js';
import { INSIDE, SystemdContainer } from '../helpers/systemd-container.js';
import { UNIT_DIR, boundingSetForSetpriv, capabilityMask, readUnit } from '../helpers/units.js';
import { CAP_NET_BIND_SERVICE, CAP_SETS, fetchOverLinkLocal, usableLinkLocal } from '../helpers/workload.js';
import { ASK, type MdnsReply } from '../helpers/mdns-client.js';
import { spawnSync } from 'node:child_process';
import { startDnsmasq, type DnsmasqServer } from '../helpers/dhcp-server.js';

const WWW_UID = 4242;
const PAGE = 'hello from a unit\n';
const ONTAPD_CAPS = capabilityMask(boundingSetForSetpriv(readUnit('ontapd@.service', 'up0')));

const reason = vmOnly || missing([
  [isRoot, 'needs root'],
  [() => hasCommand('unshare') && hasCommand('nsenter') && hasCommand('setpriv'), 'needs util-linux'],
  [() => hasCommand('systemctl'), 'needs systemd'],
  [() => kernelHasKind('ipvlan') && kernelHasKind('ipvtap'), 'needs ipvlan and ipvtap'],
]);

/** A unit file from systemd/ with its commands pointed at the installed project, as bound inside. */
function unitText(path: string): string {
  return readFileSync(join(UNIT_DIR, path), 'utf8').replace(/^ExecStart=(ontapd|ontap-zone|ontap)(?=\s)/gm, (_, c: string) => `ExecStart=${INSIDE}/prefix/bin/${c}`);
}

describeWhen('systemd units under a real systemd', reason, () => {
  const nets = new TestNamespaces();
  let host = '';
  let wire = '';
  let sd: SystemdContainer;
  let dnsmasq: DnsmasqServer | undefined;

  before(async () => {
    sweepStaleNamespaces();
    ({ host, wire } = nets.uplink());
    dnsmasq = await startDnsmasq({ netns: wire, ifname: 'peer0', address: '10.78.0.1/24', range: ['10.78.0.100', '10.78.0.150'], leaseSeconds: 600, extraArgs: ['--no-ping'] });
    sd = new SystemdContainer(host, installed().prefix);
    for (const unit of ['ontapd@.socket', 'ontapd@.service', 'ontap-exec@.service', 'ontap-zone.service']) sd.write(`units/${unit}`, unitText(unit));
    // /etc/ontap/zone.conf's part: multicast DNS only.
    sd.write('units/ontap-zone.service.d/test.conf', '[Service]\nEnvironmentFile=\nEnvironment="ONTAP_ZONE_OPTIONS=--mdns --verbosity=debug"\n');
    const httpd = `/bin/busybox httpd -f -p 80 -h ${INSIDE}/www`;
    // /etc/ontap/exec/arroyocc.conf, staged elsewhere: /etc is the host's, read-only.
    sd.write('exec/arroyocc.conf', ['ONTAP_EXEC_UPLINK=up0', 'ONTAP_EXEC_TYPE=ipvlan', 'ONTAP_EXEC_OPTIONS=--netns --uts --dhcp', 'ONTAP_EXEC_USER=www', 'ONTAP_EXEC_GROUP=www',
      'ONTAP_EXEC_CAPS=+net_bind_service', `ONTAP_EXEC_COMMAND=${httpd}`].join('\n') + '\n');
    sd.write('units/ontap-exec@arroyocc.service.d/test.conf', `[Service]\nEnvironmentFile=\nEnvironmentFile=${INSIDE}/exec/%i.conf\n`);
    sd.write('units/darkhttpd.service', unitText('examples/darkhttpd.service')
      .replace('/run/ontap/port.wlp3s0', '/run/ontap/port.up0')
      .replace('/usr/bin/darkhttpd /www --port 80', httpd));
    sd.write('www/index.html', PAGE);
    sd.accounts([`www:x:${WWW_UID}:${WWW_UID}::/nonexistent:/usr/sbin/nologin`], [`www:x:${WWW_UID}:`, `ontap:x:${WWW_UID + 1}:`]);
    await sd.start(join(sd.stage, 'outer.log'));
  });

  after(async () => {
    if (process.env.ONTAP_TEST_LOG) process.stderr.write(sd?.output ?? '');
    await sd?.stop();
    await dnsmasq?.stop();
    nets.destroy();
  });

  function mainPid(unit: string): number {
    return Number(sd.show(unit, 'MainPID'));
  }

  async function active(unit: string, timeoutMs = 60000): Promise<void> {
    await eventually(`${unit} active`, () => sd.show(unit, 'ActiveState') === 'active', timeoutMs)
      .catch((e: Error) => assert.fail(`${e.message}\n${sd.systemctl(['status', unit]).stdout}\n${sd.output.slice(-4000)}`));
  }

  /** The workload's link-local address (pid as systemd sees it: nsenter runs in its PID namespace). */
  function linkLocal(pid: number): Promise<string> {
    return usableLinkLocal(['nsenter', '-t', String(sd.pid), '-m', '-p', '--', 'nsenter', '-t', String(pid), '-n', '--'], 20000);
  }

  test('ontapd@up0.socket listens as root:ontap 0660, and nothing runs until a connection', () => {
    const r = sd.systemctl(['start', 'ontapd@up0.socket']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(sd.exec(['stat', '-c', '%a %U %G %F', '/run/ontap/port.up0']).stdout.trim(), '660 root ontap socket');
    assert.equal(sd.show('ontapd@up0.service', 'ActiveState'), 'inactive');
  });

  test('ontap-exec@arroyocc: the connection starts ontapd@up0 (Type=notify, its bounding set, sandboxed)', async () => {
    const r = sd.systemctl(['start', 'ontap-exec@arroyocc.service']);
    assert.equal(r.status, 0, `${r.stderr}\n${sd.output.slice(-4000)}`);
    await active('ontap-exec@arroyocc.service');
    await active('ontapd@up0.service');
    assert.equal(sd.show('ontapd@up0.service', 'StatusText'), 'serving up0', 'READY=1 with STATUS= came from ontapd');
    const st = sd.status(mainPid('ontapd@up0.service'));
    assert.equal(st.Uid!.split(/\s+/)[0], '0');
    assert.equal(st.CapBnd, ONTAPD_CAPS);
    assert.equal(st.CapEff, ONTAPD_CAPS);
    assert.equal(st.NoNewPrivs, '1');
    assert.equal(st.Seccomp, '2', 'SystemCallFilter= in force');
  });

  test('ontap-exec@arroyocc: www with only CAP_NET_BIND_SERVICE, hostname arroyocc, serving port 80 on its named ipvlan', async () => {
    const pid = mainPid('ontap-exec@arroyocc.service');
    await eventually('httpd listening', () => /:80\b/.test(sd.exec(['nsenter', '-t', String(pid), '-n', '--', 'ss', '-ltnH']).stdout), 20000);
    const st = sd.status(pid);
    assert.match(st.Name!, /busybox|httpd/, 'the unit\'s main process is the workload itself (one exec chain)');
    assert.deepEqual(st.Uid!.split(/\s+/), Array(4).fill(String(WWW_UID)));
    assert.deepEqual(st.Gid!.split(/\s+/), Array(4).fill(String(WWW_UID)));
    for (const set of CAP_SETS) assert.equal(st[set], CAP_NET_BIND_SERVICE, `${set}: ${st[set]}`);
    assert.equal(sd.exec(['nsenter', '-t', String(pid), '-u', '--', 'hostname']).stdout.trim(), 'arroyocc');
    const inside = JSON.parse(sd.exec(['nsenter', '-t', String(pid), '-n', '--', 'ip', '-j', '-d', 'link', 'show']).stdout) as Array<{ ifname: string; ifalias?: string; linkinfo?: { info_kind?: string } }>;
    const dev = inside.find((l) => l.linkinfo?.info_kind === 'ipvlan');
    assert.ok(dev, `an ipvlan in the workload's namespace: ${JSON.stringify(inside)}`);
    assert.equal(dev.ifalias, 'arroyocc');
    assert.equal(await fetchOverLinkLocal(wire, 'peer0', await linkLocal(pid)), PAGE);
  });

  test('ontap-exec@arroyocc with --dhcp: an IPv4 address from the LAN\'s server, leased by the sandboxed ontapd@, the page served over it', async () => {
    const pid = mainPid('ontap-exec@arroyocc.service');
    const lease = await dnsmasq!.waitForLease((l) => l.hostname === 'arroyocc', 10000);
    const addrs = JSON.parse(sd.exec(['nsenter', '-t', String(pid), '-n', '--', 'ip', '-j', '-4', 'addr', 'show']).stdout) as Array<{ addr_info: Array<{ local: string; prefixlen: number; valid_life_time: number }> }>;
    const v4 = addrs.flatMap((a) => a.addr_info).filter((a) => a.local !== '127.0.0.1');
    assert.deepEqual(v4.map((a) => `${a.local}/${a.prefixlen}`), [`${lease.address}/24`]);
    assert.ok(v4[0]!.valid_life_time <= 600, 'with the lease\'s lifetime');
    // No -T: busybox 1.35's wget crashes with it (SIGSEGV).
    const r = spawnSync('ip', ['netns', 'exec', wire, '/bin/busybox', 'wget', '-q', '-O', '-', `http://${lease.address}/index.html`], { encoding: 'utf8', timeout: 20000 });
    assert.equal(r.stdout, PAGE, `wget exited ${r.status}: ${r.stderr}; wire: ${spawnSync('ip', ['-n', wire, 'neigh'], { encoding: 'utf8' }).stdout} ${spawnSync('ip', ['-n', wire, '-4', 'addr'], { encoding: 'utf8' }).stdout}; workload: ${sd.exec(['nsenter', '-t', String(pid), '-n', '--', 'ss', '-ltnH']).stdout} ${sd.exec(['nsenter', '-t', String(pid), '-n', '--', 'ip', '-4', 'route']).stdout}`);
  });

  test('ontap-zone.service with --mdns answers for arroyocc.local on its ipvlan, sandboxed (RestrictNamespaces=net uts), and for the host name it is given', async () => {
    const r = sd.systemctl(['start', 'ontap-zone.service']);
    assert.equal(r.status, 0, `${r.stderr}\n${sd.systemctl(['status', 'ontap-zone.service']).stdout}\n${sd.output.slice(-4000)}`);
    await active('ontap-zone.service');
    await eventually('arroyocc.local established', () => /event=mdns-established .*mdns=arroyocc\.local/.test(sd.services), 30000)
      .catch((e: Error) => assert.fail(`${e.message}\n${sd.output.slice(-4000)}`));
    const st = sd.status(mainPid('ontap-zone.service'));
    assert.equal(st.Seccomp, '2', 'SystemCallFilter= in force');
    const address = await linkLocal(mainPid('ontap-exec@arroyocc.service'));
    const q = spawnSync('ip', ['netns', 'exec', wire, 'python3', '-I', '-c', ASK, 'legacy', 'arroyocc.local', '28', '6', 'peer0'], { encoding: 'utf8', timeout: 30000 });
    assert.equal(q.status, 0, q.stderr);
    const reply = JSON.parse(q.stdout) as MdnsReply | null;
    assert.ok(reply, `no answer from ontap-zone:\n${sd.output.slice(-3000)}`);
    assert.deepEqual(reply.answers.map((a) => [a.name, a.type, a.data]), [['arroyocc.local', 28, address]]);
    // A host name set inside the workload names it too (--names both): the UTS namespace is read
    // from the sandbox (RestrictNamespaces=net uts), the doorbell rings through ProtectHostname=.
    const pid = mainPid('ontap-exec@arroyocc.service');
    assert.equal(sd.exec(['nsenter', '-t', String(pid), '-u', '--', 'hostname', 'arroyo2']).status, 0);
    await eventually('arroyo2.local established', () => /event=mdns-established .*mdns=arroyo2\.local/.test(sd.services), 30000)
      .catch((e: Error) => assert.fail(`${e.message}\n${sd.output.slice(-4000)}`));
    const q2 = spawnSync('ip', ['netns', 'exec', wire, 'python3', '-I', '-c', ASK, 'legacy', 'arroyo2.local', '28', '6', 'peer0'], { encoding: 'utf8', timeout: 30000 });
    assert.equal(q2.status, 0, q2.stderr);
    const reply2 = JSON.parse(q2.stdout) as MdnsReply | null;
    assert.ok(reply2, `no answer for arroyo2.local:\n${sd.output.slice(-3000)}`);
    assert.deepEqual(reply2.answers.map((a) => [a.name, a.type, a.data]), [['arroyo2.local', 28, address]]);
    // The alias is still a name of the same link: one responder per name on it.
    const q3 = spawnSync('ip', ['netns', 'exec', wire, 'python3', '-I', '-c', ASK, 'legacy', 'arroyocc.local', '28', '6', 'peer0'], { encoding: 'utf8', timeout: 30000 });
    assert.equal(q3.status, 0, q3.stderr);
    assert.deepEqual((JSON.parse(q3.stdout) as MdnsReply | null)?.answers.map((a) => [a.name, a.type, a.data]), [['arroyocc.local', 28, address]]);
  });

  test('the unit form (examples/darkhttpd.service): ontap itself runs as www, no root step, no CAP_SYS_ADMIN', async () => {
    const r = sd.systemctl(['start', 'darkhttpd.service']);
    assert.equal(r.status, 0, `${r.stderr}\n${sd.output.slice(-4000)}`);
    await active('darkhttpd.service');
    const pid = mainPid('darkhttpd.service');
    await eventually('httpd listening', () => /:80\b/.test(sd.exec(['nsenter', '-t', String(pid), '-n', '--', 'ss', '-ltnH']).stdout), 20000)
      .catch((e: Error) => assert.fail(`${e.message}\n${sd.output.slice(-4000)}`));
    const st = sd.status(pid);
    assert.deepEqual(st.Uid!.split(/\s+/), Array(4).fill(String(WWW_UID)));
    for (const set of CAP_SETS) assert.equal(st[set], CAP_NET_BIND_SERVICE, `${set}: ${st[set]}`);
    assert.equal(await fetchOverLinkLocal(wire, 'peer0', await linkLocal(pid)), PAGE);
  });

  test('ipvtaps through DevicePolicy=closed + DeviceAllow=, also when /dev/tapN is another namespace\'s (mknod)', () => {
    // A root client in systemd's mount namespace (where /run/ontap is), in the guest's network namespace.
    const ontap = (): { status: number | null; out: string } => {
      const r = sd.exec([`${INSIDE}/prefix/bin/ontap`, '-t', 'ipvtap', '-m', '2', '/run/ontap/port.up0', '--', 'sh', '-c', 'echo "ifindex=$ONTAP_IFINDEX fds=$ONTAP_FD0,$ONTAP_FD1"']);
      return { status: r.status, out: r.stdout + r.stderr };
    };
    const plain = ontap();
    assert.equal(plain.status, 0, `${plain.out}\n${sd.output.slice(-3000)}`);
    assert.match(plain.out, /fds=\d+,\d+/);
    const clash = occupyTapNames(nets, host, 'ipvtap');
    let clashed: { status: number | null; out: string };
    try {
      clashed = ontap();
    } finally {
      clash.remove();
    }
    assert.equal(clashed.status, 0, `${clashed.out}\n${sd.output.slice(-3000)}`);
    const ifindex = Number(/ifindex=(\d+)/.exec(clashed.out)?.[1]);
    assert.ok(ifindex >= clash.first && ifindex <= clash.last, `the tap's /dev/tap${ifindex} name was taken (${clash.first}..${clash.last})`);
  });

  test('stopping a workload deletes its device; stopping ontapd@up0 is clean', async () => {
    for (const unit of ['ontap-exec@arroyocc.service', 'darkhttpd.service']) {
      assert.equal(sd.systemctl(['stop', unit]).status, 0);
    }
    await eventually('both ipvlans released', () => (sd.services.match(/event=release conn=\S+ uid=\d+ ifname=ot\S+ nsid=/g)?.length ?? 0) >= 2, 20000)
      .catch((e: Error) => assert.fail(`${e.message}\n${sd.output.slice(-3000)}`));
    await dnsmasq!.waitForNoLease((l) => l.hostname === 'arroyocc', 5000);
    assert.equal(linksOfKind(host, 'ipvtap').length, 0);
    assert.equal(sd.systemctl(['stop', 'ontapd@up0.service', 'ontapd@up0.socket']).status, 0);
    assert.equal(sd.show('ontapd@up0.service', 'Result'), 'success');
    assert.equal(sd.exec(['test', '-e', '/run/ontap/port.up0']).status, 1, 'RemoveOnStop= removed the socket');
  });

  test('the device policy is in force: with DeviceAllow=char-ipvtap taken out, ontapd cannot open an ipvtap', () => {
    // A drop-in that resets DeviceAllow= to macvtap only (DevicePolicy=closed stays).
    sd.write('units/ontapd@up0.service.d/no-ipvtap.conf', '[Service]\nDeviceAllow=\nDeviceAllow=char-macvtap rwm\n');
    sd.sync('units/ontapd@up0.service.d');
    assert.equal(sd.systemctl(['daemon-reload']).status, 0);
    assert.equal(sd.systemctl(['start', 'ontapd@up0.socket']).status, 0);
    const r = sd.exec([`${INSIDE}/prefix/bin/ontap`, '-t', 'ipvtap', '/run/ontap/port.up0', '--', 'true']);
    assert.notEqual(r.status, 0, 'refused');
    // ontapd's line does not say what was refused: opening /dev/tapN (see docs/services.md).
    assert.match(sd.services, /event=request-failed .*error="the kernel refused ontapd: EPERM: operation not permitted, open '\/dev\/(\.ontap-)?tap/);
    assert.equal(linksOfKind(host, 'ipvtap').length, 0, 'and the half-made device is gone');
  });
});
