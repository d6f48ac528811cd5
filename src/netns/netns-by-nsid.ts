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

/**
 * Opens the namespace with `nsid` (read-only): the caller owns the descriptor. undefined
 * when none of the places above holds it.
 */
export function openNetnsByNsid(rtnl: NsidSource, nsid: number): number | undefined {
  const seen = new Set<string>();
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
    let fd: number;
    try {
      fd = openSync(path, fsConstants.O_RDONLY); // libuv opens every file O_CLOEXEC
    } catch {
      continue;
    }
    let found: number | undefined;
    try {
      found = rtnl.getNsid(fd);
    } catch {
      found = undefined;
    }
    if (found === nsid) return fd;
    closeSync(fd);
  }
  return undefined;
}
