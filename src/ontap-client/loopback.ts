import { RouteSocket } from '../netns/route-socket.js';

const IFF_UP = 0x1;

/** A new network namespace starts with lo down; workloads expect 127.0.0.1 to work. */
export function bringUpLoopback(): void {
  const rtnl = RouteSocket.open();
  try {
    const lo = rtnl.getLink({ ifname: 'lo' });
    if ((lo.flags & IFF_UP) === 0) rtnl.setLink({ ifindex: lo.ifindex }, { up: true });
  } finally {
    rtnl.close();
  }
}
