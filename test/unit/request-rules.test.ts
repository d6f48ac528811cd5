// The client's argument checks and ontapd's schema read one table (src/protocol/request-rules.ts):
// this holds them to the same answers, at every boundary of every rule and for every device type.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseClientArgs, requestFor, UsageError } from '../../src/ontap-client/args.js';
import { parseRequest } from '../../src/ontapd/request-schema.js';
import { deviceTypes, type AllocateRequest, type DeviceType } from '../../src/protocol/messages.js';
import { requestRules, type FieldRule, type RuleField } from '../../src/protocol/request-rules.js';

type Option = Exclude<RuleField, 'v' | 'op'>;
const options = (Object.keys(requestRules) as RuleField[]).filter((f): f is Option => f !== 'v' && f !== 'op');

/** Each rule's boundaries and near misses, from the table itself where it can say them. */
function candidates(rule: FieldRule): Array<string | number> {
  switch (rule.kind) {
    case 'integer':
      return [...new Set([rule.min - 1, rule.min, rule.min + 1, rule.max - 1, rule.max, rule.max + 1, rule.otherwise ?? rule.min, -1, rule.min + 0.5])];
    case 'choice': {
      const every = new Set<string>([...(rule.values ?? []), ...Object.values(rule.valuesByType ?? {}).flat()]);
      for (const r of Object.values(requestRules) as FieldRule[]) if (r.kind === 'choice') for (const v of r.values ?? []) every.add(v);
      return [...every, 'bogus', '', 'L2', ' bridge'];
    }
    case 'pattern':
      // The name rule (a DNS label): lengths 1 and 63 against 64, digits, inner and outer '-'.
      return ['a', '0', '9x', 'web-1', 'a-b-c', 'a'.repeat(63), 'a'.repeat(64), `a${'-'.repeat(61)}a`, '-a', 'a-', '-', 'A', 'Web', 'a_b', 'a.b', '', 'é', 'a b'];
    case 'literal':
      return [rule.value];
  }
}

function client(type: string, field: Option, value: string | number): { request: AllocateRequest } | { error: string } {
  const argv = field === 'type' ? ['--type', String(value), '--', 'x'] : ['--type', type, `--${field}`, String(value), '--', 'x'];
  try {
    const args = parseClientArgs(argv);
    assert.ok(typeof args !== 'string');
    return { request: requestFor(args) };
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    return { error: e.message };
  }
}

const daemon = (request: object) => parseRequest(Buffer.from(JSON.stringify(request)));

test('every field the request has is a rule, and every rule a field the schema takes', () => {
  assert.deepEqual(options, ['type', 'queues', 'name', 'mode', 'flag', 'ipv4']);
  const full = daemon({ v: 1, op: 'allocate', type: 'ipvtap', queues: 2, name: 'a', mode: 'l2', flag: 'bridge' });
  assert.equal(full.ok, true, JSON.stringify(full));
  const leased = daemon({ v: 1, op: 'allocate', type: 'ipvlan', name: 'a', mode: 'l2', flag: 'bridge', ipv4: 'dhcp' });
  assert.equal(leased.ok, true, JSON.stringify(leased));
});

test('per field and device type, the client accepts exactly what ontapd accepts, and both name the field', () => {
  let accepted = 0;
  let refused = 0;
  for (const type of deviceTypes) {
    for (const field of options) {
      for (const value of candidates(requestRules[field])) {
        const what = `type=${type} ${field}=${JSON.stringify(value)}`;
        // What the client would send, or the same field put straight into a request.
        const c = client(type, field, value);
        const direct = field === 'type' ? { v: 1, op: 'allocate', type: value } : { v: 1, op: 'allocate', type, [field]: value };
        const d = daemon(direct);
        if ('request' in c) {
          accepted++;
          assert.equal(d.ok, true, `${what}: the client takes it, ontapd refuses: ${JSON.stringify(d)}`);
          const sent = daemon(c.request);
          assert.deepEqual(sent, { ok: true, request: c.request }, `${what}: ontapd refuses what the client sends`);
        } else {
          refused++;
          assert.equal(d.ok, false, `${what}: the client refuses (${c.error}), ontapd takes it`);
          if (!d.ok) assert.equal(d.error.field, field, `${what}: ${JSON.stringify(d.error)}`);
          assert.ok(c.error.startsWith(`--${field} `), `${what}: ${c.error}`);
        }
      }
    }
  }
  // Neither side may pass by refusing (or taking) everything.
  assert.ok(accepted > 50 && refused > 50, `accepted ${accepted}, refused ${refused}`);
});

test('the boundaries are where the table says', () => {
  const ok = (type: DeviceType, field: Option, value: string | number) => 'request' in client(type, field, value);
  const q = requestRules.queues;
  for (const type of q.onlyFor) {
    assert.ok(ok(type, 'queues', q.min) && ok(type, 'queues', q.max), type);
    assert.ok(!ok(type, 'queues', q.min - 1) && !ok(type, 'queues', q.max + 1), type);
  }
  for (const type of deviceTypes.filter((t) => !(q.onlyFor as readonly string[]).includes(t))) {
    assert.ok(ok(type, 'queues', q.otherwise) && !ok(type, 'queues', q.otherwise + 1), type);
  }
  assert.ok(ok('ipvlan', 'name', 'a'.repeat(63)) && !ok('ipvlan', 'name', 'a'.repeat(64)));
  for (const type of deviceTypes) {
    for (const mode of requestRules.mode.valuesByType[type]) assert.ok(ok(type, 'mode', mode), `${type} ${mode}`);
    for (const flag of requestRules.flag.values) {
      assert.equal(ok(type, 'flag', flag), (requestRules.flag.onlyFor as readonly string[]).includes(type), `${type} ${flag}`);
    }
  }
});

test('combinations the client accepts are requests ontapd accepts unchanged', () => {
  let combinations = 0;
  for (const type of deviceTypes) {
    const modes = [undefined, ...requestRules.mode.valuesByType[type]];
    const flags = [undefined, ...(requestRules.flag.onlyFor as readonly string[]).includes(type) ? requestRules.flag.values : []];
    const queues = (requestRules.queues.onlyFor as readonly string[]).includes(type) ? [undefined, 1, 7, 16] : [undefined, 1];
    for (const mode of modes) for (const flag of flags) for (const q of queues) for (const name of [undefined, 'vm-1']) {
      const argv = ['-t', type];
      if (mode !== undefined) argv.push('--mode', mode);
      if (flag !== undefined) argv.push('--flag', flag);
      if (q !== undefined) argv.push('-m', String(q));
      if (name !== undefined) argv.push('-n', name);
      const args = parseClientArgs([...argv, '--', 'x']);
      assert.ok(typeof args !== 'string');
      const request = requestFor(args);
      assert.deepEqual(daemon(request), { ok: true, request }, argv.join(' '));
      combinations++;
    }
  }
  assert.ok(combinations > 100, String(combinations));
});

test('v and op are the table\'s literals on both sides', () => {
  const args = parseClientArgs(['--', 'x']);
  assert.ok(typeof args !== 'string');
  const request = requestFor(args);
  assert.equal(request.v, requestRules.v.value);
  assert.equal(request.op, requestRules.op.value);
  assert.equal(daemon({ ...request, v: requestRules.v.value + 1 }).ok, false);
  assert.equal(daemon({ ...request, op: `${requestRules.op.value}x` }).ok, false);
});
