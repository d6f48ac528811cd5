/**
 * Many processes, each in a given network namespace (/run/netns/NS) and a UTS namespace of its own
 * with a given host name: one Python parent forks them (ctypes setns/unshare: the standard library
 * has os.setns only from 3.12). They hold until the parent goes: each waits on a pipe only the
 * parent writes, so killing the parent (even SIGKILL) ends them all.
 */
import { spawn, type ChildProcess } from 'node:child_process';

const HOLD = String.raw`
import ctypes, os, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET, CLONE_NEWUTS = 0x40000000, 0x04000000
pairs = [l.split(' ', 1) for l in sys.stdin.read().splitlines() if l]
r, w = os.pipe()
pids = []
for ns, name in pairs:
    pid = os.fork()
    if pid == 0:
        os.close(w)
        fd = os.open('/run/netns/' + ns, os.O_RDONLY)
        if libc.setns(fd, CLONE_NEWNET) != 0 or libc.unshare(CLONE_NEWUTS) != 0:
            os._exit(1)
        socket.sethostname(name)
        os.read(r, 1)
        os._exit(0)
    pids.append(pid)
os.close(r)
print('ready', *pids, flush=True)
import signal
signal.pause()
`;

export interface UtsHolders {
  parent: ChildProcess;
  /** Each pair's process, in order (its hostname can be changed with nsenter -t PID -u). */
  pids: number[];
  /** Kills the parent; the children see the pipe close and exit. */
  stop(): Promise<void>;
}

export async function holdUts(pairs: Array<{ ns: string; hostname: string }>): Promise<UtsHolders> {
  const parent = spawn('python3', ['-I', '-c', HOLD], { stdio: ['pipe', 'pipe', 'inherit'] });
  parent.stdin!.end(pairs.map((p) => `${p.ns} ${p.hostname}\n`).join(''));
  const exited = new Promise<void>((r) => parent.once('exit', () => r()));
  let out = '';
  const pids = await new Promise<number[]>((resolve, reject) => {
    parent.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = /^ready( \d+)*\n/m.exec(out);
      if (line) resolve(line[0].trim().split(' ').slice(1).map(Number));
    });
    parent.once('exit', (code) => reject(new Error(`the UTS holder exited with ${code}`)));
  });
  return {
    parent,
    pids,
    stop: async () => {
      parent.kill('SIGKILL');
      await exited;
    },
  };
}
