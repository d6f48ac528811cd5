/**
 * Allocation churn, run as its own process inside a test namespace:
 *   node storm.js SOCKET TYPE CYCLES CONCURRENCY
 * Each cycle connects, gets a device, and closes the connection at once. Prints one JSON line.
 */
import { openSync, closeSync, constants } from 'node:fs';
import { requestDevice } from '../../src/ontap-client/client.js';
import { native } from '../../src/native/index.js';
import { isTapType, type DeviceType } from '../../src/protocol/messages.js';

const [socket, type, cyclesArg, concurrencyArg] = process.argv.slice(2) as [string, DeviceType, string, string];
const cycles = Number(cyclesArg);
const concurrency = Number(concurrencyArg);
const nsFd = isTapType(type) ? undefined : openSync('/proc/self/ns/net', constants.O_RDONLY);
let ok = 0;
const errors: string[] = [];
const started = process.hrtime.bigint();
// Hold up to `concurrency` leases at once, releasing the oldest first.
const held: number[] = [];
for (let i = 0; i < cycles; i++) {
  try {
    const lease = requestDevice(socket, { v: 1, op: 'allocate', type, ...(isTapType(type) ? { queues: 1 } : {}) }, nsFd);
    for (const fd of lease.tapFds) native().close(fd);
    held.push(lease.fd);
    ok++;
  } catch (e) {
    errors.push((e as Error).message);
  }
  while (held.length >= concurrency) native().close(held.shift()!);
}
for (const fd of held) native().close(fd);
if (nsFd !== undefined) closeSync(nsFd);
process.stdout.write(JSON.stringify({ ok, failed: errors.length, errors: errors.slice(0, 5), ms: Number(process.hrtime.bigint() - started) / 1e6 }) + '\n');
