/**
 * A descriptor of the namespace that has a given nsid in ours. The kernel names namespaces to us by
 * nsid (events, dumps) but has no call that opens one by nsid: so look where namespaces are held
 * open (processes' /proc/PID/ns/net, and the bind mounts under /run/netns that `ip netns` makes),
 * open each distinct one once and ask the kernel its nsid (RTM_GETNSID with NETNSA_FD). The
 * answer comes from the kernel, so a process that changes namespaces meanwhile can make us miss,
 * never pick the wrong one.
 *
 * A namespace no process is in and nobody mounted cannot be found; nor one behind a /proc we may
 * not read (another uid's process needs CAP_SYS_PTRACE).
 */
import { closeSync, openSync, readdirSync, statSync, constants as fsConstants } from 'node:fs';

export interface NsidSource {
  getNsid(nsFd: number): number | undefined;
}

const MOUNT_DIRS = ['/run/netns', '/var/run/netns'];

function* candidates(): Generator<string> {
  for (const dir of MOUNT_DIRS) {
    let names: string[] = [];
    try {
      names = readdirSync(dir);
    } catch {
      // none there
    }
    for (const n of names) yield `${dir}/${n}`;
  }
  let pids: string[] = [];
  try {
    pids = readdirSync('/proc').filter((n) => /^\d+$/.test(n));
  } catch {
    return;
  }
  for (const pid of pids) yield `/proc/${pid}/ns/net`;
}

interface Known {
  path: string;
  nsid: number;
}

/**
 * Opens namespaces by nsid, remembering where it saw each one: a workload's namespace is found by
 * one scan, and so are the others that exist by then (ontap-zone meets a burst of new workloads
 * one after the other: a scan each would read every /proc/PID/ns/net a thousand times). What it
 * remembers is only a hint: the descriptor it returns has been asked its nsid.
 */
export class NetnsFinder {
  /** `dev:ino` of a namespace -> where it was seen and the nsid it had. */
  private known = new Map<string, Known>();
  private readonly byNsid = new Map<number, string>();
  /** Full scans made (for tests and status). */
  scans = 0;

  constructor(private readonly rtnl: NsidSource) {}

  /** A read-only descriptor of the namespace with `nsid` (the caller owns it), or undefined. */
  open(nsid: number): number | undefined {
    const key = this.byNsid.get(nsid);
    const hint = key === undefined ? undefined : this.known.get(key);
    if (hint !== undefined) {
      const fd = this.openIf(hint.path, nsid);
      if (fd !== undefined) return fd;
    }
    // A namespace's inode number can be reused once it is gone: a miss trusting what was known is
    // checked by a scan that trusts nothing.
    return this.scan(nsid, true) ?? this.scan(nsid, false);
  }

  /** Opens `path` if it is (still) the namespace with `nsid`. */
  private openIf(path: string, nsid: number): number | undefined {
    let fd: number;
    try {
      fd = openSync(path, fsConstants.O_RDONLY); // libuv opens every file O_CLOEXEC
    } catch {
      return undefined;
    }
    let found: number | undefined;
    try {
      found = this.rtnl.getNsid(fd);
    } catch {
      found = undefined;
    }
    if (found === nsid) return fd;
    closeSync(fd);
    return undefined;
  }

  /** Every place once: namespaces not known yet are opened and asked; what is seen replaces what was known. */
  private scan(nsid: number, trustKnown: boolean): number | undefined {
    this.scans++;
    const seen = new Set<string>();
    const known = new Map<string, Known>();
    let result: number | undefined;
    for (const path of candidates()) {
      let key: string;
      try {
        const st = statSync(path, { bigint: true });
        key = `${st.dev}:${st.ino}`;
      } catch {
        continue; // exited, or not ours to read
      }
      if (seen.has(key)) continue;
      seen.add(key);
      const before = this.known.get(key);
      if (trustKnown && before !== undefined && before.nsid !== nsid) {
        known.set(key, before);
        continue;
      }
      let fd: number;
      try {
        fd = openSync(path, fsConstants.O_RDONLY);
      } catch {
        continue;
      }
      let found: number | undefined;
      try {
        found = this.rtnl.getNsid(fd);
      } catch {
        found = undefined;
      }
      // A namespace without an nsid yet may get one: it is asked again at the next scan.
      if (found !== undefined) known.set(key, { path, nsid: found });
      if (found === nsid && result === undefined) result = fd;
      else closeSync(fd);
    }
    this.known = known;
    this.byNsid.clear();
    for (const [key, k] of known) this.byNsid.set(k.nsid, key);
    return result;
  }
}
