import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultUplinkConfig, withUplinkSettings, type UplinkConfig } from '../../src/ontapd/uplink-policy.js';
import { RequestError } from '../../src/ontapd/errors.js';
import { choicesFor, requestRules, uplinkSettings } from '../../src/protocol/request-rules.js';
import { deviceTypes, type AllocateRequest, type DeviceType } from '../../src/protocol/messages.js';

const req = (type: DeviceType, extra: Partial<AllocateRequest> = {}): AllocateRequest => ({ v: 1, op: 'allocate', type, ...extra });

function refusal(f: () => unknown): { code: string; field: string | undefined; message: string } | undefined {
  try {
    f();
    return undefined;
  } catch (e) {
    assert.ok(e instanceof RequestError);
    return { code: e.code, field: e.field, message: e.message };
  }
}

test('the settings name fields of the request table, with values it allows and defaults among them', () => {
  for (const setting of Object.values(uplinkSettings)) {
    assert.ok((setting.values as readonly string[]).includes(setting.default), setting.option);
    const rule = requestRules[setting.field];
    for (const type of 'onlyFor' in setting ? setting.onlyFor : deviceTypes) {
      const allowed = rule.kind === 'choice' ? choicesFor(rule, type) : [];
      const value = 'byType' in setting ? type : undefined;
      if (value !== undefined) assert.ok(allowed.includes(value), `${type} is a ${setting.field}`);
      else assert.deepEqual([...allowed], [...setting.values], `${setting.option} offers what ${setting.field} allows for ${type}`);
    }
  }
  assert.deepEqual(defaultUplinkConfig, { family: 'ipvlan', ipvlanMode: 'l2', ipvlanFlag: 'bridge' });
});

test('a request that leaves them out gets the uplink\'s mode and flag; macvlan\'s mode stays the caller\'s', () => {
  const config: UplinkConfig = { family: 'ipvlan', ipvlanMode: 'l3s', ipvlanFlag: 'vepa' };
  assert.deepEqual(withUplinkSettings(req('ipvtap', { queues: 2 }), 1000, config, 'up0'), req('ipvtap', { queues: 2, mode: 'l3s', flag: 'vepa' }));
  assert.deepEqual(withUplinkSettings(req('ipvlan', { mode: 'l3s' }), 1000, config, 'up0'), req('ipvlan', { mode: 'l3s', flag: 'vepa' }));
  const macvlan: UplinkConfig = { ...config, family: 'macvlan' };
  assert.deepEqual(withUplinkSettings(req('macvlan', { mode: 'private' }), 1000, macvlan, 'up0'), req('macvlan', { mode: 'private' }));
  assert.deepEqual(withUplinkSettings(req('macvtap'), 1000, macvlan, 'up0'), req('macvtap'));
});

test('a caller other than root naming another family, mode or flag is forbidden, with the field; root is not', () => {
  const config = defaultUplinkConfig;
  const cases: Array<[AllocateRequest, string, RegExp]> = [
    [req('macvlan'), 'type', /^uplink up0 serves ipvlan and ipvtap devices \(ontapd --family ipvlan\); only root may ask for macvlan$/],
    [req('macvtap'), 'type', /only root may ask for macvtap$/],
    [req('ipvlan', { mode: 'l3' }), 'mode', /^uplink up0 serves ipvlan in mode l2 \(ontapd --ipvlan-mode l2\); only root may ask for l3$/],
    [req('ipvtap', { flag: 'private' }), 'flag', /^uplink up0 serves ipvlan with flag bridge \(ontapd --ipvlan-flag bridge\); only root may ask for private$/],
  ];
  for (const [request, field, message] of cases) {
    const r = refusal(() => withUplinkSettings(request, 65534, config, 'up0'));
    assert.equal(r?.code, 'forbidden', JSON.stringify(request));
    assert.equal(r?.field, field);
    assert.match(r!.message, message);
    assert.equal(refusal(() => withUplinkSettings(request, 0, config, 'up0')), undefined, `root may: ${JSON.stringify(request)}`);
  }
  assert.equal(refusal(() => withUplinkSettings(req('ipvlan', { mode: 'l2', flag: 'bridge' }), 65534, config, 'up0')), undefined, 'the uplink\'s own values');
});
