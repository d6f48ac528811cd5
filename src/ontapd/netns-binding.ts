/**
 * The namespace binding (docs/design.md "The namespace binding"): an ipvlan/macvlan goes into the
 * network namespace the connection was made from, and the descriptor the caller sends must name it.
 *
 * The connection's namespace is asked of the kernel (SIOCGSKNS on our end of it), not looked up by
 * the SO_PEERCRED pid: that pid is a number recorded at connect(), and once the connecting
 * process has exited any process, in any namespace, may get it (issue 11 item 9).
 */
import { closeSync, fstatSync, readlinkSync } from 'node:fs';
import { isErrno, native } from '../native/index.js';
import { RequestError } from './errors.js';

/** A namespace as fstat names it: nsfs gives each namespace one inode. */
export interface NetnsId {
  dev: bigint;
  ino: bigint;
}

/** The namespace the peer created its socket in, which is where an accepted unix connection belongs. */
function connectionNetns(connFd: number): NetnsId {
  let fd: number;
  try {
    fd = native().socketNetns(connFd);
  } catch (e) {
    // EPERM: no CAP_NET_ADMIN over the namespace's owner, so no device could be made there either.
    throw new RequestError(isErrno(e, 'EPERM') ? 'forbidden' : 'internal',
      `cannot tell which network namespace this connection was made from: ${(e as Error).message}`);
  }
  try {
    const { dev, ino } = fstatSync(fd, { bigint: true });
    return { dev, ino };
  } finally {
    closeSync(fd);
  }
}

/**
 * Checks that `sentFd`, the descriptor that came with the request, is the network namespace of
 * the connection `connFd`, and returns that namespace; throws a RequestError otherwise.
 */
export function bindNetns(connFd: number, sentFd: number): NetnsId {
  let given;
  try {
    // Only a namespace descriptor is looked at further (fstat of another kind, FUSE, may block);
    // readlink of /proc/self/fd/N never blocks and names an nsfs file opened at /proc/PID/ns/net
    // as "net:[INODE]".
    if (!readlinkSync(`/proc/self/fd/${sentFd}`).startsWith('net:[')) {
      throw new RequestError('bad-request', 'the descriptor sent is not an open /proc/self/ns/net');
    }
    given = fstatSync(sentFd, { bigint: true });
  } catch (e) {
    if (e instanceof RequestError) throw e;
    throw new RequestError('internal', `cannot look at the descriptor sent: ${(e as Error).message}`);
  }
  const actual = connectionNetns(connFd);
  if (given.dev !== actual.dev || given.ino !== actual.ino) {
    throw new RequestError('forbidden',
      'the namespace descriptor is not the caller\'s own network namespace, the one this connection was made from: send /proc/self/ns/net');
  }
  return actual;
}
