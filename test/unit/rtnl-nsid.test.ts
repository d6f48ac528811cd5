import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeMessages, Policy } from '../../src/netns/netlink/index.js';
import { decodeNsid, dumpNsidsRequest, getNsidRequest, newNsidRequest, nsidPolicy, RTGENMSG_LEN, RTM } from '../../src/netns/rtnl/index.js';
import { eventsFromDatagram } from '../../src/netns/route-monitor.js';
import { compareRequest } from '../fixtures/netlink/compare.js';
import { loadFixture, metaNumber, request } from '../fixtures/netlink/load.js';

function replies(name: string) {
  return loadFixture(name).received.flatMap((d) => decodeMessages(d)).filter((m) => m.header.type === RTM.NEWNSID).map((m) => decodeNsid(m.payload));
}

describe('RTM_*NSID requests match iproute2 byte for byte', () => {
  // NETNSA_FD values are process-local fd numbers: we encode the one iproute2 used.
  test('ip netns set NAME auto: RTM_NEWNSID with NETNSA_FD and NETNSA_NSID -1', () => {
    const f = loadFixture('nsid-new-auto');
    compareRequest(newNsidRequest(metaNumber(f, 'netnsFd')), request(f), RTGENMSG_LEN, nsidPolicy);
  });
  test('ip netns set NAME 7', () => {
    const f = loadFixture('nsid-new-7');
    compareRequest(newNsidRequest(metaNumber(f, 'netnsFd'), 7), request(f), RTGENMSG_LEN, nsidPolicy);
  });
  test('RTM_GETNSID with NETNSA_FD (as ip netns list asks)', () => {
    for (const name of ['nsid-get-assigned', 'nsid-get-unassigned']) {
      const f = loadFixture(name);
      compareRequest(getNsidRequest(metaNumber(f, 'netnsFd')), request(f), RTGENMSG_LEN, nsidPolicy);
    }
  });
  test('ip netns list-id: RTM_GETNSID dump', () => {
    compareRequest(dumpNsidsRequest(), request(loadFixture('nsid-dump')), RTGENMSG_LEN, nsidPolicy);
  });
  test('ip netns list-id target-nsid 7: NETNSA_TARGET_NSID', () => {
    compareRequest(dumpNsidsRequest(7), request(loadFixture('nsid-dump-target')), RTGENMSG_LEN, nsidPolicy);
  });
  test('bad fds are refused before sending', () => {
    assert.throws(() => getNsidRequest(-1), RangeError);
    assert.throws(() => newNsidRequest(1.5), RangeError);
  });
});

describe('decoding RTM_NEWNSID replies', () => {
  test('an assigned nsid, and NETNSA_NSID_NOT_ASSIGNED as undefined', () => {
    assert.deepEqual(replies('nsid-get-assigned'), [{ nsid: 7, currentNsid: undefined, targetNsid: undefined }]);
    assert.deepEqual(replies('nsid-get-unassigned'), [{ nsid: undefined, currentNsid: undefined, targetNsid: undefined }]);
  });
  test('a dump lists every nsid we assigned', () => {
    const f = loadFixture('nsid-dump');
    const ids = replies('nsid-dump').map((r) => r.nsid).sort();
    assert.deepEqual(ids, [metaNumber(f, 'nsidB'), metaNumber(f, 'nsidC')].sort());
  });
  test('a target dump: nsids as the target sees them, NETNSA_CURRENT_NSID as we see the same namespace', () => {
    const f = loadFixture('nsid-dump-target');
    const r = replies('nsid-dump-target').sort((a, b) => (a.nsid ?? 0) - (b.nsid ?? 0));
    // In C, A is 3 and B is 4; from A, A itself has no nsid and B has nsidB.
    assert.deepEqual(r.map((x) => [x.nsid, x.currentNsid]), [[3, undefined], [4, metaNumber(f, 'nsidB')]]);
  });
  test('RTM_NEWNSID as an event', () => {
    const f = loadFixture('nsid-get-assigned');
    const { events } = eventsFromDatagram(f.received[0]!, 5);
    assert.deepEqual(events, [{ type: 'newnsid', nsid: 5, nsidValue: 7 }]);
  });
  test('the policy is the one the encoder checked against', () => {
    assert.ok(nsidPolicy instanceof Policy);
    assert.equal(nsidPolicy.typeOf('NETNSA_FD'), 3);
  });
});
