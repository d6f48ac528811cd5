import { closeSync, fstatSync, statSync } from 'node:fs';
import { native } from '../native/index.js';

/**
 * Whether the network namespace of nsFd is owned by ontapd's own user namespace, i.e. whether
 * CAP_NET_ADMIN over it takes the privilege ontapd's callers do not have. A namespace made in a
 * user namespace of its own (`unshare -Urn`, a rootless container) gives its owner CAP_NET_ADMIN
 * over the devices ontapd puts there. EPERM (the owner is outside ontapd's user namespace) is
 * "not ours" too.
 */
export function ownedByOurUserNamespace(nsFd: number): boolean {
  let ownerFd: number;
  try {
    ownerFd = native().nsOwnerUserns(nsFd);
  } catch (e) {
    if ((e as { code?: string }).code === 'EPERM') return false;
    throw e;
  }
  try {
    const owner = fstatSync(ownerFd, { bigint: true });
    const ours = statSync('/proc/self/ns/user', { bigint: true });
    return owner.dev === ours.dev && owner.ino === ours.ino;
  } finally {
    closeSync(ownerFd);
  }
}
