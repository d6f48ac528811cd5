/**
 * bin/runvm (execline) and bin/runvm.sh (POSIX sh):
 *  - both build the same qemu NIC arguments from what ontap hands them (one queue: fd=; N queues:
 *    fds=FD0:..., mq=on, vectors=2N+2; -v: vhost=on), pass QEMU-ARGs through untouched, and
 *    refuse bad usage with status 64 (a stand-in ontap that only sets the environment);
 *  - with the real ontap and ontapd, each boots a tiny guest under TCG whose NIC is the handed-out
 *    macvtap (this kernel has no ipvtap): its DHCP discover arrives on the uplink's peer from the
 *    MAC ontapd gave, a multi-queue NIC has its queues in the guest, and the device is deleted
 *    once qemu exits.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestNamespaces, eventually, linksOfKind, sweepStaleNamespaces } from '../helpers/netns.js';
import { ONTAP, ROOT, TestDaemon } from '../helpers/ontapd.js';
import { Background } from '../helpers/background.js';
import { describeWhen, hasCommand, isRoot, kernelHasKind, missing } from '../helpers/requirements.js';
import { requireOrSkip } from '../helpers/skip.js';
import { GUEST_MARK, buildTinyGuest, tinyGuestMissing, type TinyGuest } from '../helpers/tiny-guest.js';

const RUNVM = join(ROOT, 'bin/runvm');
const RUNVM_SH = join(ROOT, 'bin/runvm.sh');
const hasExecline = hasCommand('execlineb');

/** The implementations this machine can run: sh always, execline when installed (CI: required). */
const scripts: Array<[string, string, string | undefined]> = [
  ['runvm.sh (POSIX sh)', RUNVM_SH, undefined],
  ['runvm (execline)', RUNVM, hasExecline ? undefined : 'needs execline (apt-get install execline)'],
];

describe('runvm builds qemu\'s NIC arguments from ontap\'s environment', () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'ontap-runvm-args-'));
    // A stand-in for ontap: checks nothing, sets the environment ontap(1) documents, execs COMMAND.
    writeFileSync(join(dir, 'ontap'), `#!/bin/sh
printf '%s\\n' "ontap $*" >"${dir}/ontap.args"
while [ "$1" != -- ]; do case $1 in -m) q=$2 ;; esac; shift; done; shift
export ONTAP_TYPE=ipvtap ONTAP_HWADDR=02:00:00:00:00:01 ONTAP_QUEUES=$q ONTAP_VNET_HDR=1 ONTAP_LEASE_FD=9
i=0; while [ $i -lt $q ]; do export ONTAP_FD$i=$((20 + i)); i=$((i + 1)); done
exec "$@"
`, { mode: 0o755 });
    writeFileSync(join(dir, 'qemu'), '#!/bin/sh\nfor a in "$@"; do printf "[%s]" "$a"; done; echo\n', { mode: 0o755 });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  function run(script: string, args: string[]): { status: number | null; stdout: string; stderr: string; ontap: string } {
    rmSync(join(dir, 'ontap.args'), { force: true });
    const r = spawnSync(script, args, { encoding: 'utf8', env: { ...process.env, PATH: `${dir}:${process.env.PATH}`, QEMU: join(dir, 'qemu'), ONTAP_SOCKET_DIR: '/srv/ontap' } });
    let ontap = '';
    try {
      ontap = readFileSync(join(dir, 'ontap.args'), 'utf8').trim();
    } catch {
      // ontap was not reached
    }
    return { status: r.status, stdout: r.stdout.trim(), stderr: r.stderr, ontap };
  }

  const odd = ['-m', '512', '-append', 'console=ttyS0 quiet', '${fd0}', '$@', '{', '', '}', '--'];
  const cases: Array<[string, string[], string, string]> = [
    ['one queue (the default): fd= and the MAC, QEMU-ARGs untouched', ['up0', ...odd],
      'ontap -t ipvtap -m 1 /srv/ontap/port.up0 --',
      '[-netdev][tap,id=n0,fd=20][-device][virtio-net-pci,netdev=n0,mac=02:00:00:00:00:01]' + odd.map((a) => `[${a}]`).join('')],
    ['three queues: fds=, mq=on, vectors=8', ['-m', '3', 'up0'],
      'ontap -t ipvtap -m 3 /srv/ontap/port.up0 --',
      '[-netdev][tap,id=n0,fds=20:21:22][-device][virtio-net-pci,netdev=n0,mac=02:00:00:00:00:01,mq=on,vectors=8]'],
    ['sixteen queues', ['-m', '16', 'up0'],
      'ontap -t ipvtap -m 16 /srv/ontap/port.up0 --',
      `[-netdev][tap,id=n0,fds=${Array.from({ length: 16 }, (_, i) => 20 + i).join(':')}][-device][virtio-net-pci,netdev=n0,mac=02:00:00:00:00:01,mq=on,vectors=34]`],
    ['macvtap, a name, vhost', ['-t', 'macvtap', '-n', 'vm1', '-v', '-m', '2', 'eth1', '-nographic'],
      'ontap -t macvtap -m 2 --name=vm1 /srv/ontap/port.eth1 --',
      '[-netdev][tap,id=n0,fds=20:21,vhost=on][-device][virtio-net-pci,netdev=n0,mac=02:00:00:00:00:01,mq=on,vectors=6][-nographic]'],
  ];

  for (const [label, script, skip] of scripts) {
    describeWhen(label, skip, () => {
      for (const [what, args, ontap, qemu] of cases) {
        test(what, () => {
          const r = run(script, args);
          assert.equal(r.status, 0, r.stderr);
          assert.ok(r.ontap.startsWith(ontap), `ontap called as: ${r.ontap}`);
          assert.equal(r.stdout, qemu);
        });
      }
      test('bad usage: status 64 and a message, ontap never called', () => {
        for (const args of [[], ['-t', 'ipvlan', 'up0'], ['-x', 'up0']]) {
          const r = run(script, args);
          assert.equal(r.status, 64, `${args.join(' ')}: ${r.stderr}`);
          assert.match(r.stderr, /runvm|Usage/);
          assert.equal(r.ontap, '', 'ontap not reached');
        }
        const help = run(script, ['-h']);
        assert.equal(help.status, 0);
        assert.match(help.stdout, /^Usage: runvm/);
      });
    });
  }
});

describeWhen('runvm boots a guest on a tap device from the real ontapd', missing([
  [isRoot, 'needs root (network namespaces)'],
  [() => hasCommand('ip') && hasCommand('tcpdump'), 'needs iproute2 and tcpdump'],
  [() => tinyGuestMissing() === undefined, tinyGuestMissing() ?? ''],
  [() => kernelHasKind('macvtap'), 'this kernel cannot create macvtap devices'],
]), () => {
  const nets = new TestNamespaces();
  let host = '';
  let wire = '';
  let daemon: TestDaemon;
  let dir = '';
  let guest: TinyGuest;
  const running: Background[] = [];

  before(async () => {
    sweepStaleNamespaces();
    ({ host, wire } = nets.uplink());
    daemon = new TestDaemon(host, ['up0']);
    await daemon.start();
    dir = mkdtempSync(join(tmpdir(), 'ontap-runvm-'));
    chmodSync(dir, 0o755);
    guest = buildTinyGuest(dir);
    // runvm calls "ontap" from PATH and $QEMU: the real ones, qemu's arguments noted on the way.
    writeFileSync(join(dir, 'ontap'), `#!/bin/sh\nexec ${process.execPath} ${ONTAP} "$@"\n`, { mode: 0o755 });
    writeFileSync(join(dir, 'qemu'), `#!/bin/sh\nprintf '%s\\n' "$*" >"${dir}/qemu.args"\nexec ${guest.qemu} "$@"\n`, { mode: 0o755 });
  });

  after(async () => {
    for (const p of running) await p.kill('SIGKILL');
    await daemon?.stop();
    daemon?.removeDir();
    nets.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  const boots: Array<[string, string, string | undefined, number]> = [
    ['runvm.sh, one queue', RUNVM_SH, undefined, 1],
    ['runvm (execline), two queues', RUNVM, hasExecline ? undefined : 'needs execline (apt-get install execline)', 2],
  ];
  for (const [what, script, skip, queues] of boots) {
    test(`${what}: the guest's DHCP discover reaches the uplink's peer from ontapd's MAC; the tap goes with qemu`, async (t) => {
      if (!requireOrSkip(t, skip === undefined, skip ?? '')) return;
      const started = Date.now();
      const capture = new Background(['ip', 'netns', 'exec', wire, 'tcpdump', '-i', 'peer0', '-n', '-e', '-l', '-c', '1', 'udp', 'dst', 'port', '67'], join(dir, `tcpdump-${queues}.log`));
      running.push(capture);
      await capture.waitFor(/listening on peer0/, 'tcpdump listening');

      const vm = new Background(['ip', 'netns', 'exec', host, script, '-t', 'macvtap', '-m', String(queues), 'up0', ...guest.args(queues)],
        join(dir, `runvm-${queues}.log`), { ...process.env, PATH: `${dir}:${process.env.PATH}`, QEMU: join(dir, 'qemu'), ONTAP_SOCKET_DIR: daemon.dir });
      running.push(vm);
      const nic = await vm.waitFor(new RegExp(`${GUEST_MARK} mac=(\\S+) mq=(\\d) rx-queues=(\\d+)`), 'the guest\'s NIC', 90000);
      const taps = linksOfKind(host, 'macvtap');
      assert.equal(taps.length, 1, 'one macvtap on the host while qemu runs');
      const hwaddr = taps[0]!.address;
      assert.equal(nic[1], hwaddr, 'the guest\'s NIC has the tap\'s MAC (mac=$ONTAP_HWADDR)');
      assert.equal(nic[2], queues > 1 ? '1' : '0', 'VIRTIO_NET_F_MQ offered exactly when several queues');
      assert.equal(Number(nic[3]), queues, 'the guest uses every queue');

      const discover = await capture.waitFor(/^\S+ ([0-9a-f:]{17}) > ff:ff:ff:ff:ff:ff.*BOOTP\/DHCP, Request/m, 'a DHCP discover on the peer', 60000);
      assert.equal(discover[1], hwaddr, 'sent from the MAC ontapd gave');

      assert.equal(await vm.wait(60000), 0, `qemu powered off cleanly: ${vm.log.slice(-2000)}`);
      assert.match(vm.log, new RegExp(`${GUEST_MARK} done`));
      const qemuArgs = readFileSync(join(dir, 'qemu.args'), 'utf8');
      assert.match(qemuArgs, queues === 1 ? /-netdev tap,id=n0,fd=\d+ / : /-netdev tap,id=n0,fds=\d+:\d+ /);
      await eventually('the tap deleted after qemu exited', () => linksOfKind(host, 'macvtap').length === 0);
      t.diagnostic(`${((Date.now() - started) / 1000).toFixed(1)} s from runvm to the tap's deletion; guest: ${nic[0]}`);
    });
  }
});
