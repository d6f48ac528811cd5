import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from './args.js';

export const DEFAULT_SOCKET_DIR = '/run/ontap';

/** No SOCKET given and none to be found: ontapd is unreachable (69), not a usage error. */
export class NoSocketFound extends Error {
  override readonly name = 'NoSocketFound';
}

/** SOCKET argument, else $ONTAP_SOCKET, else the only port.* in /run/ontap. */
export function resolveSocket(arg: string | undefined, env: NodeJS.ProcessEnv, dir = DEFAULT_SOCKET_DIR): string {
  if (arg !== undefined) return arg;
  if (env.ONTAP_SOCKET) return env.ONTAP_SOCKET;
  let ports: string[] = [];
  try {
    ports = readdirSync(dir).filter((n) => n.startsWith('port.')).sort();
  } catch {
    // no directory: no ontapd
  }
  if (ports.length === 1) return join(dir, ports[0]!);
  if (ports.length === 0) throw new NoSocketFound(`no SOCKET given, ONTAP_SOCKET unset and no ontapd socket in ${dir} (is ontapd running?)`);
  throw new UsageError(`no SOCKET given and ${dir} has several: ${ports.map((p) => join(dir, p)).join(', ')}; name one`);
}
