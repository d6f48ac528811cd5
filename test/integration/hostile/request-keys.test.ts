/**
 * Issue 11, smaller finding: control characters in a request's keys (U+0085, U+009B: C1
 * controls, which terminals and some log readers act on) must not reach ontapd's log, or the
 * caller's terminal through the reply. As uid 65534, a request with such unknown keys: the reply
 * and ontapd's line about it hold only printable ASCII, with the characters escaped.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { TestNamespaces, sweepStaleNamespaces } from '../../helpers/netns.js';
import { TestDaemon } from '../../helpers/ontapd.js';
import { nobodyHasPython, rawRequest } from '../../helpers/raw-caller.js';
import { describeWhen, hasCommand, isRoot, missing } from '../../helpers/requirements.js';

const reason = missing([
  [isRoot, 'needs root (network namespaces)'],
  [() => hasCommand('ip') && hasCommand('setpriv'), 'needs iproute2 and setpriv (util-linux)'],
  [nobodyHasPython, 'needs a python3 that uid 65534 can run in /usr/local/bin, /usr/bin or /bin'],
]);

describeWhen('hostile: control characters in request keys', reason, () => {
  const nets = new TestNamespaces();
  let daemon: TestDaemon | undefined;

  before(async () => {
    sweepStaleNamespaces();
    daemon = new TestDaemon(nets.uplink().host, ['up0'], ['--mode', '0666']);
    await daemon.start();
  });

  after(async () => {
    await daemon?.stop();
    daemon?.removeDir();
    nets.destroy();
  });

  test('uid 65534\'s unknown keys with C1 controls reach neither the log nor the reply raw', () => {
    const d = daemon!;
    const key = 'x\u0085\u009b2J\u001b]0;pwned\u0007';
    const reply = rawRequest(d.ns, d.socket(), { v: 1, op: 'allocate', type: 'ipvtap', [key]: 1 });
    assert.equal(reply.error?.code, 'bad-request', JSON.stringify(reply));
    for (const text of [reply.error!.message, reply.error!.field ?? '']) assert.match(text, /^[\x20-\x7e]+$/, JSON.stringify(text));
    const line = d.log.split('\n').find((l) => l.includes('event=request-failed') && l.includes('uid=65534'));
    assert.ok(line, d.log);
    assert.match(line, /^[\x20-\x7e]+$/, `only printable ASCII in ${JSON.stringify(line)}`);
    assert.match(line, /u0085/, 'the character is shown, escaped');
  });
});
