"""A hostile DHCP "server" for ontapd's client (test/integration/dhcp-hostile.test.ts).

Listens on UDP 67 of one interface. To every DISCOVER it answers with each bad OFFER in turn
(broadcast, the client's own xid and chaddr unless the case is about them), then one good OFFER;
to every REQUEST with each bad ACK, then a good ACK. Prints one line per message it sends.

usage: hostile-dhcp.py IFNAME SERVER_ADDRESS GOOD_ADDRESS
"""
import socket
import struct
import sys

ifname, server, good = sys.argv[1], sys.argv[2], sys.argv[3]
SERVER = socket.inet_aton(server)
MASK = socket.inet_aton('255.255.255.0')


def options(pairs):
    return b''.join(bytes([c, len(v)]) + v for c, v in pairs) + b'\xff'


def packet(xid, chaddr, yiaddr, body, flags=0x8000):
    b = bytearray(240)
    b[0], b[1], b[2] = 2, 1, 6
    struct.pack_into('!IHH', b, 4, xid, 0, flags)
    b[16:20] = socket.inet_aton(yiaddr)
    b[20:24] = SERVER
    b[28:28 + len(chaddr)] = chaddr
    b[236:240] = bytes([99, 130, 83, 99])
    return bytes(b) + body


def overloaded(datagram):
    # Option 52 says the file field (offset 108, 128 octets) holds options: one runs past its end.
    b = bytearray(datagram)
    b[108], b[109] = 15, 200
    return bytes(b)


def usual(kind, lease=600, router=server, extra=()):
    return [(53, bytes([kind])), (54, SERVER), (51, struct.pack('!I', lease)), (1, MASK),
            (3, socket.inet_aton(router)), (6, socket.inet_aton('10.78.0.53'))] + list(extra)


def cases(kind, xid, chaddr):
    """(name, datagram) of every bad reply of this kind, then the good one."""
    other = bytes([2, 0, 0, 0, 0, 0x99])
    return [
        ('other-xid', packet(xid ^ 1, chaddr, '10.78.0.201', options(usual(kind)))),
        ('other-chaddr', packet(xid, other, '10.78.0.202', options(usual(kind)))),
        ('other-client-id', packet(xid, chaddr, '10.78.0.203', options(usual(kind, extra=[(61, b'\xff' + b'\x00' * 22)])))),
        ('truncated', packet(xid, chaddr, '10.78.0.204', options(usual(kind)))[:120]),
        ('bad-cookie', packet(xid, chaddr, '10.78.0.205', options(usual(kind)))[:236] + b'\x00\x00\x00\x00' + options(usual(kind))),
        ('length-past-end', packet(xid, chaddr, '10.78.0.206', bytes([53, 1, kind, 54, 4]) + SERVER + bytes([51, 200, 0, 0]))),
        ('overload-past-end', overloaded(packet(xid, chaddr, '10.78.0.207', options(usual(kind, extra=[(52, b'\x01')]))))),
        ('no-message-type', packet(xid, chaddr, '10.78.0.208', options(usual(kind)[1:]))),
        ('yiaddr-zero', packet(xid, chaddr, '0.0.0.0', options(usual(kind)))),
        ('yiaddr-broadcast', packet(xid, chaddr, '10.78.0.255', options(usual(kind)))),
        ('yiaddr-network', packet(xid, chaddr, '10.78.0.0', options(usual(kind)))),
        ('router-outside', packet(xid, chaddr, '10.78.0.209', options(usual(kind, router='192.0.2.1')))),
        ('lease-zero', packet(xid, chaddr, '10.78.0.210', options(usual(kind, lease=0)))),
        ('hostname-newline', packet(xid, chaddr, '10.78.0.211', options(usual(kind, extra=[(15, b'lan\nnameserver 6.6.6.6')])))),
        ('good', packet(xid, chaddr, good, options(usual(kind)))),
    ]


s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
s.bind(('0.0.0.0', 67))
# What a workload's own process could send: replies from a port that is not 67.
low = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
low.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
low.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
low.bind(('0.0.0.0', 6767))
print('ready', flush=True)
while True:
    data, _ = s.recvfrom(4096)
    if len(data) < 240:
        continue
    xid = struct.unpack_from('!I', data, 4)[0]
    chaddr = data[28:34]
    i, kind = 240, None
    while i < len(data) and data[i] != 255:
        if data[i] == 0:
            i += 1
            continue
        if data[i] == 53:
            kind = data[i + 2]
        i += 2 + data[i + 1]
    reply = {1: 2, 3: 5}.get(kind)
    if reply is None:
        continue
    for name, datagram in cases(reply, xid, chaddr):
        if name == 'good':
            low.sendto(packet(xid, chaddr, '10.78.0.212', options(usual(reply))), ('255.255.255.255', 68))
            print('sent', 'offer' if reply == 2 else 'ack', 'from-port-6767', flush=True)
        s.sendto(datagram, ('255.255.255.255', 68))
        print('sent', 'offer' if reply == 2 else 'ack', name, flush=True)
