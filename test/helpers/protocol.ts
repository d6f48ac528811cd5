import { AF_UNIX, SOCK_SEQPACKET } from '../../src/native/constants.js';
import { native } from '../../src/native/index.js';

export interface RawReply {
  reply: any;
  fds: number[];
  eof: boolean;
}

/** A raw connection to ontapd, to send it what a well-behaved client never would. */
export class RawConnection {
  readonly fd: number;

  constructor(path: string, timeoutMs = 5000) {
    this.fd = native().socket(AF_UNIX, SOCK_SEQPACKET, 0, false);
    native().setTimeouts(this.fd, timeoutMs, timeoutMs);
    native().connectUnix(this.fd, path);
  }

  send(data: Buffer | string | object, fds?: number[]): void {
    const bytes = Buffer.isBuffer(data) ? data : Buffer.from(typeof data === 'string' ? data : JSON.stringify(data));
    native().sendmsg(this.fd, bytes, fds, undefined);
  }

  receive(): RawReply {
    const r = native().recvmsg(this.fd, 65536, 32);
    if (r === null) throw new Error('no reply within the timeout');
    if (r.length === 0) return { reply: undefined, fds: r.fds, eof: true };
    return { reply: JSON.parse(r.data.toString('utf8')), fds: r.fds, eof: false };
  }

  close(): void {
    native().close(this.fd);
  }
}

/** Sends one record and returns the reply, closing everything. */
export function exchange(path: string, data: Buffer | string | object, fds?: number[]): RawReply {
  const c = new RawConnection(path);
  try {
    c.send(data, fds);
    const r = c.receive();
    for (const fd of r.fds) native().close(fd);
    return r;
  } finally {
    c.close();
  }
}
