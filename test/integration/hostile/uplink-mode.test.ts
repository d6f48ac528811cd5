/**
 * Issue 11 item 10: the uplink's family, and ipvlan's mode and flag (the kernel keeps them on the
 * parent), are the administrator's. As uid 65534 against ontapds with the default settings and
 * with others: a request for another family, mode or flag is forbidden, naming the field, so the
 * first caller can no longer choose them for everyone; root still may.
 *
 * This kernel has no ipvlan: the ipvlan requests here are refused before the kernel is asked, and
 * that they are is what is checked (an ipvlan request that passes the policy ends in
 * `unavailable`). hostile/uplink-mode.vmtest.ts shows the devices and the binding on a kernel
 * with ipvlan.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { TestNamespaces, eventually, linksOfKind, sweepStaleNamespaces } from '../../helpers/netns.js';
import { TestDaemon } from '../../helpers/ontapd.js';
import { nobodyHasPython, rawRequest, type RawReply } from '../../helpers/raw-caller.js';
import { describeWhen, hasCommand, isRoot, kernelHasKind, missing } from '../../helpers/requirements.js';

const reason = missing([
  [isRoot, 'needs root (network namespaces)'],
  [() => hasCommand('ip') && hasCommand('setpriv'), 'needs iproute2 and setpriv (util-linux)'],
  [nobodyHasPython, 'needs a python3 that uid 65534 can run in /usr/local/bin, /usr/bin or /bin'],
  [() => kernelHasKind('macvlan'), 'this kernel cannot create macvlan devices'],
]);

function forbidden(reply: RawReply, field: string, message: RegExp): void {
  assert.equal(reply.error?.code, 'forbidden', JSON.stringify(reply));
  assert.equal(reply.error?.field, field, JSON.stringify(reply));
  assert.match(reply.error!.message, message);
}

/** Passed the policy: granted, or (no ipvlan in this kernel) refused by the kernel, not by ontapd. */
function notForbidden(reply: RawReply): void {
  assert.ok(reply.ok || reply.error?.code === 'unavailable', JSON.stringify(reply));
}

describeWhen('hostile: the uplink\'s family and ipvlan mode are the administrator\'s', reason, () => {
  const nets = new TestNamespaces();
  let host = '';
  let wire = '';
  let work = '';
  const daemons: TestDaemon[] = [];

  async function daemon(uplink: string, args: string[]): Promise<TestDaemon> {
    nets.veth(host, uplink, wire, `p-${uplink}`);
    const d = new TestDaemon(host, [uplink], ['--mode', '0666', ...args]);
    daemons.push(d);
    await d.start();
    return d;
  }

  before(() => {
    sweepStaleNamespaces();
    ({ host, wire } = nets.uplink());
    work = nets.add('work');
  });

  after(async () => {
    for (const d of daemons) {
      await d.stop();
      d.removeDir();
    }
    nets.destroy();
  });

  test('uid 65534 cannot choose the family, mode or flag; it gets the administrator\'s; root may ask for others', async () => {
    // Defaults: the family is ipvlan, mode l2, flag bridge, as a request without them always got.
    const plain = (await daemon('dflt0', [])).socket();
    forbidden(rawRequest(work, plain, { v: 1, op: 'allocate', type: 'macvtap' }), 'type', /serves ipvlan .*--family/);
    forbidden(rawRequest(work, plain, { v: 1, op: 'allocate', type: 'macvlan' }), 'type', /serves ipvlan .*--family/);
    forbidden(rawRequest(work, plain, { v: 1, op: 'allocate', type: 'ipvlan', mode: 'l3' }), 'mode', /mode l2 .*--ipvlan-mode/);
    forbidden(rawRequest(work, plain, { v: 1, op: 'allocate', type: 'ipvtap', flag: 'private' }), 'flag', /flag bridge .*--ipvlan-flag/);
    notForbidden(rawRequest(work, plain, { v: 1, op: 'allocate', type: 'ipvlan', mode: 'l2', flag: 'bridge' }));
    notForbidden(rawRequest(work, plain, { v: 1, op: 'allocate', type: 'ipvtap' }));
    // Root may: it is the administrator.
    const rootTap = rawRequest(work, plain, { v: 1, op: 'allocate', type: 'macvtap' }, 'root');
    assert.equal(rootTap.ok, true, JSON.stringify(rootTap));

    // Another family and other ipvlan settings, set by the administrator.
    const macvlan = (await daemon('mac0', ['--family', 'macvlan'])).socket();
    const granted = rawRequest(work, macvlan, { v: 1, op: 'allocate', type: 'macvlan', mode: 'private' });
    assert.equal(granted.ok, true, JSON.stringify(granted));
    assert.equal(granted.device?.mode, 'private', 'a macvlan\'s mode is its own: the caller chooses it');
    forbidden(rawRequest(work, macvlan, { v: 1, op: 'allocate', type: 'ipvtap' }), 'type', /serves macvlan .*--family/);
    const ipvlanL3 = (await daemon('l3s0', ['--ipvlan-mode', 'l3s', '--ipvlan-flag', 'vepa'])).socket();
    forbidden(rawRequest(work, ipvlanL3, { v: 1, op: 'allocate', type: 'ipvlan', mode: 'l2' }), 'mode', /mode l3s/);
    forbidden(rawRequest(work, ipvlanL3, { v: 1, op: 'allocate', type: 'ipvlan', flag: 'bridge' }), 'flag', /flag vepa/);
    notForbidden(rawRequest(work, ipvlanL3, { v: 1, op: 'allocate', type: 'ipvlan', mode: 'l3s', flag: 'vepa' }));
    await eventually('every lease ended with its caller', () => linksOfKind(work, 'macvlan').length + linksOfKind(host, 'macvtap').length === 0);
  });
});
