/**
 * The wire side of mDNS tests and benches: Python (standard library only) in a peer namespace, run
 * with `ip netns exec NS python3 -I -c SCRIPT`, so nothing is read from the checkout.
 *
 * BLAST sends prepared datagrams from sockets of its own (any source address of the namespace, any
 * port, any TTL), paced, then collects what comes back to those sockets. LISTEN hears every mDNS
 * response on the group. Both print JSON on stdout.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** DNS names and messages, enough to read mDNS answers; parse() raises on anything malformed. */
export const DNS_PY = String.raw`
import json, select, socket, struct, sys, time
def encode(n):
    return b''.join(bytes([len(l)]) + l.encode() for l in n.split('.')) + b'\0'
def read_name(buf, off):
    labels, jumps, end = [], 0, None
    while True:
        n = buf[off]
        if n & 0xc0 == 0xc0:
            if end is None: end = off + 2
            off = ((n & 0x3f) << 8) | buf[off + 1]; jumps += 1
            if jumps > 50: raise ValueError('loop')
            continue
        if n == 0:
            return '.'.join(labels), (end if end is not None else off + 1)
        labels.append(buf[off + 1:off + 1 + n].decode()); off += 1 + n
def parse(data):
    rid, flags, qd, an, ns, ar = struct.unpack('!6H', data[:12])
    off, questions, records = 12, [], []
    for _ in range(qd):
        n, off = read_name(data, off); questions.append(n); off += 4
    for _ in range(an + ns + ar):
        n, off = read_name(data, off)
        t, c, ttl, rdlen = struct.unpack('!HHIH', data[off:off + 10]); off += 10
        rd = data[off:off + rdlen]; off += rdlen
        text = socket.inet_ntop(socket.AF_INET, rd) if t == 1 else socket.inet_ntop(socket.AF_INET6, rd) if t == 28 else rd.hex()
        records.append({'name': n, 'type': t, 'cacheFlush': bool(c & 0x8000), 'ttl': ttl, 'data': text})
    return {'id': rid, 'flags': flags, 'questions': questions, 'answers': records[:an], 'additionals': records[an + ns:]}
def query(name, qtype, qid=0, qu=False):
    return struct.pack('!6H', qid, 0, 1, 0, 0, 0) + encode(name) + struct.pack('!HH', qtype, 1 | (0x8000 if qu else 0))
`;

/**
 * stdin: {"sockets": [{"src": ADDR, "port": P (0: any), "ttl": T}], "packets": [HEX],
 *         "sends": [[SOCKET, DEST, PACKET]], "rate": PER_SECOND (0: at once), "wait": SECONDS}
 * stdout: {"sent", "failed", "seconds" (first to last send), "replies": [[SOCKET, FROM, PORT, LENGTH, ID, ANSWERS]]}
 * ANSWERS is the number of answer records, -1 if the reply did not parse.
 */
export const BLAST = DNS_PY + String.raw`
job = json.load(sys.stdin)
socks = []
for d in job['sockets']:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(d['src']))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, d['ttl'])
    s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, d['ttl'])
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
    s.bind((d['src'], d['port']))
    s.setblocking(False)
    socks.append(s)
packets = [bytes.fromhex(h) for h in job['packets']]
replies, sent, failed = [], 0, 0
def drain():
    for i, s in enumerate(socks):
        while True:
            try:
                data, peer = s.recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                break
            try:
                m = parse(data); rid, answers = m['id'], len(m['answers'])
            except Exception:
                rid, answers = -1, -1
            replies.append([i, peer[0], peer[1], len(data), rid, answers])
rate = job.get('rate', 0)
start = time.monotonic()
first = last = None
for n, (si, dest, pi) in enumerate(job['sends']):
    if rate:
        due = start + n / rate
        while time.monotonic() < due:
            drain(); time.sleep(0.001)
    try:
        socks[si].sendto(packets[pi], (dest, 5353)); sent += 1
    except OSError:
        failed += 1
    last = time.monotonic()
    if first is None: first = last
end = time.monotonic() + job.get('wait', 1)
while time.monotonic() < end:
    select.select(socks, [], [], max(0, end - time.monotonic()))
    drain()
print(json.dumps({'sent': sent, 'failed': failed, 'seconds': (last - first) if first is not None else 0, 'replies': replies}))
`;

/**
 * Every mDNS response (QR set, parseable) heard on 224.0.0.251 via SOURCE's interface for SECONDS,
 * one JSON line each, with its CLOCK_MONOTONIC time (ns); queries and garbage are not printed.
 * The first line is "ready".
 */
export const LISTEN = DNS_PY + String.raw`
source, seconds = sys.argv[1], float(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
s.bind(('224.0.0.251', 5353))
s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton('224.0.0.251') + socket.inet_aton(source))
print('ready', flush=True)
end = time.monotonic() + seconds
while time.monotonic() < end:
    s.settimeout(max(0.01, end - time.monotonic()))
    try:
        data, peer = s.recvfrom(65536)
    except socket.timeout:
        break
    at = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    try:
        out = parse(data)
    except Exception:
        continue
    if not out['flags'] & 0x8000: continue
    out['from'] = peer; out['ns'] = at
    print(json.dumps(out), flush=True)
`;

export interface WireRecord { name: string; type: number; cacheFlush: boolean; ttl: number; data: string }
export interface WireResponse { from: [string, number]; id: number; flags: number; questions: string[]; answers: WireRecord[]; additionals: WireRecord[]; ns: number }

export interface BlastJob {
  sockets: Array<{ src: string; port: number; ttl: number }>;
  packets: Buffer[];
  sends: Array<[number, string, number]>;
  rate?: number;
  wait?: number;
}
export interface BlastResult { sent: number; failed: number; seconds: number; replies: Array<[number, string, number, number, number, number]> }

function blastInput(job: BlastJob): string {
  return JSON.stringify({ ...job, packets: job.packets.map((p) => p.toString('hex')) });
}

/** Runs BLAST in `ns` and waits for it. */
export function blast(ns: string, job: BlastJob, timeoutMs = 60000): BlastResult {
  const r = spawnSync('ip', ['netns', 'exec', ns, 'python3', '-I', '-c', BLAST], { input: blastInput(job), encoding: 'utf8', timeout: timeoutMs, maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`blast in ${ns}: exit ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout) as BlastResult;
}

/** BLAST in the background (the caller samples ontap-zone meanwhile). */
export function blastAsync(ns: string, job: BlastJob, timeoutMs = 60000): Promise<BlastResult> {
  return new Promise((resolve, reject) => {
    const c = spawn('ip', ['netns', 'exec', ns, 'python3', '-I', '-c', BLAST], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (err += d.toString()));
    c.on('exit', (code) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`blast in ${ns}: exit ${code}: ${err}`));
      else resolve(JSON.parse(out) as BlastResult);
    });
    c.stdin.end(blastInput(job));
  });
}

/** LISTEN in `ns` on `source`'s interface; resolves once it has joined the group. */
export async function listen(ns: string, source: string, seconds: number): Promise<{ child: ChildProcess; done: Promise<WireResponse[]> }> {
  const child = spawn('ip', ['netns', 'exec', ns, 'python3', '-I', '-c', LISTEN, source, String(seconds)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise<WireResponse[]>((resolve) => child.on('exit', () => {
    resolve(out.split('\n').slice(1).filter((l) => l !== '').map((l) => JSON.parse(l) as WireResponse));
  }));
  const deadline = Date.now() + 5000;
  while (!out.startsWith('ready\n')) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error('the mDNS listener did not start');
    await new Promise((r) => setTimeout(r, 10));
  }
  return { child, done };
}

/** CPU time (user + system) of a process so far, in ms (/proc/PID/stat, clock ticks of 10 ms). */
export function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** VmRSS of a process, in KiB. */
export function rssKiB(pid: number): number {
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
}
