/**
 * Which dumped links a restarted ontapd takes for its own: IFLA_LINK alone is an ifindex in some
 * namespace, so the parent's namespace (IFLA_LINK_NETNSID, in our socket's frame) decides.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { onUplink } from '../../src/ontapd/releaser.js';
import type { Link } from '../../src/netns/types.js';

const SELF = 7;
const UPLINKS = new Set([3]);

function link(parentIfindex: number | undefined, linkNetnsid: number | undefined): Link {
  return {
    nsid: undefined, ifindex: 10, ifname: 'ot0', flags: 0, mtu: 1500, address: undefined, alias: undefined, group: undefined,
    parentIfindex, linkNetnsid, kind: 'macvlan', data: undefined, numTxQueues: 1, numRxQueues: 1, addrGenMode: undefined,
  };
}

test('in our namespace: ours only when the parent is beside it (no IFLA_LINK_NETNSID)', () => {
  const self = (): number => assert.fail('no self-id needed');
  assert.equal(onUplink(link(3, undefined), undefined, UPLINKS, self), true);
  assert.equal(onUplink(link(3, 2), undefined, UPLINKS, self), false, 'parent at ifindex 3 of another namespace');
  assert.equal(onUplink(link(4, undefined), undefined, UPLINKS, self), false);
  assert.equal(onUplink(link(undefined, undefined), undefined, UPLINKS, self), false);
});

test('in another namespace: ours only when the parent is in ours (our self-id)', () => {
  let asked = 0;
  const self = (): number => (asked++, SELF);
  assert.equal(onUplink(link(3, SELF), 5, UPLINKS, self), true);
  assert.equal(onUplink(link(3, 2), 5, UPLINKS, self), false, 'another ontapd\'s uplink at the same ifindex');
  assert.equal(onUplink(link(3, undefined), 5, UPLINKS, self), false, 'a parent in that namespace itself');
  assert.equal(onUplink(link(3, -1), 5, UPLINKS, self), false, 'NETNSA_NSID_NOT_ASSIGNED');
  assert.equal(onUplink(link(3, SELF), 5, UPLINKS, () => undefined), false, 'no self-id yet: nothing is ours');
  assert.equal(onUplink(link(4, SELF), 5, UPLINKS, () => assert.fail('not asked for a foreign ifindex')), false);
  assert.ok(asked > 0);
});
