/**
 * The systemd units in systemd/, as far as a host without a running systemd can check them:
 *  - systemd-analyze verify (and its offline security score) on test-time copies whose binaries
 *    point at stubs, so a missing ontapd on systemd's search path is not what fails;
 *  - socket activation: systemd-socket-activate binds the socket the .socket unit names, with the
 *    name the unit gives it, and starts the .service's ExecStart (the real ontapd) on the first
 *    connection; ontapd serves the passed socket and sends READY=1 and STOPPING=1;
 *  - the .service's CapabilityBoundingSet: ontapd under exactly that bounding set serves every
 *    kind of request, and without any one of those capabilities some request fails.
 * Real systemd (hardening, DeviceAllow, User=, ...) runs in the VM: service-systemd.vmtest.ts.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestNamespaces, eventually, ip, linksOfKind, sweepStaleNamespaces } from '../helpers/netns.js';
import { occupyTapNames } from '../helpers/tap-clash.js';
import { installed } from '../helpers/install.js';
import { NotifyReceiver } from '../helpers/notify-receiver.js';
import { Background } from '../helpers/background.js';
import { describeWhen, hasCommand, isRoot, kernelHasKind, missing } from '../helpers/requirements.js';
import { startDnsmasq, type DnsmasqServer } from '../helpers/dhcp-server.js';
import { UNIT_DIR, boundingSetForSetpriv, expandCommand, instantiate, readUnit, shippedUnits, values } from '../helpers/units.js';

const INSTANCE = 'up0';

/** Test-time copies of every unit: instance names filled in, ExecStart=ontap* pointing at stubs. */
function unitCopies(dir: string): string[] {
  const bin = join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  for (const name of ['ontapd', 'ontap', 'ontap-zone']) {
    writeFileSync(join(bin, name), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  }
  const files: string[] = [];
  const sources = [...shippedUnits().map((f) => join(UNIT_DIR, f)), ...readdirSync(join(UNIT_DIR, 'examples')).filter((f) => f.endsWith('.service')).map((f) => join(UNIT_DIR, 'examples', f))];
  for (const source of sources) {
    const base = source.split('/').pop()!;
    const name = base.replace('@.', `@${INSTANCE}.`);
    const text = readFileSync(source, 'utf8').replace(/^ExecStart=(ontapd|ontap-zone|ontap)(?=\s)/gm, (_, b: string) => `ExecStart=${join(bin, b)}`);
    writeFileSync(join(dir, name), base.includes('@.') ? instantiate(text, INSTANCE) : text);
    files.push(join(dir, name));
  }
  return files;
}

describeWhen('systemd units: systemd-analyze', missing([[() => hasCommand('systemd-analyze'), 'needs systemd-analyze (apt-get install systemd)']]), () => {
  let dir = '';
  let files: string[] = [];
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'ontap-units-'));
    files = unitCopies(dir);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('every unit and example passes systemd-analyze verify without a single warning', () => {
    assert.ok(files.some((f) => f.endsWith('ontapd@up0.socket')) && files.some((f) => f.endsWith('ontap-zone.service')));
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', '--generators=no', ...files], { cwd: dir, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    // verify exits 0 on unknown keys, bad system call groups and the like: they are warnings.
    assert.equal(r.stderr.trim(), '', `systemd-analyze printed:\n${r.stderr}`);
  });

  test('the services score "OK" or better in systemd-analyze security', (t) => {
    for (const file of files.filter((f) => f.endsWith('.service'))) {
      const r = spawnSync('systemd-analyze', ['security', '--offline=yes', '--no-pager', file], { cwd: dir, encoding: 'utf8' });
      const m = /Overall exposure level for \S+: ([0-9.]+) (\S+)/.exec(r.stdout);
      assert.ok(m, `a score for ${file}: ${r.stdout.slice(-500)} ${r.stderr}`);
      t.diagnostic(`${file.split('/').pop()}: ${m[1]} ${m[2]}`);
      assert.ok(Number(m[1]) < 5, `${file} exposure ${m[1]} ${m[2]}`);
    }
  });

  test('socket and service agree: the socket is named port.UPLINK, the service is Type=notify', () => {
    const socket = readUnit('ontapd@.socket', INSTANCE);
    const service = readUnit('ontapd@.service', INSTANCE);
    assert.deepEqual(values(socket, 'Socket', 'ListenSequentialPacket'), [`/run/ontap/port.${INSTANCE}`]);
    assert.deepEqual(values(socket, 'Socket', 'FileDescriptorName'), [`port.${INSTANCE}`]);
    assert.deepEqual(values(socket, 'Socket', 'SocketGroup'), ['ontap']);
    assert.deepEqual(values(socket, 'Socket', 'SocketMode'), ['0660']);
    assert.deepEqual(values(service, 'Service', 'Type'), ['notify']);
    assert.deepEqual(values(service, 'Unit', 'Requires'), [`ontapd@${INSTANCE}.socket`]);
  });
});

const hostReason = missing([
  [isRoot, 'needs root (network namespaces)'],
  [() => hasCommand('ip'), 'needs iproute2'],
  [() => hasCommand('systemd-socket-activate'), 'needs systemd-socket-activate (apt-get install systemd)'],
  [() => hasCommand('setpriv'), 'needs setpriv (util-linux)'],
  [() => kernelHasKind('macvlan'), 'this kernel cannot create macvlan devices'],
  [() => kernelHasKind('macvtap'), 'this kernel cannot create macvtap devices'],
]);

/** Runs ontap in ns, optionally as another uid; returns its status and output. */
function ontap(ns: string, args: string[], asUid?: number): { status: number | null; out: string } {
  const prefix = asUid === undefined ? [] : ['setpriv', `--reuid=${asUid}`, `--regid=${asUid}`, '--clear-groups'];
  const r = spawnSync('ip', ['netns', 'exec', ns, ...prefix, installed().bin('ontap'), ...args], { encoding: 'utf8', timeout: 30000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describeWhen('ontapd@.socket + ontapd@.service under systemd-socket-activate', hostReason, () => {
  const nets = new TestNamespaces();
  let host = '';
  let client = '';
  let dir = '';
  let activator: Background | undefined;
  let notify: NotifyReceiver | undefined;
  const notices = (): string[] => notify?.messages ?? [];

  before(async () => {
    sweepStaleNamespaces();
    host = nets.uplink().host;
    client = nets.add('client');
    dir = mkdtempSync(join(tmpdir(), 'ontap-activate-'));
    chmodSync(dir, 0o755);
    // The NOTIFY_SOCKET systemd would give the service.
    notify = new NotifyReceiver(join(dir, 'notify'));

    // systemd-socket-activate plays the .socket unit, the .service's ExecStart is what it starts.
    const socket = readUnit('ontapd@.socket', INSTANCE);
    const service = readUnit('ontapd@.service', INSTANCE);
    const listen = values(socket, 'Socket', 'ListenSequentialPacket')[0]!.replace('/run/ontap/', `${dir}/`);
    const fdname = values(socket, 'Socket', 'FileDescriptorName')[0]!;
    const command = expandCommand(values(service, 'Service', 'ExecStart')[0]!, {});
    assert.equal(command[0], 'ontapd');
    activator = new Background(['ip', 'netns', 'exec', host, 'systemd-socket-activate', '--seqpacket', '-l', listen, `--fdname=${fdname}`,
      // --family macvlan as an administrator's drop-in would add it: this kernel has no ipvlan, and
      // only root may ask for another family than ontapd serves.
      '-E', `NOTIFY_SOCKET=${join(dir, 'notify')}`, installed().bin('ontapd'), '--family', 'macvlan', ...command.slice(1)], join(dir, 'activate.log'));
    await activator.waitFor(/Listening on .*port\.up0/, 'systemd-socket-activate listening');
  });

  after(async () => {
    await activator?.kill('SIGKILL');
    notify?.close();
    nets.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  test('ontapd starts on the first connection, serves the passed socket and reports READY=1', async () => {
    assert.doesNotMatch(activator!.log, /Execing/, 'nothing started before a connection');
    const r = ontap(client, ['-t', 'macvlan', '-n', 'web', join(dir, 'port.up0'), '--', 'sh', '-c', 'echo "ifname=$ONTAP_IFNAME"']);
    assert.equal(r.status, 0, `${r.out}\n${activator!.log}`);
    assert.match(r.out, /ifname=ot[0-9a-f]{4}/);
    assert.match(activator!.log, /event=serving uplink=up0 socket=fd:3/);
    await eventually('READY=1 on NOTIFY_SOCKET', () => notices().some((n) => n.startsWith('READY=1')));
    const ready = notices().find((n) => n.startsWith('READY=1'))!;
    // ip netns exec, systemd-socket-activate and node exec each other: one pid throughout.
    assert.match(ready, new RegExp(`^MAINPID=${activator!.pid}$`, 'm'));
    assert.match(ready, /^STATUS=serving up0$/m);
    await eventually('the macvlan released', () => linksOfKind(client, 'macvlan').length === 0);
  });

  test('the same ontapd keeps serving: a macvtap from an unprivileged caller', async () => {
    // systemd-socket-activate binds with the umask's mode; the unit's SocketMode=0660 with
    // SocketGroup=ontap is systemd's job, checked in the VM. Open it up for this caller.
    chmodSync(join(dir, 'port.up0'), 0o666);
    const r = ontap(client, ['-t', 'macvtap', join(dir, 'port.up0'), '--', 'sh', '-c', 'echo "fd=$ONTAP_FD0"'], 65534);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /fd=\d+/);
    assert.equal(activator!.log.match(/Execing/g)?.length, 1, 'still the first ontapd');
    await eventually('the macvtap released', () => linksOfKind(host, 'macvtap').length === 0);
  });

  test('SIGTERM: STOPPING=1, exit 0, and the socket (systemd\'s, not ontapd\'s) is left in place', async () => {
    const status = await activator!.kill('SIGTERM');
    assert.equal(status, 0, activator!.log);
    await eventually('STOPPING=1 on NOTIFY_SOCKET', () => notices().includes('STOPPING=1'));
    assert.ok(existsSync(join(dir, 'port.up0')), 'the socket file stays: RemoveOnStop= in the .socket unit removes it');
  });
});

describeWhen('ontapd@.service: CapabilityBoundingSet is enough, and each capability in it is needed', hostReason, () => {
  const nets = new TestNamespaces();
  let host = '';
  let client = '';
  let dir = '';
  const unitCaps = boundingSetForSetpriv(readUnit('ontapd@.service', INSTANCE));
  let dnsmasq: DnsmasqServer | undefined;

  before(async () => {
    sweepStaleNamespaces();
    const uplink = nets.uplink();
    host = uplink.host;
    client = nets.add('client');
    dir = mkdtempSync(join(tmpdir(), 'ontap-caps-'));
    chmodSync(dir, 0o755);
    // For ontap --dhcp: a real server on the uplink's wire.
    dnsmasq = await startDnsmasq({ netns: uplink.wire, ifname: 'peer0', address: '10.78.0.1/24', range: ['10.78.0.100', '10.78.0.200'], leaseSeconds: 600, extraArgs: ['--no-ping'] });
  });
  after(async () => {
    await dnsmasq?.stop();
    nets.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A macvtap whose /dev/tapN name is taken (see tap-clash.ts): ifindex in range proves the clash. */
  function clashingTap(): { status: number | null; out: string; clashed: boolean } {
    const clash = occupyTapNames(nets, host, 'macvtap');
    try {
      const run = ontap(client, ['-t', 'macvtap', join(dir, 'port.up0'), '--', 'sh', '-c', 'echo "ifindex=$ONTAP_IFINDEX"']);
      const ifindex = Number(/ifindex=(\d+)/.exec(run.out)?.[1] ?? '0');
      return { ...run, clashed: ifindex >= clash.first && ifindex <= clash.last };
    } finally {
      clash.remove();
    }
  }

  /** The uid-65534 macvtap of the last serveWith: its ifindex, and whether its /dev/tapN was someone else's. */
  let tapIfindex = 0;
  let foreignTapNode = false;
  /** What ontapd logged when it did not start. */
  let startLog = '';

  /** ontapd limited to `caps` (setpriv syntax): which requests succeed, and whether their devices went. */
  async function serveWith(caps: string): Promise<Record<string, boolean>> {
    rmSync(join(dir, 'port.up0'), { force: true });
    const daemon = new Background(['ip', 'netns', 'exec', host, 'setpriv', `--bounding-set=-all,${caps}`, '--inh-caps=-all',
      installed().bin('ontapd'), '--socket-dir', dir, '--mode', '0666', '--verbosity=debug', '--family', 'macvlan', 'up0'], join(dir, `ontapd-${caps}.log`));
    const leftovers = () => [...linksOfKind(client, 'macvlan'), ...linksOfKind(host, 'macvtap')];
    const result: Record<string, boolean> = {};
    try {
      try {
        await daemon.waitFor(/event=serving uplink=up0/, 'ontapd serving');
        result['ontapd starts'] = true;
      } catch (e) {
        if (!daemon.exited) throw e;
        // It said why and exited: nothing to ask it.
        result['ontapd starts'] = false;
        startLog = daemon.log;
        return result;
      }
      const socket = join(dir, 'port.up0');
      const ok = (r: { status: number | null; out: string }) => r.status === 0;
      const tap = clashingTap();
      assert.ok(tap.status !== 0 || tap.clashed, `the tap's /dev/tapN name really was taken: ${tap.out}`);
      result['unnamed macvlan, root caller'] = ok(ontap(client, ['-t', 'macvlan', socket, '--', 'true']));
      result['named macvlan, root caller'] = ok(ontap(client, ['-t', 'macvlan', '-n', 'capa', socket, '--', 'true']));
      result['macvlan with --dhcp, root caller'] = ok(ontap(client, ['-t', 'macvlan', '--dhcp', socket, '--', 'sh', '-c', 'test -n "$ONTAP_IPV4"']));
      result['macvlan, caller uid 65534'] = ok(ontap(client, ['-t', 'macvlan', socket, '--', 'true'], 65534));
      const unprivilegedTap = ontap(client, ['-t', 'macvtap', socket, '--', 'sh', '-c', 'echo "ifindex=$ONTAP_IFINDEX"'], 65534);
      result['macvtap, caller uid 65534'] = ok(unprivilegedTap);
      // Its ifindex: from COMMAND, or from the private node ontapd failed to make for it.
      tapIfindex = Number((/ifindex=(\d+)/.exec(unprivilegedTap.out) ?? /\/dev\/tap(\d+) is not /.exec(unprivilegedTap.out))?.[1] ?? '0');
      result['macvtap whose /dev/tapN is taken'] = tap.status === 0;
    } finally {
      await daemon.kill('SIGTERM');
    }
    // Released as each COMMAND exited, or at the latest when ontapd stopped.
    result['every device deleted'] = leftovers().length === 0;
    // /dev is every namespace's: a /dev/tapN still there now that our taps are gone is another
    // namespace's tap with our tap's ifindex, and then ontapd needed a private node for it too.
    foreignTapNode = tapIfindex > 0 && existsSync(`/dev/tap${tapIfindex}`);
    for (const l of linksOfKind(client, 'macvlan')) ip('-n', client, 'link', 'del', l.ifname);
    for (const l of linksOfKind(host, 'macvtap')) ip('-n', host, 'link', 'del', l.ifname);
    return result;
  }

  test(`with ${unitCaps} every request succeeds`, async () => {
    const result = await serveWith(unitCaps);
    assert.deepEqual(Object.entries(result).filter(([, ok]) => !ok).map(([what]) => what), []);
  });

  // What breaks without each one (the comments in ontapd@.service say why).
  const expectedFailures: Record<string, string[]> = {
    '+net_admin': ['unnamed macvlan, root caller', 'named macvlan, root caller', 'macvlan with --dhcp, root caller', 'macvlan, caller uid 65534', 'macvtap, caller uid 65534', 'macvtap whose /dev/tapN is taken'],
    // Release of a device in a caller's namespace runs on a socket opened inside it (setns).
    // The DHCP client's socket is made inside the caller's namespace (setns) too.
    '+sys_admin': ['named macvlan, root caller', 'macvlan with --dhcp, root caller', 'every device deleted'],
    '+mknod': ['macvtap whose /dev/tapN is taken'],
    // The link watch hears every namespace (NETLINK_LISTEN_ALL_NSID): ontapd says so and exits.
    '+net_broadcast': ['ontapd starts'],
    // The DHCP client's socket is bound to port 68 in the caller's namespace.
    '+net_bind_service': ['macvlan with --dhcp, root caller'],
  };
  test('the unit names exactly the capabilities these tests need', () => {
    assert.deepEqual(unitCaps.split(',').sort(), Object.keys(expectedFailures).sort());
  });
  for (const [cap, failures] of Object.entries(expectedFailures)) {
    test(`without CAP_${cap.slice(1).toUpperCase()} these fail: ${failures.join('; ')}`, async () => {
      const without = unitCaps.split(',').filter((c) => c !== cap).join(',');
      const result = await serveWith(without);
      // Without mknod, a tap whose /dev/tapN another namespace's tap holds cannot be opened either.
      const expected = cap === '+mknod' && foreignTapNode ? ['macvtap, caller uid 65534', ...failures] : failures;
      assert.deepEqual(Object.entries(result).filter(([, ok]) => !ok).map(([what]) => what), expected);
      if (cap === '+net_broadcast') assert.match(startLog, /event=link-watch-failed .*CAP_NET_BROADCAST/);
    });
  }
});
