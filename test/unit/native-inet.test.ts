// recvInet/sendInet over loopback in the test's own namespace: unprivileged. lo is ifindex 1 in
// every namespace (the first device registered), so the packet information is known in advance.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import {
  AF_INET, AF_INET6, IP_PKTINFO, IP_RECVTTL, IP_TTL, IPPROTO_IP, IPPROTO_IPV6, IPPROTO_UDP, IPV6_RECVHOPLIMIT,
  IPV6_RECVPKTINFO, IPV6_UNICAST_HOPS, IPV6_V6ONLY, SOCK_DGRAM,
} from '../../src/native/constants.js';
import { isErrno, native, type InetDatagram } from '../../src/native/index.js';

const LO = 1;

/** A UDP socket bound to `address` on a free port (tried at random: the addon has no getsockname). */
function bound(family: 4 | 6, address: string): { fd: number; port: number } {
  const nb = native();
  const fd = nb.socket(family === 4 ? AF_INET : AF_INET6, SOCK_DGRAM, IPPROTO_UDP, true);
  if (family === 6) nb.setsockoptInt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
  for (let i = 0; ; i++) {
    const port = 20000 + Math.floor(Math.random() * 40000);
    try {
      nb.bindInet(fd, family, address, port);
      return { fd, port };
    } catch (e) {
      if (!isErrno(e, 'EADDRINUSE') || i > 50) {
        nb.close(fd);
        throw e;
      }
    }
  }
}

async function receive(fd: number, maxBytes = 1500): Promise<InetDatagram> {
  for (let i = 0; i < 400; i++) {
    const d = native().recvInet(fd, maxBytes);
    if (d !== null) return d;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error('nothing arrived within 2 s');
}

function loopbackIPv6(t: TestContext): boolean {
  try {
    native().close(bound(6, '::1').fd);
    return true;
  } catch (e) {
    if (!isErrno(e, 'EADDRNOTAVAIL') && !isErrno(e, 'EAFNOSUPPORT')) throw e;
    t.skip('no IPv6 on lo in this namespace');
    return false;
  }
}

test('IPv4: the sender\'s TTL, lo\'s ifindex and the destination come back; without the options, -1, 0 and ""', async () => {
  const nb = native();
  const rx = bound(4, '127.0.0.1');
  const tx = bound(4, '127.0.0.1');
  try {
    nb.setsockoptInt(tx.fd, IPPROTO_IP, IP_TTL, 7);
    assert.equal(nb.sendInet(tx.fd, Buffer.from('plain'), 4, '127.0.0.1', rx.port, 0), 5);
    let d = await receive(rx.fd);
    assert.deepEqual([d.data.toString(), d.family, d.source, d.sourcePort, d.ifindex, d.destination, d.hopLimit, d.truncated],
      ['plain', 4, '127.0.0.1', tx.port, 0, '', -1, false]);
    nb.setsockoptInt(rx.fd, IPPROTO_IP, IP_PKTINFO, 1);
    nb.setsockoptInt(rx.fd, IPPROTO_IP, IP_RECVTTL, 1);
    nb.sendInet(tx.fd, Buffer.from('with info'), 4, '127.0.0.1', rx.port, 0);
    d = await receive(rx.fd);
    assert.deepEqual([d.data.toString(), d.ifindex, d.destination, d.hopLimit], ['with info', LO, '127.0.0.1', 7]);
    nb.sendInet(tx.fd, Buffer.alloc(70000 - 28 - 5000), 4, '127.0.0.1', rx.port, 0);
    d = await receive(rx.fd, 10);
    assert.deepEqual([d.data.length, d.truncated], [10, true]);
    assert.equal(nb.recvInet(rx.fd, 1500), null, 'EAGAIN is null');
  } finally {
    nb.close(rx.fd);
    nb.close(tx.fd);
  }
});

test('IPv6: the sender\'s hop limit, lo\'s ifindex and ::1 as destination', async (t) => {
  if (!loopbackIPv6(t)) return;
  const nb = native();
  const rx = bound(6, '::1');
  const tx = bound(6, '::1');
  try {
    nb.setsockoptInt(rx.fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1);
    nb.setsockoptInt(rx.fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1);
    nb.setsockoptInt(tx.fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 9);
    assert.equal(nb.sendInet(tx.fd, Buffer.from('six'), 6, '::1', rx.port, 0), 3);
    const d = await receive(rx.fd);
    assert.deepEqual([d.data.toString(), d.family, d.source, d.sourcePort, d.ifindex, d.destination, d.hopLimit],
      ['six', 6, '::1', tx.port, LO, '::1', 9]);
  } finally {
    nb.close(rx.fd);
    nb.close(tx.fd);
  }
});

test('recvInet on a socket that is not IPv4/IPv6 is EAFNOSUPPORT, not a bogus datagram', () => {
  const nb = native();
  const [a, b] = nb.socketpair(SOCK_DGRAM | 0o4000);
  try {
    nb.sendmsg(a, Buffer.from('x'), undefined, undefined);
    assert.throws(() => nb.recvInet(b, 100), (e: unknown) => isErrno(e, 'EAFNOSUPPORT'));
  } finally {
    nb.close(a);
    nb.close(b);
  }
});
