/**
 * Callers that attack ontapd's event loop and thread pool, run as uid 65534 (issue 11 items 1-4).
 * The attacks are one python3 program (stdlib: SO_LINGER, SCM_RIGHTS, select) passed with -c, so
 * nothing uid 65534 runs is read from the checkout, which may sit under a directory it cannot
 * enter. Each attack prints what it has done, one word a line, and waits for a line on stdin where
 * the test must act (stop ontapd, measure) before it goes on.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';

export const NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];

/** A python3 that uid 65534 can run (a pyenv shim under /root cannot be), or undefined. */
export function nobodyPython(): string | undefined {
  for (const path of ['/usr/bin/python3', '/bin/python3', '/usr/local/bin/python3']) {
    try {
      if ((statSync(path).mode & 0o001) !== 0) return path;
    } catch {
      // next
    }
  }
  return undefined;
}

/** The attacks, a python3 program: `python3 -I -c PROGRAM ATTACK ARGS...`. */
export const PROGRAM = String.raw`
import os, select, socket, struct, sys, time

def say(word):
    print(word, flush=True)

def wait():
    if sys.stdin.readline() == '':
        sys.exit(0)

def listener():
    srv = socket.socket()
    # Inherited by the accepted peer: its window stays small and closes once it is full.
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    srv.bind(('127.0.0.1', 0))
    srv.listen(256)
    return srv

peers = []

def lingering(srv):
    """A TCP socket whose last close waits up to an hour: its peer never reads, its send queue is
    full (so the FIN cannot go out), and SO_LINGER is {1, 3600}."""
    c = socket.socket()
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
        time.sleep(0.02)  # the send buffer grows while the window closes
    c.setblocking(True)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 3600))
    return c

def seqpacket(path):
    u = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    u.connect(path)
    return u

def request(kind):
    return ('{"v":1,"op":"allocate","type":"%s"}' % kind).encode()

cmd, path = sys.argv[1], sys.argv[2]

if cmd == 'bad-then-lingering':
    # A bad request, then at once a record carrying a lingering socket: ontapd answers the first
    # and closes the connection, and the unread record holds the socket's last reference.
    c = lingering(listener())
    say('ready'); wait()
    u = seqpacket(path)
    u.send(b'not json')
    socket.send_fds(u, [request('macvtap')], [c.fileno()])
    c.close()
    say('sent'); wait()

elif cmd == 'refused-with-lingering':
    # As many waiting connections as ontapd lets one uid have, then one more that it refuses,
    # carrying a lingering socket in a record sent before ontapd accepted it.
    waiting = int(sys.argv[3])
    c = lingering(listener())
    say('ready'); wait()
    held = [seqpacket(path) for _ in range(waiting)]
    u = seqpacket(path)
    socket.send_fds(u, [request('macvtap')], [c.fileno()])
    c.close()
    say('sent'); wait()

elif cmd == 'lingering-request':
    # One request carrying N lingering sockets (a macvlan request needs exactly one descriptor);
    # then, once told, M requests carrying K descriptors each.
    n, m, k = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    srv = listener()
    socks = [lingering(srv) for _ in range(n)]
    say('ready'); wait()
    u = seqpacket(path)
    socket.send_fds(u, [request('macvlan')], [s.fileno() for s in socks])
    for s in socks:
        s.close()
    say('sent'); wait()
    null = os.open('/dev/null', os.O_RDONLY)
    for _ in range(m):
        v = seqpacket(path)
        socket.send_fds(v, [request('macvlan')], [null] * k)
        v.recv(4096)
        v.close()
    say('flooded'); wait()

elif cmd == 'hold':
    # N connections that never send a request, held until told.
    n = int(sys.argv[3])
    held = []
    for _ in range(n):
        u = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        u.setblocking(False)
        try:
            u.connect(path)
        except BlockingIOError:
            pass
        held.append(u)
    say('held'); wait()
    for u in held:
        u.close()
    say('closed'); wait()

elif cmd == 'send-lingering':
    # N lingering sockets sent over the SOCK_SEQPACKET socket at descriptor PATH (inherited).
    n = int(sys.argv[3])
    srv = listener()
    socks = [lingering(srv) for _ in range(n)]
    u = socket.socket(fileno=int(path))
    socket.send_fds(u, [b'lingering'], [s.fileno() for s in socks])
    for s in socks:
        s.close()
    say('sent'); wait()

elif cmd == 'junk-after-reply':
    # A real allocation whose reply is left unread, then 40 junk records, then close: ontapd's end
    # gets ECONNRESET (POLLERR) with the records and the EOF still queued.
    u = seqpacket(path)
    ns = os.open('/proc/self/ns/net', os.O_RDONLY)
    socket.send_fds(u, [request('macvlan')], [ns])
    os.close(ns)
    if not select.select([u], [], [], 10)[0]:
        sys.exit('no reply within 10 s')
    say('replied'); wait()
    for i in range(40):
        u.send(b'junk %d' % i)
    u.close()
    say('closed'); wait()

else:
    sys.exit('unknown attack ' + cmd)
`;

/** One attack as uid 65534 inside namespace `ns`; lines it printed, and a way to let it go on. */
export class Attack {
  private readonly child: ChildProcess;
  private out = '';
  private err = '';
  private readonly exited: Promise<number | null>;

  constructor(python: string, ns: string, args: string[]) {
    this.child = spawn('ip', ['netns', 'exec', ns, ...NOBODY, python, '-I', '-c', PROGRAM, ...args],
      { cwd: '/', stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (b: Buffer) => (this.out += b.toString()));
    this.child.stderr!.on('data', (b: Buffer) => (this.err += b.toString()));
    this.exited = new Promise((r) => this.child.on('exit', (code) => r(code)));
  }

  /** Resolves once the attack printed `word` on a line of its own. */
  async said(word: string, timeoutMs = 10000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.out.split('\n').includes(word)) {
      if (this.child.exitCode !== null) throw new Error(`the attack exited ${this.child.exitCode} before "${word}": ${this.out} ${this.err}`);
      if (Date.now() > deadline) throw new Error(`the attack did not say "${word}" within ${timeoutMs} ms: ${this.out} ${this.err}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** Lets the attack go on past its next wait. */
  proceed(): void {
    this.child.stdin!.write('go\n');
  }

  /** Ends it (its never-reading peers go with it, and the sockets they hold are reset). */
  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }
}

let ticks: number | undefined;

/** utime + stime of a process in seconds: /proc/PID/stat fields 14 and 15, in clock ticks. */
export function cpuSeconds(pid: number): number {
  ticks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // After the command name in parentheses: field 3 (state) first, so utime is [11], stime [12].
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / ticks;
}
