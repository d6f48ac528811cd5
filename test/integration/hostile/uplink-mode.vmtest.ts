/**
 * Issue 11 item 10 on a kernel with ipvlan (the VM guest): ipvlan's mode belongs to the parent,
 * so the first caller's mode used to bind every later one. As uid 65534: asking for l3 on an
 * uplink ontapd serves in l2 is forbidden, and another caller's default request gets l2 bridge;
 * on an uplink the administrator set to l3s private, uid 65534's request without a mode gets
 * exactly that, and asking for l2 is forbidden.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { TestNamespaces, eventually, linksOfKind, sweepStaleNamespaces } from '../../helpers/netns.js';
import { TestDaemon } from '../../helpers/ontapd.js';
import { nobodyHasPython, rawHold, rawRequest } from '../../helpers/raw-caller.js';
import { describeWhen, hasCommand, isRoot, kernelHasKind, missing } from '../../helpers/requirements.js';

const reason = missing([
  [isRoot, 'needs root (network namespaces)'],
  [() => hasCommand('ip') && hasCommand('setpriv'), 'needs iproute2 and setpriv (util-linux)'],
  [nobodyHasPython, 'needs a python3 that uid 65534 can run in /usr/local/bin, /usr/bin or /bin'],
  [() => kernelHasKind('ipvlan'), 'this kernel cannot create ipvlan devices (run it in the VM: npm run vm -- FILE)'],
]);

/** The one ipvlan in ns as the kernel reports it (ip -d -j: `mode`, and `bridge`, `private` or `vepa` true). */
function ipvlanData(ns: string): Record<string, unknown> {
  const devices = linksOfKind(ns, 'ipvlan');
  assert.equal(devices.length, 1, JSON.stringify(devices));
  return devices[0]!.linkinfo?.info_data ?? {};
}

describeWhen('hostile (VM): uid 65534 cannot set the ipvlan mode of an uplink for everyone', reason, () => {
  const nets = new TestNamespaces();
  let host = '';
  let wire = '';
  let attacker = '';
  let other = '';
  const daemons: TestDaemon[] = [];
  const holders: ChildProcess[] = [];

  before(() => {
    sweepStaleNamespaces();
    ({ host, wire } = nets.uplink());
    attacker = nets.add('attacker');
    other = nets.add('other');
  });

  after(async () => {
    for (const h of holders) h.kill('SIGKILL');
    for (const d of daemons) {
      await d.stop();
      d.removeDir();
    }
    nets.destroy();
  });

  test('l3 is forbidden on an l2 uplink and the next caller gets l2 bridge; an l3s private uplink gives exactly that', async () => {
    const plain = new TestDaemon(host, ['up0'], ['--mode', '0666']);
    daemons.push(plain);
    await plain.start();
    const attack = await rawHold(attacker, plain.socket(), { v: 1, op: 'allocate', type: 'ipvlan', mode: 'l3' });
    holders.push(attack.child);
    assert.equal(attack.reply.error?.code, 'forbidden', JSON.stringify(attack.reply));
    assert.equal(attack.reply.error?.field, 'mode');
    // Another caller (root here, with no mode named) gets the uplink's default.
    const next = await rawHold(other, plain.socket(), { v: 1, op: 'allocate', type: 'ipvlan' }, 'root');
    holders.push(next.child);
    assert.equal(next.reply.ok, true, JSON.stringify(next.reply));
    assert.deepEqual([next.reply.device?.mode, next.reply.device?.flag], ['l2', 'bridge']);
    const l2Data = ipvlanData(other);
    assert.ok(l2Data.mode === 'l2' && l2Data.bridge === true, JSON.stringify(l2Data));
    next.child.kill('SIGKILL');
    await eventually('the l2 lease released', () => linksOfKind(other, 'ipvlan').length === 0);

    nets.veth(host, 'up1', wire, 'peer1');
    const l3s = new TestDaemon(host, ['up1'], ['--mode', '0666', '--ipvlan-mode', 'l3s', '--ipvlan-flag', 'private']);
    daemons.push(l3s);
    await l3s.start();
    const mine = await rawHold(attacker, l3s.socket(), { v: 1, op: 'allocate', type: 'ipvlan' });
    holders.push(mine.child);
    assert.equal(mine.reply.ok, true, JSON.stringify(mine.reply));
    assert.deepEqual([mine.reply.device?.mode, mine.reply.device?.flag], ['l3s', 'private']);
    const l3sData = ipvlanData(attacker);
    assert.ok(l3sData.mode === 'l3s' && l3sData.private === true, JSON.stringify(l3sData));
    const l2 = rawRequest(other, l3s.socket(), { v: 1, op: 'allocate', type: 'ipvlan', mode: 'l2' });
    assert.equal(l2.error?.code, 'forbidden', JSON.stringify(l2));
    assert.equal(l2.error?.field, 'mode');
    mine.child.kill('SIGKILL');
    await eventually('the l3s lease released', () => linksOfKind(attacker, 'ipvlan').length === 0);
  });
});
