#!/usr/bin/env python3
"""Raw Ethernet frames for the tap tests, with no library beyond the standard one.

  frames.py peer IFNAME TOKEN SECONDS   on the uplink's peer: print each tap frame seen
                                         (one line per payload) and answer it by broadcast
  frames.py tap TOKEN SECONDS           as ontap's COMMAND: send one frame per queue
                                         (ONTAP_FD0..), read the answers from any queue;
                                         exit 0 once every queue's frame was answered

Frames use the local experimental EtherType 0x88b5 and carry TOKEN so that parallel runs and
background traffic (IPv6 neighbour discovery) never match. Answers go to the broadcast address:
ipvlan in l2 mode hands non-IP unicast frames to the uplink, not to the slave.
"""
import os
import select
import socket
import sys
import time

ETHERTYPE = 0x88B5
BROADCAST = b"\xff" * 6


def frame(dst, src, payload):
    body = dst + src + ETHERTYPE.to_bytes(2, "big") + payload
    return body + b"\0" * max(0, 60 - len(body))


def parse(data):
    if len(data) < 14 or int.from_bytes(data[12:14], "big") != ETHERTYPE:
        return None
    return data[14:].rstrip(b"\0")


def peer(ifname, token, seconds):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETHERTYPE))
    s.bind((ifname, 0))
    mac = s.getsockname()[4]
    seen = set()
    print("ready", flush=True)
    deadline = time.monotonic() + seconds
    prefix = b"out " + token.encode() + b" "
    while time.monotonic() < deadline:
        r, _, _ = select.select([s], [], [], 0.1)
        if not r:
            continue
        payload = parse(s.recv(65536))
        if payload is None or not payload.startswith(prefix):
            continue
        if payload not in seen:
            seen.add(payload)
            print(payload.decode(), flush=True)
        s.send(frame(BROADCAST, mac, b"in " + payload[4:]))


def tap(token, seconds):
    queues = int(os.environ["ONTAP_QUEUES"])
    fds = [int(os.environ["ONTAP_FD%d" % i]) for i in range(queues)]
    mac = bytes.fromhex(os.environ["ONTAP_HWADDR"].replace(":", ""))
    # IFF_VNET_HDR: every frame starts with a struct virtio_net_hdr (10 bytes by default).
    hdr = bytes(10) if os.environ.get("ONTAP_VNET_HDR") == "1" else b""
    want = {("in %s %d" % (token, i)).encode() for i in range(queues)}
    got = set()
    deadline = time.monotonic() + seconds
    next_send = 0.0
    while time.monotonic() < deadline and got != want:
        if time.monotonic() >= next_send:
            for i, fd in enumerate(fds):
                os.write(fd, hdr + frame(BROADCAST, mac, ("out %s %d" % (token, i)).encode()))
            next_send = time.monotonic() + 0.25
        r, _, _ = select.select(fds, [], [], 0.05)
        for fd in r:
            payload = parse(os.read(fd, 65536)[len(hdr):])
            if payload in want:
                got.add(payload)
    for p in sorted(got):
        print(p.decode(), flush=True)
    sys.exit(0 if got == want else 1)


if __name__ == "__main__":
    if sys.argv[1] == "peer":
        peer(sys.argv[2], sys.argv[3], float(sys.argv[4]))
    elif sys.argv[1] == "tap":
        tap(sys.argv[2], float(sys.argv[3]))
    else:
        sys.exit("usage: frames.py peer IFNAME TOKEN SECONDS | tap TOKEN SECONDS")
