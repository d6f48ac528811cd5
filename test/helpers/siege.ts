/**
 * The combined hostile run (issue 11, "all attacks at once"): each attack of the hostile suite as a
 * loop, one process each, for a given time, and a legitimate client allocating in a loop beside
 * them. The loops are one python3 program passed with -c (nothing uid 65534 runs is read from the
 * checkout); each prints one JSON line when its time is up: what ontapd answered, counted by code.
 */
import { spawn, type ChildProcess } from 'node:child_process';

const PROGRAM = String.raw`
import array, errno, faulthandler, fcntl, json, os, select, socket, struct, sys, threading, time

attack, path, seconds, family = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
# The uplink's family: its device type, its tap type, and the family callers may not ask for.
dev, tap = family, {'macvlan': 'macvtap', 'ipvlan': 'ipvtap'}[family]
other = {'macvlan': 'ipvlan', 'ipvlan': 'macvlan'}[family]
# A loop stuck in a round says where, before it is killed (OVERRUN_S).
faulthandler.dump_traceback_later(seconds + 10)
args = sys.argv[5:]
deadline = time.monotonic() + seconds
stats = {}

def count(key, n=1):
    stats[key] = stats.get(key, 0) + n

def running():
    return time.monotonic() < deadline

def connect(timeout=5):
    u = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    u.settimeout(timeout)
    u.connect(path)
    return u

def request(kind, **extra):
    return json.dumps(dict(v=1, op='allocate', type=kind, **extra)).encode()

def send(u, record, fds=()):
    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', fds))] if fds else []
    u.sendmsg([record], anc)

def answer(u):
    """The reply (None at EOF) and the descriptors that came with it."""
    try:
        data, fds, _, _ = socket.recv_fds(u, 65536, 16)
    except ConnectionResetError:
        # Refused at accept without reading: the reset comes first, the reply is queued behind it.
        data, fds, _, _ = socket.recv_fds(u, 65536, 16)
    return (json.loads(data) if data else None), fds

def code(reply):
    return 'eof' if reply is None else 'ok' if reply.get('ok') else reply['error']['code']

def own_netns():
    return os.open('/proc/self/ns/net', os.O_RDONLY)

def ask(kind, fds=(), **extra):
    """One request on a new connection; returns (connection, reply, descriptors)."""
    u = connect()
    send(u, request(kind, **extra), fds)
    reply, got = answer(u)
    count(code(reply))
    return u, reply, got

def closing(u, fds=()):
    for fd in fds:
        os.close(fd)
    u.close()

# Lingering TCP sockets (issue 11 items 1, 2): the last close waits up to an hour, since the peer
# never reads (a 2 KB window, closed once full), the send queue is full and SO_LINGER is {1, 3600}.
# A small send buffer keeps the kernel memory they hold small: hundreds are made in a run.
srv = None
peers = []
# Every lingering socket stays referenced: one dropped by an exception would be closed by the
# garbage collector on the main thread, and wait there for an hour.
lingerers = []

def lingering():
    global srv
    if srv is None:
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        srv.bind(('127.0.0.1', 0))
        srv.listen(1024)
    c = socket.socket()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    c.connect(srv.getsockname())
    p, _ = srv.accept()
    peers.append(p)
    c.setblocking(False)
    for _ in range(3):
        try:
            while True:
                c.send(b'x' * 65536)
        except BlockingIOError:
            pass
        time.sleep(0.02)
    c.setblocking(True)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 3600))
    lingerers.append(c)
    return c

def let_go(s):
    # ontapd's copy is meant to be the last reference, but it may close its copy first: then ours
    # is the last one and lingers, so it is closed on a thread of its own.
    threading.Thread(target=s.close, daemon=True).start()

def linger_round():
    # Item 1: a bad request, then at once a record carrying a lingering socket.
    c = lingering()
    u = connect()
    u.send(b'not json')
    try:
        send(u, request(tap), [c.fileno()])
    except (BrokenPipeError, ConnectionResetError):
        count('closed-before-second')
    let_go(c)
    u.close()
    count('bad-then-lingering')
    # Item 2: one request carrying four lingering sockets.
    socks = [lingering() for _ in range(4)]
    u = connect()
    send(u, request(dev), [s.fileno() for s in socks])
    for s in socks:
        let_go(s)
    count(code(answer(u)[0]))
    u.close()

def hold_round():
    # Item 3: as many connections as we can, none sending a request, held for a second.
    held = []
    for _ in range(100):
        u = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        u.setblocking(False)
        try:
            u.connect(path)
            count('connected')
        except BlockingIOError:
            count('in-backlog')
        except OSError as e:
            count('connect-' + errno.errorcode[e.errno])
        held.append(u)
    time.sleep(1)
    for u in held:
        u.close()

def junk_round():
    # Item 4: a lease whose reply is left unread, 40 junk records, then close.
    u = connect()
    ns = own_netns()
    send(u, request(dev), [ns])
    os.close(ns)
    if not select.select([u], [], [], 5)[0]:
        count('no-reply')
    else:
        # Peeked, not read: the reply stays unread in the queue, as the attack wants.
        count('leased' if json.loads(u.recv(65536, socket.MSG_PEEK)).get('ok') else 'refused')
    for i in range(40):
        try:
            u.send(b'junk %d' % i)
        except OSError:
            count('junk-refused')
            break
    u.close()
    count('junk-closed')

def flood_round():
    # Item 5: bad requests one after another, as fast as ontapd answers.
    u = connect()
    try:
        u.send(b'{"v":1,"op":"allocate","type":"macvlan","bogus":1}')
    except BrokenPipeError:
        pass
    count(code(answer(u)[0]))
    u.close()

SIOCSIFHWADDR, SIOCGIFHWADDR = 0x8924, 0x8927

def ifreq(mac):
    return b'\0' * 16 + struct.pack('=H', 1) + mac + b'\0' * 16

tamper_rounds = 0

def tamper_round():
    # Item 6: take the gateway's MAC through the tap descriptor, or flood the device's link events
    # (its own address, over and over); the lease must end either way. (An ipvtap's address is
    # the uplink's, and the kernel refuses to change it.)
    global tamper_rounds
    u, reply, fds = ask(tap)
    if not fds:
        u.close()
        time.sleep(0.2)  # cooling down (limit) or capped: ask again soon
        return
    tamper_rounds += 1
    fd = fds[0]
    try:
        if tamper_rounds % 2:
            fcntl.ioctl(fd, SIOCSIFHWADDR, ifreq(bytes.fromhex(args[0].replace(':', ''))))
            count('took-gateway-mac')
        else:
            own = fcntl.ioctl(fd, SIOCGIFHWADDR, bytes(40))[18:24]
            n = 0
            while n < 100000 and not select.select([u], [], [], 0)[0]:
                fcntl.ioctl(fd, SIOCSIFHWADDR, ifreq(own))
                n += 1
            count('events', n)
    except OSError as e:
        count('ioctl-' + errno.errorcode[e.errno])
    if select.select([u], [], [], 2)[0]:
        count('lease-ended')
    else:
        count('lease-kept')
    closing(u, fds)

def nest(parent):
    """RTM_NEWLINK for a device of our family on top of parent; 0 or the kernel's -errno."""
    def attr(kind, data):
        n = 4 + len(data)
        return struct.pack('=HH', n, kind) + data + bytes((4 - n % 4) % 4)
    IFLA_LINK, IFLA_LINKINFO, IFLA_INFO_KIND, RTM_NEWLINK, NLMSG_ERROR = 5, 18, 1, 16, 2
    body = struct.pack('=BxHiII', 0, 0, 0, 0, 0) + attr(IFLA_LINK, struct.pack('=I', socket.if_nametoindex(parent)))
    body += attr(IFLA_LINKINFO, attr(IFLA_INFO_KIND, dev.encode() + b'\0'))
    flags = 0x1 | 0x4 | 0x400 | 0x200  # REQUEST, ACK, CREATE, EXCL
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
    try:
        s.send(struct.pack('=IHHII', 16 + len(body), RTM_NEWLINK, flags, 1, 0) + body)
        r = s.recv(65536)
    finally:
        s.close()
    return struct.unpack('=i', r[16:20])[0] if struct.unpack('=H', r[4:6])[0] == NLMSG_ERROR else 0

def userns_round():
    # Item 7: from a user namespace of our own, where we hold CAP_NET_ADMIN over what ontapd puts
    # in our namespace: a macvlan is refused; an ipvlan is given, and nesting one on it fails.
    ns = own_netns()
    u, reply, fds = ask(dev, [ns])
    os.close(ns)
    if reply and reply.get('ok'):
        err = nest(reply['device']['ifname'])
        count('nest-ok' if err == 0 else 'nest-' + errno.errorcode.get(-err, str(-err)))
    closing(u, fds)
    u, _, fds = ask(tap)
    time.sleep(0.05)
    closing(u, fds)

def squat_round():
    # Item 8: another uid's held name (a conflict), and a reserved one (forbidden).
    for name in args:
        ns = own_netns()
        u, _, fds = ask(dev, [ns], name=name)
        os.close(ns)
        closing(u, fds)
    time.sleep(0.01)

def foreign_round():
    # Item 9: a descriptor of another namespace (args[0]) sent as the place for the device.
    ns = os.open(args[0], os.O_RDONLY)
    u, reply, fds = ask(dev, [ns])
    os.close(ns)
    if reply and reply.get('ok'):
        try:
            socket.if_nametoindex(reply['device']['ifname'])
            count('placed-here')
        except OSError:
            count('placed-elsewhere')
    closing(u, fds)
    time.sleep(0.01)

def mode_round():
    # Item 10: another family than the uplink's, and a mode only root may ask for.
    ns = own_netns()
    u, _, fds = ask(other, [ns])
    closing(u, fds)
    u, _, fds = ask(dev, [ns], mode='passthru' if dev == 'macvlan' else 'l3')
    os.close(ns)
    closing(u, fds)
    time.sleep(0.01)

latencies = []

def client_round():
    # The legitimate client: a device in its namespace, then a tap; each lease ends at once.
    for kind in (dev, tap):
        ns = own_netns() if kind == dev else None
        started = time.monotonic()
        u = connect()
        send(u, request(kind), [ns] if ns is not None else [])
        reply, fds = answer(u)
        latencies.append((time.monotonic() - started) * 1000)
        if ns is not None:
            os.close(ns)
        count(kind + '-' + code(reply))
        closing(u, fds)
        time.sleep(0.01)

ROUNDS = dict(linger=linger_round, hold=hold_round, junk=junk_round, flood=flood_round,
              tamper=tamper_round, userns=userns_round, squat=squat_round, foreign=foreign_round,
              mode=mode_round, client=client_round)
round_ = ROUNDS[attack]
print('started', flush=True)
while running():
    try:
        round_()
    except socket.timeout:
        count('timeout')
    except OSError as e:
        count(errno.errorcode.get(e.errno, str(e.errno)) if e.errno else type(e).__name__)
        time.sleep(0.01)
out = dict(attack=attack, stats=stats)
if attack == 'client':
    out['latencies'] = latencies
print(json.dumps(out), flush=True)
# Threads still closing lingering sockets would keep the process alive; at exit nothing lingers.
os._exit(0)
`;

/** A round takes at most a few seconds (5 s timeouts, a 2 s wait): more means it is stuck. */
const OVERRUN_S = 15;
/** A loop still not started this long after its time would have ended is not going to. */
const START_LIMIT_S = 60;

/** The uplink's family: the loops ask for its device and tap types. */
export type Family = 'macvlan' | 'ipvlan';

export interface SiegeReport {
  attack: string;
  stats: Record<string, number>;
  latencies?: number[];
}

/** One loop of the siege: `argv` runs python3 (under `ip netns exec`, setpriv, unshare...). */
export class SiegeLoop {
  private readonly child: ChildProcess;
  private out = '';
  private err = '';
  readonly done: Promise<SiegeReport>;

  constructor(prefix: string[], attack: string, socket: string, seconds: number, family: Family, args: string[] = []) {
    this.child = spawn(prefix[0]!, [...prefix.slice(1), '-I', '-c', PROGRAM, attack, socket, String(seconds), family, ...args],
      { cwd: '/', stdio: ['ignore', 'pipe', 'pipe'] });
    // A loop that overruns its time is stuck in a round (a close that lingers, a reply that never
    // comes): killed, and reported as what it is. Its time counts from its start (python's own
    // deadline does), not from the spawn: ten loops starting at once in the TCG guest on a loaded
    // host took 24 s to start, and loops killed 15 s after their time for that were not stuck.
    // One that never starts is killed after START_LIMIT_S more.
    const limit = seconds + OVERRUN_S + START_LIMIT_S;
    let overrun = setTimeout(() => this.overran(`still running ${limit} s after it was spawned`), limit * 1000);
    let armed = false;
    this.child.stdout!.on('data', (b: Buffer) => {
      this.out += b.toString();
      if (armed || !this.out.startsWith('started\n')) return;
      armed = true;
      clearTimeout(overrun);
      overrun = setTimeout(() => this.overran(`still running ${OVERRUN_S} s after its ${seconds} s`), (seconds + OVERRUN_S) * 1000);
    });
    this.child.stderr!.on('data', (b: Buffer) => (this.err += b.toString()));
    this.done = new Promise((resolve, reject) => {
      // 'close', not 'exit': the report may still be in the pipe when the process has exited.
      this.child.on('close', (code, signal) => {
        clearTimeout(overrun);
        const last = this.out.trim().split('\n').pop() ?? '';
        try {
          const report = JSON.parse(last) as SiegeReport;
          if (code === 0) return resolve(report);
        } catch {
          // reported below
        }
        reject(new Error(`siege loop ${attack} exited ${code ?? signal}: ${this.out.slice(-500)} ${this.err.slice(-1500)}`));
      });
    });
  }

  private overran(why: string): void {
    this.err += `\n(killed: ${why})`;
    this.kill();
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** Resolves once the loop has started (python is up and running its first round). */
  async started(timeoutMs = 10000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.out.startsWith('started\n')) {
      if (this.child.exitCode !== null) throw new Error(`siege loop exited ${this.child.exitCode}: ${this.err}`);
      if (Date.now() > deadline) throw new Error(`siege loop did not start within ${timeoutMs} ms: ${this.err}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

/** The q-quantile (0..1) of `values`, nearest rank. */
export function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}
