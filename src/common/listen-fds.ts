/**
 * sd_listen_fds(3) without libsystemd: the descriptors a socket activator (systemd, the Shepherd,
 * s6-fdholder, ...) passed to this very process. Used by ontapd (its listening sockets) and by
 * ontap (which hands them on to COMMAND). Imports nothing: the client loads it.
 */

/** SD_LISTEN_FDS_START: passed descriptors are 3, 4, ... */
export const LISTEN_FDS_START = 3;
/** More than this many is a broken environment, not a socket unit. */
export const MAX_LISTEN_FDS = 1024;

export class ListenFdsError extends Error {
  override readonly name = 'ListenFdsError';
}

export interface ListenFd {
  fd: number;
  /** Its LISTEN_FDNAMES entry (FileDescriptorName=); undefined when missing, empty or "unknown". */
  name: string | undefined;
}

const DECIMAL = /^[0-9]+$/;

/**
 * The passed descriptors, in order. None unless LISTEN_PID is `pid`: the variables may have been
 * inherited from a parent they were meant for (a LISTEN_PID that is no pid at all is nobody's).
 * Throws ListenFdsError when LISTEN_PID is ours but LISTEN_FDS is not a count of 0 to
 * MAX_LISTEN_FDS. LISTEN_FDNAMES is colon-separated, by position; it may name fewer descriptors.
 * The environment is left as it is: deleting the variables is the caller's decision.
 */
export function listenFds(env: NodeJS.ProcessEnv = process.env, pid: number = process.pid): ListenFd[] {
  const listenPid = env.LISTEN_PID;
  if (listenPid === undefined || !DECIMAL.test(listenPid) || Number(listenPid) !== pid) return [];
  const raw = env.LISTEN_FDS ?? '0';
  const count = DECIMAL.test(raw) ? Number(raw) : NaN;
  if (!(count <= MAX_LISTEN_FDS)) {
    throw new ListenFdsError(`LISTEN_FDS must be a count of 0 to ${MAX_LISTEN_FDS} descriptors, not "${raw}"`);
  }
  const names = env.LISTEN_FDNAMES === undefined ? [] : env.LISTEN_FDNAMES.split(':');
  return Array.from({ length: count }, (_, i) => {
    const name = names[i];
    return { fd: LISTEN_FDS_START + i, name: name === undefined || name === '' || name === 'unknown' ? undefined : name };
  });
}
