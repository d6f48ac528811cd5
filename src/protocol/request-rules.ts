/**
 * What an allocate request may hold, as one plain-data table. ontapd's zod schema
 * (src/ontapd/request-schema.ts) is built from it and the client's argument checks
 * (src/ontap-client/args.ts) read it, so the two cannot drift; test/unit/request-rules.test.ts
 * holds them to the same answers. No zod here: the client imports this module.
 */
import {
  DNS_LABEL, DNS_LABEL_RULE, MAX_QUEUES, PROTOCOL_VERSION, deviceTypes, ipvlanFamily, ipvlanFlags, ipvlanModes,
  macvlanModes, tapTypes, ipv4Methods, namespacedTypes, type AllocateRequest, type DeviceType,
} from './messages.js';

export type RuleField = keyof AllocateRequest;

export type FieldRule =
  /** Exactly this value. */
  | { kind: 'literal'; required: true; value: string | number }
  /** One of `values`, or of `valuesByType[type]`, the request's device type. */
  | {
    kind: 'choice'; required: boolean;
    values?: readonly string[]; valuesByType?: Readonly<Record<DeviceType, readonly string[]>>;
    onlyFor?: readonly DeviceType[];
  }
  /** An integer in [min, max]; for types outside `onlyFor` only `otherwise`. */
  | { kind: 'integer'; required: boolean; min: number; max: number; onlyFor?: readonly DeviceType[]; otherwise?: number }
  /** A string matching `pattern`: `what` it is, and its `rule` in words. */
  | { kind: 'pattern'; required: boolean; pattern: RegExp; what: string; rule: string };

/** Every field of AllocateRequest, in the order they are checked. */
export const requestRules = {
  v: { kind: 'literal', required: true, value: PROTOCOL_VERSION },
  op: { kind: 'literal', required: true, value: 'allocate' },
  type: { kind: 'choice', required: true, values: deviceTypes },
  queues: { kind: 'integer', required: false, min: 1, max: MAX_QUEUES, onlyFor: tapTypes, otherwise: 1 },
  name: { kind: 'pattern', required: false, pattern: DNS_LABEL, what: 'a DNS label', rule: DNS_LABEL_RULE },
  mode: {
    kind: 'choice', required: false,
    valuesByType: { ipvlan: ipvlanModes, ipvtap: ipvlanModes, macvlan: macvlanModes, macvtap: macvlanModes },
  },
  flag: { kind: 'choice', required: false, values: ipvlanFlags, onlyFor: ipvlanFamily },
  ipv4: { kind: 'choice', required: false, values: ipv4Methods, onlyFor: namespacedTypes },
} as const satisfies Record<RuleField, FieldRule>;

/**
 * What the kernel keeps on the uplink rather than on one device, so that the first device's choice
 * would bind every later caller: the family (a parent carries ipvlan or macvlan devices, never
 * both) and ipvlan's mode and flag (ipvlan_link_new sets them on the parent's port, for every
 * ipvlan on it). They are the administrator's: ontapd's `--OPTION` sets each (`default` without
 * it), a request that leaves the field out gets the uplink's value, and a caller other than root
 * that names another is refused (forbidden, naming `field`). `byType` maps a device type to the
 * setting's value where the field is not the value itself (type -> family); the setting applies
 * only to `onlyFor` types. macvlan's mode is each device's own, so it stays the caller's choice
 * (passthru, which takes the whole uplink, is root's only).
 */
export type UplinkSetting = {
  option: string;
  field: RuleField;
  /** How a refusal names what the uplink serves, before the value ("ipvlan in mode"). */
  serves?: string;
  values: readonly string[];
  default: string;
  onlyFor?: readonly DeviceType[];
  byType?: Readonly<Record<DeviceType, string>>;
};

export const families = ['ipvlan', 'macvlan'] as const;
export type Family = (typeof families)[number];

export const uplinkSettings = {
  family: {
    option: 'family', field: 'type', values: families, default: 'ipvlan',
    byType: { ipvlan: 'ipvlan', ipvtap: 'ipvlan', macvlan: 'macvlan', macvtap: 'macvlan' },
  },
  ipvlanMode: { option: 'ipvlan-mode', field: 'mode', serves: 'ipvlan in mode', values: ipvlanModes, default: 'l2', onlyFor: ipvlanFamily },
  ipvlanFlag: { option: 'ipvlan-flag', field: 'flag', serves: 'ipvlan with flag', values: ipvlanFlags, default: 'bridge', onlyFor: ipvlanFamily },
} as const satisfies Record<string, UplinkSetting>;

export type UplinkSettingName = keyof typeof uplinkSettings;

/** "one of a, b, c" */
export function oneOf(values: readonly string[]): string {
  return `one of ${values.join(', ')}`;
}

/** "ipvlan and ipvtap" */
export function typesText(types: readonly string[]): string {
  return types.length <= 1 ? types.join('') : `${types.slice(0, -1).join(', ')} and ${types[types.length - 1]}`;
}

/** The values a choice field allows for a request of this device type (by-type choices need one). */
export function choicesFor(rule: FieldRule & { kind: 'choice' }, type?: DeviceType): readonly string[] {
  return (type !== undefined ? rule.valuesByType?.[type] : undefined) ?? rule.values ?? [];
}

/** What the rule allows, in words ("between 1 and 16", "one of l2, l3, l3s"), for this device type. */
export function allowedText(rule: FieldRule, type?: DeviceType): string {
  switch (rule.kind) {
    case 'literal': return JSON.stringify(rule.value);
    case 'choice': return oneOf(choicesFor(rule, type));
    case 'integer': return `between ${rule.min} and ${rule.max}`;
    case 'pattern': return `${rule.what} (${rule.rule})`;
  }
}

/**
 * Why `value` breaks the rule for a request of this device type: 'type' when the field is not for
 * this type, 'value' when it is not an allowed value; undefined when it is fine. Takes the value
 * as the field's JSON type (what is a number, what a string: the caller's part).
 */
export function violation(rule: FieldRule, value: string | number, type: DeviceType): 'type' | 'value' | undefined {
  const forType = !('onlyFor' in rule) || rule.onlyFor === undefined || rule.onlyFor.includes(type);
  switch (rule.kind) {
    case 'literal':
      return value === rule.value ? undefined : 'value';
    case 'choice':
      if (!forType) return 'type';
      return typeof value === 'string' && choicesFor(rule, type).includes(value) ? undefined : 'value';
    case 'integer':
      if (typeof value !== 'number' || !Number.isInteger(value) || value < rule.min || value > rule.max) return 'value';
      return forType || value === rule.otherwise ? undefined : 'type';
    case 'pattern':
      return typeof value === 'string' && rule.pattern.test(value) ? undefined : 'value';
  }
}
