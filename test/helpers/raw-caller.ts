/**
 * A raw ontapd caller for hostile-caller tests, run as uid 65534. It is python3 source passed with
 * -c (never a path under the checkout, which uid 65534 may not be able to enter): it sends what a
 * well-behaved client never would, and reports exactly what ontapd answered (code and field),
 * which the ontap client only turns into an exit status and a sentence.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';

export const NOBODY_UID = 65534;
export const AS_NOBODY = ['setpriv', `--reuid=${NOBODY_UID}`, `--regid=${NOBODY_UID}`, '--clear-groups'];
/**
 * The system's directories only: a python3 earlier on root's PATH (a pyenv shim under /root) may
 * be out of uid 65534's reach.
 */
const SYSTEM_PATH = 'PATH=/usr/local/bin:/usr/bin:/bin';

const SOURCE = String.raw`
import array, json, os, socket, sys, time

def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(10)
    s.connect(path)
    return s

def answer(s):
    try:
        data = s.recv(65536)
    except ConnectionResetError:
        # ontapd closed without reading our request (it refused the connection at accept):
        # the kernel reports that first, and the reply it sent is still queued behind it.
        data = s.recv(65536)
    return json.loads(data) if data else None

def request(path, req):
    """One request; ipvlan and macvlan carry this process's /proc/self/ns/net, as ontap sends it."""
    s = connect(path)
    fds = [os.open('/proc/self/ns/net', os.O_RDONLY)] if req.get('type') in ('ipvlan', 'macvlan') else []
    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', fds))] if fds else []
    s.sendmsg([json.dumps(req).encode()], anc)
    for fd in fds:
        os.close(fd)
    return s, answer(s)

cmd = sys.argv[1]
if cmd == 'request':
    # request SOCKET JSON [hold]: print the reply; with hold, keep a granted lease until stdin closes.
    s, reply = request(sys.argv[2], json.loads(sys.argv[3]))
    print(json.dumps(reply), flush=True)
    if len(sys.argv) > 4 and sys.argv[4] == 'hold' and reply and reply.get('ok'):
        sys.stdin.read()
elif cmd == 'flood':
    # flood SOCKET N HOLD EXTRA RECORD PAUSE: N connections one after another, each sending RECORD
    # and reading the reply; then HOLD connections kept open without a request (the per-uid cap on
    # waiting connections) and EXTRA more that each send RECORD. Counts the reply codes. After
    # PAUSE of the N (0: never) it says so and waits for a line on stdin.
    path, n, hold, extra, record = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6].encode()
    pause = int(sys.argv[7])
    codes = {}
    def one():
        s = connect(path)
        try:
            try:
                s.send(record)
            except BrokenPipeError:
                pass  # refused and closed before we sent: its reply is queued all the same
            reply = answer(s)
        finally:
            s.close()
        code = reply['error']['code'] if reply and not reply.get('ok') else 'ok' if reply else 'eof'
        codes[code] = codes.get(code, 0) + 1
    started = time.monotonic()
    for i in range(n):
        one()
        if i + 1 == pause:
            print(json.dumps({'paused': i + 1}), flush=True)
            sys.stdin.readline()
    held = [connect(path) for _ in range(hold)]
    for _ in range(extra):
        one()
    for s in held:
        s.close()
    print(json.dumps({'codes': codes, 'seconds': time.monotonic() - started}), flush=True)
`;

export interface RawReply {
  ok: boolean;
  device?: { ifname: string; hwaddr: string; name?: string; mode?: string; flag?: string; type: string };
  error?: { code: string; message: string; field?: string };
}

/** Who runs the raw caller: uid 65534 (the attacker), or root (to show what the attacker aims at). */
export type Caller = 'nobody' | 'root';

/** argv that runs the raw caller as `caller` in network namespace `ns`. */
export function rawCallerArgv(ns: string, args: string[], caller: Caller = 'nobody'): string[] {
  return ['ip', 'netns', 'exec', ns, ...(caller === 'nobody' ? AS_NOBODY : []), 'env', SYSTEM_PATH, 'python3', '-c', SOURCE, ...args];
}

/** Whether uid 65534 can run a python3 from the system's directories. */
export function nobodyHasPython(): boolean {
  return spawnSync(AS_NOBODY[0]!, [...AS_NOBODY.slice(1), 'env', SYSTEM_PATH, 'python3', '-c', 'import socket, array'], { stdio: 'ignore' }).status === 0;
}

/** One request from namespace `ns` (as uid 65534 unless told); the reply ontapd sent. */
export function rawRequest(ns: string, socket: string, request: object, caller: Caller = 'nobody'): RawReply {
  const argv = rawCallerArgv(ns, ['request', socket, JSON.stringify(request)], caller);
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 20000 });
  if (r.status !== 0) throw new Error(`raw caller exited ${r.status ?? r.signal}: ${r.stderr}`);
  return JSON.parse(r.stdout.trim()) as RawReply;
}

/**
 * A lease held from `ns` (by uid 65534 unless told) until the returned process is killed; resolves
 * with the reply (a refused request ends the process at once).
 */
export function rawHold(ns: string, socket: string, request: object, caller: Caller = 'nobody'): Promise<{ child: ChildProcess; reply: RawReply }> {
  const argv = rawCallerArgv(ns, ['request', socket, JSON.stringify(request), 'hold'], caller);
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`no reply within 20 s: ${out} ${err}`)), 20000);
    child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        resolve({ child, reply: JSON.parse(out.slice(0, nl)) as RawReply });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`raw caller exited ${code} before replying: ${err}`));
    });
  });
}
