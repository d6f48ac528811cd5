import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseClientArgs, requestFor, UsageError } from '../../src/ontap-client/args.js';
import { resolveSocket } from '../../src/ontap-client/socket-path.js';

test('runvm form: options before and after SOCKET, COMMAND after --', () => {
  const a = parseClientArgs(['-t', 'ipvtap', '-m', '1', '/run/ontap/port.wlp3s0', '--verbosity=debug', '--', 'qemu', '-m', '1G']);
  assert.notEqual(a, 'help');
  if (typeof a === 'string') return;
  assert.equal(a.type, 'ipvtap');
  assert.equal(a.queues, 1);
  assert.equal(a.socket, '/run/ontap/port.wlp3s0');
  assert.equal(a.verbosity, 'debug');
  assert.deepEqual(a.command, ['qemu', '-m', '1G']);
});

test('defaults: ipvlan, one queue, no socket, warn', () => {
  const a = parseClientArgs(['--', 'darkhttpd', '/www']);
  assert.ok(typeof a !== 'string');
  if (typeof a === 'string') return;
  assert.equal(a.type, 'ipvlan');
  assert.equal(a.socket, undefined);
  assert.equal(a.verbosity, 'warn');
  assert.equal(a.netns, false);
});

test('usage errors name the option and the rule', () => {
  const cases: Array<[string[], RegExp]> = [
    [['-t', 'vxlan', '--', 'x'], /--type must be one of/],
    [['-m', '17', '-t', 'ipvtap', '--', 'x'], /--queues must be between 1 and 16/],
    [['-m', '2', '--', 'x'], /--queues is for ipvtap and macvtap/],
    [['-n', 'Web', '--', 'x'], /--name must be a DNS label/],
    [['--mode', 'bridge', '--', 'x'], /--mode for ipvlan must be one of l2, l3, l3s/],
    [['-t', 'macvlan', '--flag', 'private', '--', 'x'], /--flag is for ipvlan/],
    [['--uts', '--', 'x'], /--uts needs -n NAME/],
    [['-t', 'macvtap', '--netns', '--', 'x'], /--netns is for ipvlan and macvlan/],
    [['--verbosity=loud', '--', 'x'], /--verbosity must be one of/],
    [['--bogus', '--', 'x'], /unknown option --bogus/],
    [['a', 'b', '--', 'x'], /one SOCKET at most/],
    [['/run/ontap/port.x'], /missing -- COMMAND/],
    [['-t'], /-t needs a value/],
    [['--keep-fd', '2', '--', 'x'], /--keep-fd needs a descriptor number of 3 or more/],
  ];
  for (const [argv, message] of cases) {
    assert.throws(() => parseClientArgs(argv), (e: unknown) => e instanceof UsageError && message.test(e.message), argv.join(' '));
  }
});

test('SOCKET: argument, else ONTAP_SOCKET, else the only port.* in the directory', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ontap-u-'));
  try {
    assert.equal(resolveSocket('/x', { ONTAP_SOCKET: '/y' }, dir), '/x');
    assert.equal(resolveSocket(undefined, { ONTAP_SOCKET: '/y' }, dir), '/y');
    assert.throws(() => resolveSocket(undefined, {}, dir), /no ontapd socket/);
    writeFileSync(join(dir, 'port.eth1'), '');
    assert.equal(resolveSocket(undefined, {}, dir), join(dir, 'port.eth1'));
    writeFileSync(join(dir, 'port.wlp3s0'), '');
    assert.throws(() => resolveSocket(undefined, {}, dir), /several: .*port\.eth1, .*port\.wlp3s0/);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('--dhcp (or --ipv4 dhcp) asks for ipv4 "dhcp", for ipvlan and macvlan only', () => {
  for (const argv of [['--dhcp'], ['--ipv4', 'dhcp'], ['--ipv4=dhcp', '--dhcp']]) {
    const a = parseClientArgs(['-t', 'macvlan', ...argv, '--', 'true']);
    assert.ok(typeof a !== 'string');
    if (typeof a === 'string') return;
    assert.equal(requestFor(a).ipv4, 'dhcp', argv.join(' '));
  }
  const plain = parseClientArgs(['--', 'true']);
  assert.ok(typeof plain !== 'string' && requestFor(plain).ipv4 === undefined, 'no ipv4 unless asked');
  assert.throws(() => parseClientArgs(['-t', 'ipvtap', '--dhcp', '--', 'qemu']), (e: unknown) => e instanceof UsageError && /^--dhcp is for ipvlan and macvlan: on ipvtap, the guest runs its own DHCP client/.test(e.message));
  assert.throws(() => parseClientArgs(['--ipv4', 'static', '--', 'true']), (e: unknown) => e instanceof UsageError && e.message === '--ipv4 must be one of dhcp, not "static"');
});
