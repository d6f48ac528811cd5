import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeAttrs, decodeMessages, HeaderFlag, parseError } from '../../src/netns/netlink/index.js';
import {
  createLinkSteps,
  decodeLink,
  decodeLinkBrief,
  delGroupRequest,
  delLinkRequest,
  dumpLinksRequest,
  getLinkRequest,
  IFLA,
  linkPolicy,
  newLinkRequest,
  registeredKinds,
  RTM,
  setLinkRequest,
} from '../../src/netns/rtnl/index.js';
import { eventsFromDatagram } from '../../src/netns/route-monitor.js';
import type { IpvlanFlag, IpvlanMode, Link, LinkCreate, MacvlanMode } from '../../src/netns/types.js';
import { compareRequest } from '../fixtures/netlink/compare.js';
import { loadFixture, metaNumber, request, type Fixture } from '../fixtures/netlink/load.js';

const IFINFOMSG = 16;

function up0(f: Fixture): number {
  return metaNumber(f, 'up0');
}

/** The kernel's replies of a fixture as Links (RTM_NEWLINK messages only). */
function replyLinks(f: Fixture): Link[] {
  return f.received.flatMap((d) => decodeMessages(d)).filter((m) => m.header.type === RTM.NEWLINK).map((m) => decodeLink(m.payload, m.offset + 16));
}

describe('RTM_NEWLINK requests match iproute2 byte for byte (except seq and port id)', () => {
  for (const mode of ['bridge', 'private', 'vepa', 'passthru', 'source'] as MacvlanMode[]) {
    test(`macvlan mode ${mode}`, () => {
      const f = loadFixture(`link-new-macvlan-${mode}`);
      compareRequest(newLinkRequest({ ifname: 'm0', parentIfindex: up0(f), data: { kind: 'macvlan', mode } }), request(f), IFINFOMSG, linkPolicy);
    });
  }

  test('macvtap mode bridge', () => {
    const f = loadFixture('link-new-macvtap-bridge');
    compareRequest(newLinkRequest({ ifname: 'm0', parentIfindex: up0(f), data: { kind: 'macvtap', mode: 'bridge' } }), request(f), IFINFOMSG, linkPolicy);
  });

  for (const mode of ['l2', 'l3', 'l3s'] as IpvlanMode[]) {
    for (const flag of ['bridge', 'private', 'vepa'] as IpvlanFlag[]) {
      test(`ipvlan mode ${mode} ${flag} (IFLA_IPVLAN_MODE and _FLAGS are u16)`, () => {
        const f = loadFixture(`link-new-ipvlan-${mode}-${flag}`);
        compareRequest(newLinkRequest({ ifname: 'i0', parentIfindex: up0(f), data: { kind: 'ipvlan', mode, flag } }), request(f), IFINFOMSG, linkPolicy);
      });
    }
  }

  for (const [mode, flag] of [['l2', 'bridge'], ['l3s', 'private'], ['l3', 'vepa']] as Array<[IpvlanMode, IpvlanFlag]>) {
    test(`ipvtap mode ${mode} ${flag}`, () => {
      const f = loadFixture(`link-new-ipvtap-${mode}-${flag}`);
      compareRequest(newLinkRequest({ ifname: 'i0', parentIfindex: up0(f), data: { kind: 'ipvtap', mode, flag } }), request(f), IFINFOMSG, linkPolicy);
    });
  }

  test('veth with VETH_INFO_PEER (an ifinfomsg then IFLA_IFNAME inside)', () => {
    const f = loadFixture('link-new-veth');
    compareRequest(newLinkRequest({ ifname: 'v0', data: { kind: 'veth', peerName: 'v1' } }), request(f), IFINFOMSG, linkPolicy);
  });

  test('numtxqueues/numrxqueues', () => {
    const f = loadFixture('link-new-macvlan-queues');
    compareRequest(newLinkRequest({ ifname: 'm0', parentIfindex: up0(f), numQueues: 4, data: { kind: 'macvlan', mode: 'bridge' } }), request(f), IFINFOMSG, linkPolicy);
  });

  test('alias (no terminator, like iproute2) and group', () => {
    const f = loadFixture('link-new-macvlan-alias-group');
    // The kernel acked this but did not apply the alias: hence createLinkSteps.
    assert.equal(f.meta.aliasAfterCreate, 'null');
    compareRequest(newLinkRequest({ ifname: 'm0', parentIfindex: up0(f), group: 7, alias: 'ontap test', data: { kind: 'macvlan', mode: 'bridge' } }), request(f), IFINFOMSG, linkPolicy);
  });

  test('mtu, queues, group, alias, up and allmulticast together (ifi_flags = ifi_change)', () => {
    const f = loadFixture('link-new-macvlan-options');
    const req: LinkCreate = { ifname: 'm0', parentIfindex: up0(f), mtu: 1400, numQueues: 2, group: 9, alias: 'x', up: true, allmulti: true, data: { kind: 'macvlan', mode: 'private' } };
    compareRequest(newLinkRequest(req), request(f), IFINFOMSG, linkPolicy);
  });

  test('IFLA_NET_NS_FD: created directly in another namespace', () => {
    const f = loadFixture('link-new-macvlan-netns');
    // The fd number is process-local: we encode the number iproute2 happened to use.
    const req: LinkCreate = { ifname: 'm1', parentIfindex: up0(f), netnsFd: metaNumber(f, 'netnsFd'), data: { kind: 'macvlan', mode: 'vepa' } };
    compareRequest(newLinkRequest(req), request(f), IFINFOMSG, linkPolicy);
  });

  test('IFLA_LINK_NETNSID: the parent in another namespace (nsid as seen from the new link\'s namespace)', () => {
    const f = loadFixture('link-new-macvlan-link-netnsid');
    const req: LinkCreate = {
      ifname: 'm2', parentIfindex: up0(f), netnsFd: metaNumber(f, 'netnsFd'), linkNetnsid: metaNumber(f, 'nsidAinB'), data: { kind: 'macvlan', mode: 'bridge' },
    };
    compareRequest(newLinkRequest(req), request(f), IFINFOMSG, linkPolicy);
  });

  test('addrgenmode at creation: the kernel refuses IFLA_AF_SPEC (EAFNOSUPPORT), so createLinkSteps sets it afterwards', () => {
    const f = loadFixture('link-new-macvlan-addrgenmode');
    assert.equal(f.meta.exit, '2');
    const req: LinkCreate = { ifname: 'm0', parentIfindex: up0(f), addrGenMode: 1, data: { kind: 'macvlan', mode: 'bridge' } };
    // newLinkRequest encodes it exactly as iproute2 does...
    compareRequest(newLinkRequest(req), request(f), IFINFOMSG, linkPolicy);
    const steps = createLinkSteps({ ...req, up: true, alias: 'a' });
    assert.deepEqual(steps.after, [{ alias: 'a', addrGenMode: 1 }, { up: true }]);
    assert.equal(steps.create.up, undefined, 'created down so no EUI-64 link-local address appears first');
    // ...and the create createLinkSteps leaves is iproute2's minus IFLA_AF_SPEC,
    compareRequest(newLinkRequest(steps.create), request(f), IFINFOMSG, linkPolicy, {
      onlyTheirs: [{ type: IFLA.AF_SPEC, why: 'refused at creation by this kernel' }],
    });
    // then the follow-up is `ip link set m0 addrgenmode none` (we select by name, iproute2 by index).
    const set = loadFixture('link-set-addrgenmode');
    compareRequest(setLinkRequest({ ifindex: metaNumber(set, 'm0') }, { addrGenMode: 1 }), request(set), IFINFOMSG, linkPolicy, {
      type: { ours: RTM.SETLINK, theirs: RTM.NEWLINK, why: 'iproute2 changes links with RTM_NEWLINK' },
    });
  });

  test('createLinkSteps leaves a request alone when the kernel honours all of it', () => {
    const req: LinkCreate = { ifname: 'm0', up: true, group: 3, numQueues: 2, data: { kind: 'macvtap', mode: 'bridge' } };
    assert.deepEqual(createLinkSteps(req), { create: req, after: [] });
    assert.deepEqual(createLinkSteps({ ...req, alias: 'x' }).after, [{ alias: 'x' }]);
    assert.equal(createLinkSteps({ ...req, alias: 'x' }).create.up, true, 'an alias does not hold the link down');
  });

  test('names the kernel would refuse are refused before sending', () => {
    for (const ifname of ['', 'a-name-longer-than-15', 'a/b', 'a b', 'x:y']) {
      assert.throws(() => newLinkRequest({ ifname, data: { kind: 'macvlan', mode: 'bridge' } }), RangeError, ifname);
    }
    assert.throws(() => newLinkRequest({ ifname: 'x', data: { kind: 'bond' } as never }), TypeError);
  });
});

describe('RTM_SETLINK / RTM_DELLINK / RTM_GETLINK requests', () => {
  const setType = { ours: RTM.SETLINK, theirs: RTM.NEWLINK, why: 'iproute2 changes links with RTM_NEWLINK without NLM_F_CREATE; both reach do_setlink' };
  const cases: Array<[string, Parameters<typeof setLinkRequest>[1]]> = [
    ['link-set-up', { up: true }],
    ['link-set-down', { up: false }],
    ['link-set-allmulti', { allmulti: true }],
    ['link-set-group', { group: 5 }],
    ['link-set-alias', { alias: 'renamed alias' }],
    ['link-set-addrgenmode', { addrGenMode: 1 }],
    ['link-set-name', { ifname: 'm9' }],
    ['link-set-address', { address: '02:6f:74:61:70:01' }],
  ];
  for (const [name, change] of cases) {
    test(name, () => {
      const f = loadFixture(name);
      compareRequest(setLinkRequest({ ifindex: metaNumber(f, 'm0') }, change), request(f), IFINFOMSG, linkPolicy, { type: setType });
    });
  }

  test('selecting by name puts IFLA_IFNAME; renaming needs an ifindex', () => {
    const r = setLinkRequest({ ifname: 'm0' }, { up: true });
    assert.equal(r.body.readInt32LE(4), 0, 'ifi_index');
    const a = decodeAttrs(r.body, linkPolicy, IFINFOMSG);
    assert.equal(a.string(IFLA.IFNAME), 'm0');
    assert.throws(() => setLinkRequest({ ifname: 'm0' }, { ifname: 'm1' }), TypeError);
    assert.throws(() => setLinkRequest({}, { up: true }), TypeError);
  });

  test('RTM_SETLINK is never encoded with a target nsid: the kernel would move the link there', () => {
    // Captured: RTM_SETLINK {IFLA_IFNAME tm0, IFLA_GROUP 9, IFLA_TARGET_NETNSID B} from A was acked
    // and tm0 left A for B.
    const f = loadFixture('link-set-target-nsid-moves');
    assert.equal(parseError(decodeMessages(f.received[0]!)[0]!).errno, 0);
    assert.deepEqual([f.meta.tm0InA, f.meta.tm0InB], ['false', 'true']);
    assert.throws(() => setLinkRequest({ ifindex: 2, targetNsid: 3 }, { group: 9 }), /move the link/);
  });

  test('ip link del m0 (iproute2 resolves the name and sends ifi_index)', () => {
    const f = loadFixture('link-del-name');
    compareRequest(delLinkRequest({ ifindex: metaNumber(f, 'm0') }), request(f), IFINFOMSG, linkPolicy);
  });

  test('ip link del group 7: one RTM_DELLINK with IFLA_GROUP and ifi_index 0', () => {
    const f = loadFixture('link-del-group');
    compareRequest(delGroupRequest(7), request(f), IFINFOMSG, linkPolicy);
  });

  test('ip link show up0', () => {
    const f = loadFixture('link-get-name');
    compareRequest(getLinkRequest({ ifname: 'up0' }), request(f), IFINFOMSG, linkPolicy, {
      attrValues: [{ type: IFLA.EXT_MASK, why: 'iproute2 asks RTEXT_FILTER_VF|SKIP_STATS, we only SKIP_STATS: we never read VF info' }],
    });
  });

  test('ip link show (dump)', () => {
    const f = loadFixture('link-dump');
    compareRequest(dumpLinksRequest(), request(f), IFINFOMSG, linkPolicy, {
      fixed: [{ offset: 0, length: 1, why: 'ifi_family: iproute2 AF_PACKET, we AF_UNSPEC; both reach rtnl_dump_ifinfo' }],
      attrValues: [{ type: IFLA.EXT_MASK, why: 'iproute2 RTEXT_FILTER_VF, we RTEXT_FILTER_SKIP_STATS (no stats: ~3x smaller replies)' }],
    });
  });

  test('ip link show type macvlan (strict dump filter IFLA_LINKINFO/IFLA_INFO_KIND)', () => {
    const f = loadFixture('link-dump-kind');
    compareRequest(dumpLinksRequest({ kind: 'macvlan' }), request(f), IFINFOMSG, linkPolicy, {
      fixed: [{ offset: 0, length: 1, why: 'ifi_family, as above' }],
      attrValues: [{ type: IFLA.EXT_MASK, why: 'as above' }],
    });
  });

  test('target-nsid requests carry IFLA_TARGET_NETNSID as the hand-built fixtures do', () => {
    const f = loadFixture('link-get-target-nsid');
    const nsid = metaNumber(f, 'nsidB');
    compareRequest(getLinkRequest({ ifname: 'm1', targetNsid: nsid }), request(f), IFINFOMSG, linkPolicy, {
      flags: { mask: HeaderFlag.ack, why: 'the fixture asked for an ack to show the kernel sends one after the object' },
      onlyOurs: [{ type: IFLA.EXT_MASK, why: 'the hand-built request has no IFLA_EXT_MASK' }],
      anyOrder: 'the hand-built request puts IFLA_TARGET_NETNSID first',
    });
  });
});

describe('decoding kernel replies into Link', () => {
  test('a link dump with a macvlan (alias, group, mode, parent, queues, addr_gen_mode)', () => {
    const f = loadFixture('link-dump');
    const links = replyLinks(f);
    const m0 = links.find((l) => l.ifname === 'm0');
    assert.ok(m0);
    assert.equal(m0.ifindex, metaNumber(f, 'm0'));
    assert.equal(m0.kind, 'macvlan');
    assert.deepEqual(m0.data, { kind: 'macvlan', mode: 'bridge' });
    assert.equal(m0.alias, 'dumped');
    assert.equal(m0.group, 7);
    assert.equal(m0.parentIfindex, up0(f));
    assert.equal(m0.linkNetnsid, undefined);
    assert.equal(m0.nsid, undefined);
    assert.equal(m0.mtu, 1500);
    assert.match(m0.address ?? '', /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    assert.ok((m0.numTxQueues ?? 0) >= 1 && (m0.numRxQueues ?? 0) >= 1);
    assert.equal(m0.addrGenMode, 0);
    const lo = links.find((l) => l.ifname === 'lo');
    assert.equal(lo?.ifindex, 1);
    assert.equal(lo?.kind, undefined);
    const up = links.find((l) => l.ifname === 'up0');
    assert.deepEqual(up?.data, { kind: 'veth' });
  });

  test('a kind-filtered dump: only macvlans, flagged NLM_F_DUMP_FILTERED', () => {
    const f = loadFixture('link-dump-kind');
    const msgs = f.received.flatMap((d) => decodeMessages(d)).filter((m) => m.header.type === RTM.NEWLINK);
    assert.ok(msgs.length >= 1);
    assert.ok(msgs.every((m) => (m.header.flags & HeaderFlag.dumpFiltered) !== 0));
    assert.ok(replyLinks(f).every((l) => l.kind === 'macvlan'));
  });

  test('a dump with IFLA_TARGET_NETNSID: every reply echoes it, Link.nsid is set from it', () => {
    const f = loadFixture('link-dump-target-nsid');
    const nsid = metaNumber(f, 'nsidB');
    const links = replyLinks(f);
    assert.deepEqual(links.map((l) => l.ifname).sort(), ['lo', 'm1']);
    assert.ok(links.every((l) => l.nsid === nsid));
    const m1 = links.find((l) => l.ifname === 'm1')!;
    assert.deepEqual(m1.data, { kind: 'macvlan', mode: 'vepa' });
    assert.equal(m1.alias, 'in-b');
    assert.equal(m1.group, 3);
    // The parent lives in A: IFLA_LINK is A's ifindex, IFLA_LINK_NETNSID the id the requesting
    // socket's namespace (A itself, where the capture ran) has for A, not B's id for A.
    assert.equal(m1.parentIfindex, up0(f));
    assert.equal(typeof m1.linkNetnsid, 'number');
  });

  test('a get with IFLA_TARGET_NETNSID and NLM_F_ACK: the link, then an ack', () => {
    const f = loadFixture('link-get-target-nsid');
    const [link] = replyLinks(f);
    assert.equal(link?.ifname, 'm1');
    assert.equal(link?.nsid, metaNumber(f, 'nsidB'));
    const last = decodeMessages(f.received[f.received.length - 1]!)[0]!;
    assert.equal(last.header.type, 2);
  });

  test('an event from another namespace takes the nsid of its control message', () => {
    const f = loadFixture('event-newlink-other-ns');
    const nsid = metaNumber(f, 'nsidB');
    const { events, errors } = eventsFromDatagram(f.received[0]!, nsid);
    assert.deepEqual(errors, []);
    assert.equal(events[0]?.type, 'newlink');
    if (events[0]?.type === 'newlink') {
      assert.equal(events[0].nsid, nsid);
      assert.equal(events[0].link.nsid, nsid);
      assert.match(events[0].link.ifname, /^ev[01]$/);
      assert.equal(events[0].link.kind, 'veth');
    }
  });

  test('decodeLinkBrief reads the same identity, address, group, parent and kind as decodeLink', () => {
    const messages = ['link-dump', 'link-dump-target-nsid', 'event-newlink-other-ns'].flatMap((name) =>
      loadFixture(name).received.flatMap((d) => decodeMessages(d)).filter((m) => m.header.type === RTM.NEWLINK));
    assert.ok(messages.length >= 5);
    for (const m of messages) {
      const full = decodeLink(m.payload, m.offset + 16);
      const brief = decodeLinkBrief(m.payload, m.offset + 16);
      const pick = (l: Link) => [l.nsid, l.ifindex, l.ifname, l.flags, l.address, l.group, l.parentIfindex, l.linkNetnsid, l.kind, l.newNetnsid, l.newIfindex];
      assert.deepEqual(pick(brief), pick(full), full.ifname);
      assert.deepEqual([brief.mtu, brief.alias, brief.data, brief.numTxQueues, brief.addrGenMode], [undefined, undefined, undefined, undefined, undefined]);
    }
  });

  test('a move out of the namespace: RTM_DELLINK with IFLA_NEW_NETNSID and IFLA_NEW_IFINDEX, in full and briefly', () => {
    const f = loadFixture('event-dellink-moved');
    const [m] = decodeMessages(f.received[0]!);
    assert.equal(m?.header.type, RTM.DELLINK);
    for (const link of [decodeLink(m!.payload, 16), decodeLinkBrief(m!.payload, 16)]) {
      assert.equal(link.ifname, 'mv0');
      assert.equal(link.newNetnsid, metaNumber(f, 'nsidC'));
      assert.equal(link.newIfindex, metaNumber(f, 'mv0InC'));
      assert.equal(link.parentIfindex, up0(f));
      assert.equal(link.kind, 'macvlan');
    }
    // Other messages carry neither: the fields are absent, not undefined.
    const other = decodeLink(decodeMessages(loadFixture('event-newlink-other-ns').received[0]!)[0]!.payload, 16);
    assert.ok(!('newNetnsid' in other) && !('newIfindex' in other));
  });

  test('decodeLinkBrief refuses what decodeLink refuses: a truncated attribute', () => {
    const m = decodeMessages(loadFixture('event-newlink-other-ns').received[0]!)[0]!;
    const cut = Buffer.from(m.payload.subarray(0, 16 + 6));
    cut.writeUInt16LE(8, 16); // an attribute claiming more bytes than there are
    assert.throws(() => decodeLink(cut), /attribute/);
    assert.throws(() => decodeLinkBrief(cut), /attribute/);
  });

  test('the kind registry covers the five kinds', () => {
    assert.deepEqual(registeredKinds().sort(), ['ipvlan', 'ipvtap', 'macvlan', 'macvtap', 'veth']);
  });
});
