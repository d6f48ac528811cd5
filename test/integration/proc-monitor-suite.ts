/**
 * ProcEventMonitor against the running kernel: the host's (proc-monitor.test.ts) and Debian's 6.1
 * in the VM guest (proc-monitor.vmtest.ts). The connector reports the whole machine, and other
 * test runs fork meanwhile, so every assertion looks only at the processes this test made.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { SO_RCVBUFFORCE, SOL_SOCKET } from '../../src/native/constants.js';
import { native } from '../../src/native/index.js';
import { ProcEventMonitor, type ProcMonitorEvent } from '../../src/netns/proc-monitor.js';
import { eventually } from '../helpers/netns.js';
import { describeWhen, hasCommand, isRoot, missing } from '../helpers/requirements.js';

/** Under TCG the guest is ~20 times slower: waits there are longer (nothing asserts a duration). */
const WAIT_MS = process.env.ONTAP_IN_VM === '1' ? 20_000 : 5_000;
const SIGCHLD = 17;

function inInitialNamespaces(): boolean {
  try {
    return statSync('/proc/self/ns/user').ino === 0xeffffffd && statSync('/proc/self/ns/pid').ino === 0xeffffffc;
  } catch {
    return false;
  }
}

/** The distribution's python3 rather than a shim (pyenv's is a shell script that execs several times). */
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

const fdCount = (): number => readdirSync('/proc/self/fd').length;

type Seen = ProcMonitorEvent | { kind: 'overrun' };

function record(m: ProcEventMonitor): Seen[] {
  const seen: Seen[] = [];
  m.on('event', (e) => seen.push(e));
  m.on('overrun', () => seen.push({ kind: 'overrun' }));
  return seen;
}

/** Events of thread group `tgid` (and the fork that made it). */
type Lifecycle = Exclude<ProcMonitorEvent, { kind: 'other' }>;

function ofProcess(seen: Seen[], tgid: number): Lifecycle[] {
  return seen.filter((e): e is Lifecycle => (e.kind === 'fork' ? e.childTgid === tgid : (e.kind === 'exec' || e.kind === 'exit') && e.tgid === tgid));
}

function brief(e: ProcMonitorEvent): string {
  switch (e.kind) {
    case 'fork':
      return `fork ${e.parentPid}/${e.parentTgid} -> ${e.childPid}/${e.childTgid}`;
    case 'exec':
      return `exec ${e.pid}/${e.tgid}`;
    case 'exit':
      return `exit ${e.pid}/${e.tgid} code ${e.exitCode} signal ${e.exitSignal}`;
    default:
      return `other ${e.what}`;
  }
}

async function run(cmd: string, args: string[]): Promise<{ pid: number; code: number | null; stdout: string }> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  const [code] = (await once(child, 'close')) as [number | null];
  return { pid: child.pid!, code, stdout };
}

export function procMonitorSuite(kernel: string): void {
  const reason = missing([
    [isRoot, 'needs root (CAP_NET_ADMIN for the process events connector on Linux 6.1)'],
    [inInitialNamespaces, 'must run in the initial user and pid namespaces (the kernel ignores subscriptions from others)'],
    [() => hasCommand('python3'), 'needs python3 (a process with a thread)'],
  ]);

  describeWhen(`ProcEventMonitor: fork, exec and exit from the process events connector (${kernel})`, reason, () => {
    const open: ProcEventMonitor[] = [];
    after(() => {
      for (const m of open) m.close();
    });
    const monitor = (opts: Parameters<typeof ProcEventMonitor.open>[0] = {}): ProcEventMonitor => {
      const m = ProcEventMonitor.open(opts);
      open.push(m);
      return m;
    };

    test('the kernel acks the subscription; a child\'s fork, exec and exit come in order with its pids and wait status', async () => {
      const m = monitor();
      const seen = record(m);
      const subscribed = once(m, 'subscribed');
      // In force as soon as open() returns: the kernel handles LISTEN inside sendmsg().
      const r = await run('/bin/sh', ['-c', 'exit 3']);
      assert.equal(r.code, 3);
      await eventually('the exit event of the child', () => ofProcess(seen, r.pid).some((e) => e.kind === 'exit'), WAIT_MS);
      await subscribed;
      assert.equal(m.subscribed, true);
      assert.deepEqual(ofProcess(seen, r.pid), [
        { kind: 'fork', parentPid: process.pid, parentTgid: process.pid, childPid: r.pid, childTgid: r.pid },
        { kind: 'exec', pid: r.pid, tgid: r.pid },
        { kind: 'exit', pid: r.pid, tgid: r.pid, exitCode: 3 << 8, exitSignal: SIGCHLD, parentPid: process.pid, parentTgid: process.pid },
      ]);
    });

    test('a thread: its fork has childPid != childTgid, its exit exitSignal -1, before its process\'s exit', async () => {
      const m = monitor();
      const seen = record(m);
      // join() returns when the thread's Python code is done, before the kernel has seen it exit
      // (seen: the process's exit event first, now and then); once /proc/self/task/TID is gone its
      // exit event has been queued (proc_exit_connector runs before the task is released).
      const script = [
        'import os, threading, time',
        't = threading.Thread(target=lambda: print(threading.get_native_id(), flush=True))',
        't.start()',
        't.join()',
        'while os.path.exists(f"/proc/self/task/{t.native_id}"): time.sleep(0.001)',
      ].join('\n');
      const r = await run(PYTHON, ['-I', '-S', '-c', script]);
      assert.equal(r.code, 0);
      const tid = Number(r.stdout.trim());
      assert.ok(Number.isInteger(tid) && tid !== r.pid, r.stdout);
      await eventually('the exit event of python3', () => ofProcess(seen, r.pid).some((e) => e.kind === 'exit' && e.pid === r.pid), WAIT_MS);
      const mine = ofProcess(seen, r.pid);
      const shapes = mine.map((e) => `${e.kind}:${e.kind === 'fork' ? e.childPid : e.pid}`);
      assert.deepEqual(shapes, [`fork:${r.pid}`, `exec:${r.pid}`, `fork:${tid}`, `exit:${tid}`, `exit:${r.pid}`], mine.map(brief).join('\n'));
      const threadExit = mine[3]!;
      assert.ok(threadExit.kind === 'exit' && threadExit.tgid === r.pid && threadExit.exitSignal === -1, brief(threadExit));
    });

    test('close() unsubscribes and leaves no descriptor; no event arrives after it', async () => {
      const before = fdCount();
      const m = ProcEventMonitor.open();
      assert.equal(fdCount(), before + 1);
      const seen = record(m);
      await once(m, 'subscribed');
      m.close();
      assert.equal(fdCount(), before);
      const r = await run('/bin/true', []);
      assert.equal(r.code, 0);
      // Another monitor, opened after, does see a later child: the connector still works.
      const witness = monitor();
      const wseen = record(witness);
      const r2 = await run('/bin/true', []);
      await eventually('the witness sees its child exit', () => ofProcess(wseen, r2.pid).some((e) => e.kind === 'exit'), WAIT_MS);
      assert.deepEqual(seen, []);
    });

    test('overrun: a fork burst into a tiny buffer while the loop is blocked gives one "overrun", after the events queued before the loss', async () => {
      const m = monitor({ rcvbuf: 1 }); // the kernel's minimum: a handful of events
      const seen = record(m);
      await once(m, 'subscribed');
      seen.length = 0;
      // spawnSync blocks the event loop: nothing reads while sh forks and execs 60 children.
      const burst = spawnSync('/bin/sh', ['-c', 'i=0; while [ $i -lt 60 ]; do /bin/true; i=$((i+1)); done'], { stdio: 'ignore' });
      assert.equal(burst.status, 0);
      // From here on the machine's other processes must not overflow it again while we look.
      native().setsockoptInt(m.fd, SOL_SOCKET, SO_RCVBUFFORCE, 4 << 20);
      await eventually('the overrun', () => seen.some((e) => e.kind === 'overrun'), WAIT_MS);
      const at = seen.findIndex((e) => e.kind === 'overrun');
      const sh = burst.pid;
      const ofBurst = (e: Seen): boolean =>
        e.kind === 'fork' ? e.childTgid === sh || e.parentTgid === sh : (e.kind === 'exec' || e.kind === 'exit') && (e.tgid === sh || e.pid === sh);
      const burstBefore = seen.slice(0, at).filter(ofBurst) as ProcMonitorEvent[];
      console.log(`overrun: ${at} events before it, ${burstBefore.length} of them the burst's`);
      // The loss: the burst made at least 3 * 60 + 3 events; only a few fit.
      assert.ok(burstBefore.length < 20, burstBefore.map(brief).join('\n'));
      // What was queued before the loss is a prefix of the burst (unless the machine's other
      // processes filled the few places first): sh's fork and exec, then fork, exec, exit of each child.
      burstBefore.forEach((e, i) => {
        const j = (i - 2) % 3;
        const ok =
          i === 0 ? e.kind === 'fork' && e.parentTgid === process.pid && e.childPid === sh
          : i === 1 ? e.kind === 'exec' && e.pid === sh
          : j === 0 ? e.kind === 'fork' && e.parentTgid === sh && e.childPid === e.childTgid
          : e.kind === (j === 1 ? 'exec' : 'exit') && e.pid === (burstBefore[i - j] as { childPid: number }).childPid;
        assert.ok(ok, `burst event ${i}: ${brief(e)}\n${burstBefore.map(brief).join('\n')}`);
      });
      // After the overrun a fresh child is seen whole, and the monitor still works.
      const r = await run('/bin/sh', ['-c', 'exit 0']);
      await eventually('the exit event of a child after the overrun', () => ofProcess(seen, r.pid).some((e) => e.kind === 'exit'), WAIT_MS);
      const after = seen.slice(at + 1);
      assert.equal(after.filter(ofBurst).length, 0, 'every burst event after the loss was dropped with it');
      assert.equal(seen.filter((e) => e.kind === 'overrun').length, 1);
      assert.deepEqual(ofProcess(after, r.pid).map((e) => e.kind), ['fork', 'exec', 'exit']);
    });
  });
}
