import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, renameSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { listenFds, ListenFdsError } from '../common/listen-fds.js';
import { AF_UNIX, SOCK_SEQPACKET } from '../native/constants.js';
import { native } from '../native/index.js';

export class ListenerError extends Error {
  override readonly name = 'ListenerError';
}

export interface PortSocket {
  uplink: string;
  fd: number;
  /** The path we created and must remove on exit; undefined for sockets systemd owns. */
  path: string | undefined;
  ino: bigint | undefined;
}

export function portPath(dir: string, uplink: string): string {
  return join(dir, `port.${uplink}`);
}

/** True when something accepts connections at path: another ontapd serves this uplink. */
function isLive(path: string): boolean {
  const fd = native().socket(AF_UNIX, SOCK_SEQPACKET, 0, false);
  try {
    native().connectUnix(fd, path);
    return true;
  } catch {
    return false;
  } finally {
    native().close(fd);
  }
}

/**
 * Binds DIR/port.UPLINK. The socket is bound under a temporary name, given its group and mode,
 * and renamed into place, so no client ever sees it with the wrong permissions; a stale socket
 * (nobody listening) is replaced, a live one is an error.
 */
export function bindPort(dir: string, uplink: string, mode: number, gid: number | undefined): PortSocket {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  // Only we may write in the directory: the temporary name below is predictable, and chmod/chown
  // follow symlinks, so a directory others can write to would let them aim those at any file.
  const st = lstatSync(dir);
  if (!st.isDirectory() || st.uid !== process.geteuid?.() || (st.mode & 0o022) !== 0) {
    throw new ListenerError(`${dir} must be a directory owned by uid ${process.geteuid?.()} that no one else can write to`);
  }
  const path = portPath(dir, uplink);
  if (existsSync(path)) {
    if (!lstatSync(path).isSocket()) throw new ListenerError(`${path} exists and is not a socket: remove it or choose another --socket-dir`);
    if (isLive(path)) throw new ListenerError(`another ontapd already serves ${path}`);
  }
  const tmp = join(dir, `.port.${uplink}.${process.pid}`);
  try { unlinkSync(tmp); } catch { /* not there */ }
  const fd = native().socket(AF_UNIX, SOCK_SEQPACKET, 0, true);
  try {
    native().bindUnix(fd, tmp);
    chmodSync(tmp, mode);
    if (gid !== undefined) chownSync(tmp, 0, gid);
    native().listen(fd, 256);
    renameSync(tmp, path);
  } catch (e) {
    native().close(fd);
    try { unlinkSync(tmp); } catch { /* not there */ }
    throw e;
  }
  return { uplink, fd, path, ino: lstatSync(path, { bigint: true }).ino };
}

/** Removes our socket file, unless something else has replaced it since. */
export function unlinkPort(port: PortSocket): void {
  if (port.path === undefined) return;
  try {
    if (lstatSync(port.path, { bigint: true }).ino === port.ino) unlinkSync(port.path);
  } catch {
    // already gone
  }
}

/**
 * Sockets passed by systemd (sd_listen_fds, see listen-fds.ts); names come from LISTEN_FDNAMES
 * (FileDescriptorName=, "port.UPLINK" or "UPLINK") or else from the bound path.
 * Returns uplink -> fd.
 */
export function socketsFromSystemd(env: NodeJS.ProcessEnv = process.env): Map<string, number> {
  const result = new Map<string, number>();
  let passed;
  try {
    passed = listenFds(env);
  } catch (e) {
    if (e instanceof ListenFdsError) throw new ListenerError(e.message);
    throw e;
  }
  for (const { fd, name: fdName } of passed) {
    const info = native().socketInfo(fd);
    if (info.domain !== AF_UNIX || info.type !== SOCK_SEQPACKET || !info.listening) {
      throw new ListenerError(`systemd passed fd ${fd} that is not a listening SOCK_SEQPACKET unix socket (use ListenSequentialPacket=)`);
    }
    let name = fdName;
    if (name === undefined || name.endsWith('.socket')) {
      const base = info.path?.split('/').pop();
      name = base ?? '';
    }
    const uplink = name.startsWith('port.') ? name.slice(5) : name;
    if (uplink === '') throw new ListenerError(`cannot tell which uplink systemd's fd ${fd} is for: set FileDescriptorName=port.UPLINK`);
    native().setCloexec(fd, true);
    result.set(uplink, fd);
  }
  delete env.LISTEN_PID;
  delete env.LISTEN_FDS;
  delete env.LISTEN_FDNAMES;
  return result;
}
