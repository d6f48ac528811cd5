import { createRequire } from 'node:module';
import type { Logger } from '../common/log.js';

interface UnixDgramSocket {
  send(buf: Buffer, offset: number, length: number, path: string, callback?: (err?: Error) => void): void;
  close(): void;
  on(event: 'error', listener: (err: Error) => void): void;
}
interface UnixDgramModule {
  createSocket(type: 'unix_dgram'): UnixDgramSocket;
}

/**
 * sd_notify(3): one datagram to $NOTIFY_SOCKET. unix-dgram does exactly this for filesystem paths;
 * it copies sun_path with strncpy, so abstract sockets ("@...") cannot be reached and are
 * reported instead of silently ignored (systemd itself uses /run/systemd/notify).
 */
export function sdNotify(state: string, log: Logger, env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  const path = env.NOTIFY_SOCKET;
  if (path === undefined || path === '') return Promise.resolve(false);
  if (path.startsWith('@')) {
    log.warn('notify-unsupported', { socket: path, reason: 'abstract NOTIFY_SOCKET is not supported' });
    return Promise.resolve(false);
  }
  const require = createRequire(import.meta.url);
  const unix = require('unix-dgram') as UnixDgramModule;
  const socket = unix.createSocket('unix_dgram');
  const message = Buffer.from(state);
  return new Promise((resolve) => {
    socket.on('error', (err) => {
      log.warn('notify-failed', { socket: path, error: err.message });
      socket.close();
      resolve(false);
    });
    socket.send(message, 0, message.length, path, (err) => {
      if (err) log.warn('notify-failed', { socket: path, error: err.message });
      socket.close();
      resolve(!err);
    });
  });
}
