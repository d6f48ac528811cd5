import type { Logger } from '../common/log.js';
import { native } from '../native/index.js';
import { AF_UNIX, SOCK_DGRAM } from '../native/constants.js';

/**
 * sd_notify(3): one datagram to $NOTIFY_SOCKET, through the addon's own socket calls. (unix-dgram
 * did this before; it needs a native build of its own, which npm 11 skips for dependencies of a
 * global install, and then READY=1 never reached systemd.) Abstract sockets ("@...") are reported
 * instead of silently ignored; systemd itself uses /run/systemd/notify.
 */
export function sdNotify(state: string, log: Logger, env: NodeJS.ProcessEnv = process.env): boolean {
  const path = env.NOTIFY_SOCKET;
  if (path === undefined || path === '') return false;
  if (path.startsWith('@')) {
    log.warn('notify-unsupported', { socket: path, reason: 'abstract NOTIFY_SOCKET is not supported' });
    return false;
  }
  const n = native();
  let fd = -1;
  try {
    // Non-blocking: a service manager that does not read must not stall the daemon.
    fd = n.socket(AF_UNIX, SOCK_DGRAM, 0, true);
    n.connectUnix(fd, path);
    n.sendmsg(fd, Buffer.from(state), undefined, undefined);
    return true;
  } catch (e) {
    log.warn('notify-failed', { socket: path, error: (e as Error).message });
    return false;
  } finally {
    if (fd >= 0) n.close(fd);
  }
}
