import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeAttrs, decodeMessages, HeaderFlag, netlinkErrorFrom, parseError } from '../../src/netns/netlink/index.js';
import {
  decodeRoute,
  decodeRtMsg,
  delRouteRequest,
  dumpRoutesRequest,
  encodeRtMsg,
  isDefaultRoute,
  newRouteRequest,
  RTA,
  RTM,
  RTMSG_LEN,
  routePolicy,
} from '../../src/netns/rtnl/index.js';
import { RouteProtocol, RouteScope, RouteTable, RouteType, type Route } from '../../src/netns/types.js';
import { compareRequest } from '../fixtures/netlink/compare.js';
import { loadFixture, metaNumber, request, type Fixture } from '../fixtures/netlink/load.js';

function replyRoutes(f: Fixture): Route[] {
  return f.received
    .flatMap((d) => decodeMessages(d))
    .filter((m) => m.header.type === RTM.NEWROUTE)
    .map((m) => decodeRoute(m.payload, m.offset + 16))
    .filter((r): r is Route => r !== undefined);
}

function replyError(f: Fixture) {
  const [m] = decodeMessages(f.received[0]!);
  return netlinkErrorFrom('test', m!.header.seq, parseError(m!));
}

describe('rtmsg', () => {
  test('round trip, and a short payload is a decode error', () => {
    const h = { family: 2, dstLen: 24, srcLen: 0, tos: 0, table: 254, protocol: 16, scope: 253, type: 1, flags: 0x1000 };
    assert.deepEqual(decodeRtMsg(encodeRtMsg(h)), h);
    assert.equal(encodeRtMsg().length, RTMSG_LEN);
    assert.throws(() => decodeRtMsg(Buffer.alloc(11)), /rtmsg needs 12 bytes/);
  });
});

describe('RTM_*ROUTE requests match iproute2 byte for byte', () => {
  test('ip route add default via 10.1.2.1 dev up1 proto dhcp', () => {
    const f = loadFixture('route-new-default');
    const req = newRouteRequest({ family: 4, gateway: '10.1.2.1', oif: metaNumber(f, 'up1'), protocol: RouteProtocol.dhcp });
    compareRequest(req, request(f), RTMSG_LEN, routePolicy);
    assert.equal(req.flags, HeaderFlag.request | HeaderFlag.ack | HeaderFlag.create | HeaderFlag.excl);
  });
  test('ip route add default via 10.1.2.254 dev up1 proto dhcp', () => {
    const f = loadFixture('route-new-default-exists');
    compareRequest(newRouteRequest({ family: 4, gateway: '10.1.2.254', oif: metaNumber(f, 'up1'), protocol: RouteProtocol.dhcp }), request(f), RTMSG_LEN, routePolicy);
  });
  test('ip route del default via 10.1.2.1 dev up1 proto dhcp (scope nowhere, type unspec)', () => {
    for (const name of ['route-del-default', 'route-del-gone']) {
      const f = loadFixture(name);
      compareRequest(delRouteRequest({ family: 4, gateway: '10.1.2.1', oif: metaNumber(f, 'up1'), protocol: RouteProtocol.dhcp }), request(f), RTMSG_LEN, routePolicy);
    }
  });
  test('ip -4 route show (rtm_family, RTA_TABLE main)', () => {
    compareRequest(dumpRoutesRequest({ family: 4 }), request(loadFixture('route-dump-4')), RTMSG_LEN, routePolicy);
  });
});

describe('route requests beyond the fixtures', () => {
  test('a network route, a metric, a source, a table above 255', () => {
    const req = newRouteRequest({ family: 4, dst: '198.51.100.0', dstLength: 24, gateway: '10.1.2.1', oif: 7, protocol: RouteProtocol.static, priority: 50, prefsrc: '10.1.2.3', table: 1000 });
    const h = decodeRtMsg(req.body);
    assert.deepEqual([h.family, h.dstLen, h.table, h.protocol, h.scope, h.type], [2, 24, 0, 4, RouteScope.universe, RouteType.unicast]);
    const a = decodeAttrs(req.body, routePolicy, RTMSG_LEN);
    assert.deepEqual(a.list.map((x) => x.name), ['RTA_DST', 'RTA_GATEWAY', 'RTA_PRIORITY', 'RTA_PREFSRC', 'RTA_TABLE', 'RTA_OIF']);
    assert.equal(a.number(RTA.TABLE), 1000);
    assert.equal(a.number(RTA.PRIORITY), 50);
    assert.equal(a.raw(RTA.DST)?.toString('hex'), 'c6336400');
  });

  test('without a gateway the route is on the link (scope link), as iproute2 makes it', () => {
    const h = decodeRtMsg(newRouteRequest({ family: 4, dst: '10.9.0.0', dstLength: 16, oif: 3, protocol: RouteProtocol.boot }).body);
    assert.equal(h.scope, RouteScope.link);
  });

  test('a dump of every table sends no RTA_TABLE; every family: AF_UNSPEC', () => {
    const req = dumpRoutesRequest({ table: RouteTable.unspec });
    assert.equal(req.body.length, RTMSG_LEN);
    assert.equal(decodeRtMsg(req.body).family, 0);
    assert.equal(decodeAttrs(dumpRoutesRequest({ family: 6, table: 300 }).body, routePolicy, RTMSG_LEN).number(RTA.TABLE), 300);
  });

  test('invalid input is refused before anything is sent', () => {
    const ok = { family: 4 as const, gateway: '10.1.2.1', oif: 2, protocol: RouteProtocol.dhcp };
    assert.doesNotThrow(() => newRouteRequest(ok));
    for (const bad of [
      { gateway: '10.1.2.300' },
      { oif: 0 },
      { oif: undefined as unknown as number },
      { protocol: 256 },
      { dstLength: 8 },
      { dst: '10.0.0.0', dstLength: 33 },
      { priority: -1 },
      { table: 2 ** 32 },
      { family: 6 as unknown as 4 },
    ]) assert.throws(() => newRouteRequest({ ...ok, ...bad }), (e: unknown) => e instanceof RangeError || e instanceof TypeError, JSON.stringify(bad));
    assert.throws(() => delRouteRequest({ family: 4, gateway: 'gw' }), RangeError);
  });
});

describe('decoding kernel route replies', () => {
  const f = loadFixture('route-dump-4');
  const up0 = metaNumber(f, 'up0');
  const up1 = metaNumber(f, 'up1');

  test('the default route, the prefix routes of the addresses', () => {
    const routes = replyRoutes(f);
    assert.deepEqual(routes, [
      {
        family: 4, dst: undefined, dstLength: 0, gateway: '10.1.2.1', oif: up1, table: RouteTable.main,
        protocol: RouteProtocol.dhcp, scope: RouteScope.universe, type: RouteType.unicast, priority: 0, prefsrc: undefined,
      },
      {
        family: 4, dst: '10.1.2.0', dstLength: 24, gateway: undefined, oif: up1, table: RouteTable.main,
        protocol: RouteProtocol.kernel, scope: RouteScope.link, type: RouteType.unicast, priority: 0, prefsrc: '10.1.2.3',
      },
      {
        family: 4, dst: '192.0.2.0', dstLength: 24, gateway: undefined, oif: up0, table: RouteTable.main,
        protocol: RouteProtocol.kernel, scope: RouteScope.link, type: RouteType.unicast, priority: 0, prefsrc: '192.0.2.1',
      },
    ]);
    assert.deepEqual(routes.filter(isDefaultRoute).map((r) => r.gateway), ['10.1.2.1']);
  });

  test('a strict dump filtered by table is flagged NLM_F_DUMP_FILTERED', () => {
    const msgs = f.received.flatMap((d) => decodeMessages(d));
    assert.ok(msgs.length >= 4);
    assert.ok(msgs.every((m) => (m.header.flags & HeaderFlag.dumpFiltered) !== 0));
  });

  test('the kernel\'s refusals: EEXIST for a second default route, ESRCH for one gone', () => {
    assert.equal(replyError(loadFixture('route-new-default-exists')).code, 'EEXIST');
    assert.equal(replyError(loadFixture('route-del-gone')).code, 'ESRCH');
  });

  test('other families decode to undefined; an address of the wrong size is a decode error', () => {
    const mr = encodeRtMsg({ family: 128 });
    assert.equal(decodeRoute(mr), undefined);
    const [m] = decodeMessages(f.received[0]!);
    const bad = Buffer.from(m!.payload);
    // The default route relabelled AF_INET6: its 4-byte RTA_GATEWAY no longer fits the family.
    bad.writeUInt8(10, 0);
    assert.throws(() => decodeRoute(bad), /RTA_GATEWAY: IPv6 address of 4 bytes/);
  });
});
