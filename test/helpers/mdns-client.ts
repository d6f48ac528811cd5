/**
 * mDNS clients for the tests that are not avahi: Python with the standard library only, passed with
 * -c. ASK sends one query over multicast (legacy: from a port other than 5353; qu: from 5353 with
 * the unicast-response bit) and prints the reply it got as JSON (or null after 3 s).
 */
import { DNS_PY } from './mdns-wire.js';

export { DNS_PY };

export const ASK = DNS_PY + String.raw`
# ASK MODE NAME QTYPE FAMILY SOURCE: SOURCE is the IPv4 address to send from, or (6) the interface.
mode, name, qtype, family, source = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
if family == 4:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(source))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
    here, group = source, ('224.0.0.251', 5353)
else:
    index = socket.if_nametoindex(source)
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
    here, group = '::', ('ff02::fb', 5353, 0, index)
# qu: a QU answer comes back to port 5353, by unicast (bound to an address, this socket hears only
# that); legacy: any port but 5353.
s.bind((here, 5353 if mode == 'qu' else 0))
qid = 0x5a5a if mode == 'legacy' else 0
qclass = 1 | (0x8000 if mode == 'qu' else 0)
s.sendto(struct.pack('!6H', qid, 0, 1, 0, 0, 0) + encode(name) + struct.pack('!HH', qtype, qclass), group)
s.settimeout(3)
try:
    data, peer = s.recvfrom(9000)
except socket.timeout:
    print(json.dumps(None)); sys.exit(0)
out = parse(data); out['from'] = peer[:2]
print(json.dumps(out))
`;

export interface MdnsRecord { name: string; type: number; cacheFlush: boolean; ttl: number; data: string }
export interface MdnsReply { from: [string, number]; id: number; flags: number; questions: string[]; answers: MdnsRecord[]; additionals: MdnsRecord[] }
