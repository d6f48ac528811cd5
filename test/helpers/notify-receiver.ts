/**
 * The NOTIFY_SOCKET a service manager gives a Type=notify service: a unix datagram socket whose
 * messages (READY=1, STATUS=..., STOPPING=1) are collected as strings. Made with the addon (Node
 * has no unix datagram sockets).
 */
import { native, type Poller } from '../../src/native/index.js';
import { AF_UNIX, SOCK_DGRAM } from '../../src/native/constants.js';

export class NotifyReceiver {
  readonly messages: string[] = [];
  private readonly fd: number;
  private readonly poller: Poller;

  constructor(readonly path: string) {
    const n = native();
    this.fd = n.socket(AF_UNIX, SOCK_DGRAM, 0, true);
    n.bindUnix(this.fd, path);
    this.poller = n.poll(this.fd, (err, readable) => {
      if (err) {
        this.messages.push(`error: ${err.message}`);
        return;
      }
      if (!readable) return;
      for (let r = n.recvmsg(this.fd, 4096, 0); r !== null; r = n.recvmsg(this.fd, 4096, 0)) this.messages.push(r.data.toString());
    });
    this.poller.start(true, false);
  }

  close(): void {
    this.poller.close();
    native().close(this.fd);
  }
}
