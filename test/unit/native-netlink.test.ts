// NETLINK_ROUTE through the native addon in the host namespace: read-only requests, no changes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { native } from '../../src/native/index.js';
import {
  AF_NETLINK,
  NETLINK_GET_STRICT_CHK,
  NETLINK_ROUTE,
  SOCK_RAW,
  SOL_NETLINK,
} from '../../src/native/constants.js';

const RTM_NEWLINK = 16;
const RTM_GETLINK = 18;
const NLM_F_REQUEST = 1;

/** nlmsghdr + ifinfomsg asking for one link: the only netlink bytes built in these tests. */
function getLinkRequest(ifindex: number, seq: number): Buffer {
  const b = Buffer.alloc(32);
  b.writeUInt32LE(32, 0); // nlmsg_len
  b.writeUInt16LE(RTM_GETLINK, 4);
  b.writeUInt16LE(NLM_F_REQUEST, 6);
  b.writeUInt32LE(seq, 8);
  b.writeUInt32LE(0, 12); // nlmsg_pid
  b.writeInt32LE(ifindex, 20); // ifi_index (family, pad and type stay 0)
  return b;
}

function openRoute(t: { after(fn: () => void): void }): number {
  const n = native();
  const fd = n.socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE, false);
  t.after(() => n.close(fd));
  n.setTimeouts(fd, 2000, 2000); // a missing reply fails the test instead of hanging it
  return fd;
}

test('NETLINK_ROUTE: bind, strict checking, and a RTM_GETLINK reply from the kernel', (t) => {
  const n = native();
  const fd = openRoute(t);
  const port = n.bindNetlink(fd, 0);
  assert.ok(port > 0, 'the kernel assigns a nonzero port id');
  assert.deepEqual(n.socketInfo(fd), { domain: AF_NETLINK, type: SOCK_RAW, listening: false, path: undefined });

  n.setsockoptInt(fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1);
  assert.equal(n.getsockoptInt(fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK), 1);

  const request = getLinkRequest(1, 0x1234);
  assert.equal(n.sendmsg(fd, request, undefined, 0), request.length);
  const r = n.recvmsg(fd, 32768, 0);
  assert.ok(r, 'a reply arrived');
  assert.equal(r.senderPortId, 0, 'sent by the kernel');
  assert.equal(r.nsid, undefined, 'our own namespace carries no nsid');
  assert.equal(r.truncated, false);
  assert.equal(r.length, r.data.length);
  assert.equal(r.data.readUInt32LE(0), r.length, 'one message: nlmsg_len is the record length');
  assert.equal(r.data.readUInt16LE(4), RTM_NEWLINK);
  assert.equal(r.data.readUInt32LE(8), 0x1234, 'sequence echoed');
  assert.equal(r.data.readUInt32LE(12), port, 'addressed to our port');
  assert.equal(r.data.readInt32LE(20), 1, 'ifindex 1 (lo)');
});

test('netlink truncation: MSG_TRUNC reports the full length of a long reply', (t) => {
  const n = native();
  const fd = openRoute(t);
  n.bindNetlink(fd, 0);
  n.sendmsg(fd, getLinkRequest(1, 7), undefined, undefined); // unaddressed: the kernel too
  const peek = n.recvmsg(fd, 0, 0, true);
  assert.ok(peek);
  assert.ok(peek.length > 64);
  const r = n.recvmsg(fd, 20, 0);
  assert.ok(r);
  assert.equal(r.truncated, true);
  assert.equal(r.data.length, 20);
  assert.equal(r.length, peek.length);
  assert.equal(r.data.readUInt32LE(8), 7);
});

test('sendmsgAsync to the kernel and a reply on a polled nonblocking socket', { timeout: 5000 }, async (t) => {
  const n = native();
  const fd = n.socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE, true);
  t.after(() => n.close(fd));
  n.bindNetlink(fd, 0);
  assert.equal(n.recvmsg(fd, 32768, 0), null, 'nothing queued: EAGAIN');
  const sent = await new Promise<number>((resolve, reject) =>
    n.sendmsgAsync(fd, getLinkRequest(1, 99), 0, (err, count) => (err ? reject(err) : resolve(count))),
  );
  assert.equal(sent, 32);
  const reply = await new Promise<Buffer>((resolve, reject) => {
    const poller = n.poll(fd, (err, readable) => {
      poller.close();
      const r = err === null && readable ? n.recvmsg(fd, 32768, 0) : null;
      if (r) resolve(r.data);
      else reject(err ?? new Error('readable but EAGAIN'));
    });
    t.after(() => poller.close());
    poller.start(true, false);
  });
  assert.equal(reply.readUInt16LE(4), RTM_NEWLINK);
  assert.equal(reply.readUInt32LE(8), 99);
});
