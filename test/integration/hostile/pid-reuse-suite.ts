/**
 * Issue 11 item 9, one body for both kernels: the host (6.18) runs it for macvlan
 * (pid-reuse.test.ts), the VM (6.1) for ipvlan (pid-reuse.vmtest.ts).
 *
 * The attack: a process of uid 65534 connects, forks and exits; its child keeps the connection.
 * A root process in another namespace (the victim) is given the freed pid; the child then sends
 * a descriptor of the victim namespace it opened earlier (/proc/PID/ns/net of a uid-65534 process
 * there: ontapd takes only descriptors that read as "net:[...]", which a /run/netns file does not).
 * An ontapd that looks the namespace up by the SO_PEERCRED pid finds the victim's and places the
 * device there.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { TestNamespaces, eventually, linksOfKind, sweepStaleNamespaces } from '../../helpers/netns.js';
import { TestDaemon } from '../../helpers/ontapd.js';
import { describeWhen, hasCommand, isRoot, kernelHasKind, missing } from '../../helpers/requirements.js';

/** Not PATH's python3: that may be a shim under /root, which uid 65534 cannot run. */
const PYTHON = '/usr/bin/python3';

/**
 * Runs as uid 65534 in the caller namespace. argv: socket, device type, the victim's ns file,
 * "victim" or "own" (which namespace the child sends). Fd 3 is the test's control pipe: "go" to
 * send the request, then anything or its end to let go of the lease; its end before "go" stops it.
 */
const ATTACKER = String.raw`
import array, json, os, socket, sys
path, kind, victim_path, send = sys.argv[1:5]
victim = os.open(victim_path, os.O_RDONLY)
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(path)
if os.fork():
    os._exit(0)
s.settimeout(60)
ctl = os.fdopen(3, 'rb', buffering=0)
if ctl.readline() != b'go\n':
    sys.exit(1)
fd = victim if send == 'victim' else os.open('/proc/self/ns/net', os.O_RDONLY)
request = json.dumps({'v': 1, 'op': 'allocate', 'type': kind}).encode()
s.sendmsg([request], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', [fd]))])
print(s.recv(65536).decode() or '{}', flush=True)
ctl.readline()  # EOF or "done"
`;

/**
 * Runs as root: makes a process with pid argv[1] in the namespace file argv[2] (clone3 with
 * set_tid, so no other process on the machine is affected, unlike writing ns_last_pid), prints
 * "ready PID" once it is there, or "taken" if another process got the pid first, and keeps it
 * until stdin closes. The child dies with this process (PR_SET_PDEATHSIG).
 */
const TAKER = String.raw`
import ctypes, os, shutil, signal, struct, sys
want, nspath = int(sys.argv[1]), sys.argv[2]
libc = ctypes.PyDLL(None, use_errno=True)  # keeps the GIL across the call: the clone child resumes holding it
libc.syscall.restype = ctypes.c_long
nsfd = os.open(nspath, os.O_RDONLY)
sleep = shutil.which('sleep')
r, w = os.pipe()
tid = (ctypes.c_int * 1)(want)
# struct clone_args v1: flags pidfd child_tid parent_tid exit_signal stack stack_size tls set_tid set_tid_size
args = ctypes.create_string_buffer(struct.pack('=10Q', 0, 0, 0, 0, signal.SIGCHLD, 0, 0, 0, ctypes.addressof(tid), 1), 80)
pid = libc.syscall(ctypes.c_long(435), args, ctypes.c_size_t(80))
if pid == 0:
    libc.prctl(1, signal.SIGKILL)
    if libc.setns(nsfd, 0x40000000) != 0:
        os._exit(3)
    os.write(w, b'r')
    os.execv(sleep, ['sleep', '600'])
if pid < 0:
    e = ctypes.get_errno()
    print('taken' if e == 17 else 'error clone3: ' + os.strerror(e), flush=True)
    sys.exit(0)
os.close(w)
print('ready %d' % pid if os.read(r, 1) == b'r' else 'error setns', flush=True)
sys.stdin.read()
os.kill(pid, signal.SIGKILL)
os.waitpid(pid, 0)
`;

/** Lines of a child's stdout, in order, awaited one at a time. */
class Lines {
  private buffer = '';
  private readonly lines: string[] = [];
  private waiter: (() => void) | undefined;
  private ended = false;

  constructor(stream: Readable) {
    stream.setEncoding('utf8');
    stream.on('data', (s: string) => {
      this.buffer += s;
      let i;
      while ((i = this.buffer.indexOf('\n')) >= 0) {
        this.lines.push(this.buffer.slice(0, i));
        this.buffer = this.buffer.slice(i + 1);
      }
      this.waiter?.();
    });
    stream.on('end', () => {
      this.ended = true;
      this.waiter?.();
    });
  }

  /** `what` is called only for the error, so it can report output that arrived meanwhile. */
  async next(what: () => string, timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (this.lines.length === 0) {
      if (this.ended) throw new Error(`no ${what()}: the output ended`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${what()} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = undefined;
    }
    return this.lines.shift()!;
  }
}

interface Reply {
  ok: boolean;
  device?: { ifname: string };
  error?: { code: string; message: string };
}

export function pidReuseSuite(kind: 'macvlan' | 'ipvlan'): void {
  const reason = missing([
    [isRoot, 'needs root (network namespaces, clone3 with set_tid)'],
    [() => hasCommand('ip'), 'needs iproute2 (apt-get install iproute2)'],
    [() => hasCommand('setpriv'), 'needs setpriv (util-linux) to drop to uid 65534'],
    [() => existsSync(PYTHON), `needs ${PYTHON}`],
    [() => kernelHasKind(kind), `this kernel cannot create ${kind} devices`],
  ]);
  // Process starts under TCG take up to 2.4 s each (docs/testing.md); the request waits on two.
  const slow = process.env.ONTAP_IN_VM === '1' ? 10 : 1;

  describeWhen(`hostile callers: pid reuse (${kind})`, reason, () => {
    const nets = new TestNamespaces();
    let caller = '';
    let victim = '';
    let daemon: TestDaemon;
    const children: ChildProcess[] = [];
    /** A process of uid 65534 in the victim namespace: the attacker may open its /proc/PID/ns/net. */
    let resident: ChildProcess;

    before(async () => {
      sweepStaleNamespaces();
      const { host } = nets.uplink();
      caller = nets.add('caller');
      victim = nets.add('victim');
      resident = spawn('ip', ['netns', 'exec', victim, 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups',
        'sh', '-c', 'echo ready; exec sleep 600'], { stdio: ['ignore', 'pipe', 'inherit'] });
      children.push(resident);
      // Once it speaks it is in the victim namespace as uid 65534 (ip and setpriv exec in place).
      assert.equal(await new Lines(resident.stdout!).next(() => 'word from the resident', 5000 * slow), 'ready');
      // The request follows the connection by two process starts: far more than the default 5 s under TCG.
      daemon = new TestDaemon(host, ['up0'], ['--mode', '0666', '--request-timeout', '60000', '--family', kind]);
      await daemon.start();
    });

    after(async () => {
      for (const c of children) c.kill('SIGKILL');
      await daemon?.stop();
      daemon?.removeDir();
      nets.destroy();
    });

    /**
     * Connects as uid 65534, exits, gives the pid to a root process in the victim namespace, then
     * lets the child send `send`'s namespace. Calls `look` while the child holds the connection.
     */
    async function reusedPid(send: 'victim' | 'own', look: (reply: Reply) => void): Promise<void> {
      for (let attempt = 1; ; attempt++) {
        const attacker = spawn('ip', ['netns', 'exec', caller, 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups',
          PYTHON, '-c', ATTACKER, daemon.socket(), kind, `/proc/${resident.pid}/ns/net`, send], { stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
        children.push(attacker);
        let stderr = '';
        attacker.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
        const out = new Lines(attacker.stdout!);
        const control = attacker.stdio[3] as NodeJS.WritableStream;
        control.on('error', () => undefined); // EPIPE if the attacker died: its stderr tells why
        // 'exit' comes once the connecting process is reaped: its pid is free from then on.
        const connector = await new Promise<number>((resolve) => attacker.on('exit', () => resolve(attacker.pid!)));
        const taker = spawn(PYTHON, ['-c', TAKER, String(connector), `/run/netns/${victim}`], { stdio: ['pipe', 'pipe', 'inherit'] });
        children.push(taker);
        try {
          const took = await new Lines(taker.stdout!).next(() => 'word from the pid taker', 5000 * slow);
          if (took === 'taken' && attempt < 3) continue; // another process on the machine got the pid first
          assert.equal(took, `ready ${connector}`, 'a root process in the victim namespace has the connecting process\'s pid');
          assert.equal(statSync(`/proc/${connector}/ns/net`).ino, statSync(`/run/netns/${victim}`).ino, 'the reused pid is in the victim namespace');
          control.write('go\n');
          const reply = JSON.parse(await out.next(() => `reply (attacker's stderr: ${stderr})`, 10000 * slow)) as Reply;
          look(reply);
          return;
        } finally {
          control.end(); // the child lets go of the lease (or never sends)
          taker.stdin!.end();
        }
      }
    }

    test(`item 9: a pid reused by a root process in another namespace does not put a ${kind} there`, async () => {
      await reusedPid('victim', (reply) => {
        assert.deepEqual(linksOfKind(victim, kind).map((l) => l.ifname), [], 'no device in the victim namespace');
        assert.equal(reply.ok, false, `refused: ${JSON.stringify(reply)}`);
        assert.equal(reply.error?.code, 'forbidden');
        assert.match(reply.error?.message ?? '', /not the caller's own network namespace, the one this connection was made from/);
      });
      assert.match(daemon.log, /event=request-failed .*code=forbidden/);
      // The child that kept the connection is served in its own namespace, whoever has the pid now.
      let ifname = '';
      await reusedPid('own', (reply) => {
        assert.equal(reply.ok, true, `served: ${JSON.stringify(reply)}`);
        ifname = reply.device!.ifname;
        assert.deepEqual(linksOfKind(caller, kind).map((l) => l.ifname), [ifname], 'the device is in the caller namespace');
        assert.deepEqual(linksOfKind(victim, kind).map((l) => l.ifname), [], 'and not in the victim namespace');
      });
      await eventually(`${ifname} released with the lease`, () => linksOfKind(caller, kind).length === 0);
    });
  });
}
