import { deviceTypes, type AllocateRequest } from '../protocol/messages.js';
import { typesText, uplinkSettings, type UplinkSetting, type UplinkSettingName } from '../protocol/request-rules.js';
import { RequestError } from './errors.js';

/** The administrator's value of each uplink setting (ontapd --family, --ipvlan-mode, --ipvlan-flag). */
export type UplinkConfig = Record<UplinkSettingName, string>;

const settings = Object.entries(uplinkSettings) as Array<[UplinkSettingName, UplinkSetting]>;

export const defaultUplinkConfig = Object.fromEntries(settings.map(([name, s]) => [name, s.default])) as UplinkConfig;

/** "ipvlan and ipvtap devices", "ipvlan in mode l2" */
function served(setting: UplinkSetting, value: string): string {
  const byType = setting.byType;
  if (byType !== undefined) return `${typesText(deviceTypes.filter((t) => byType[t] === value))} devices`;
  return `${setting.serves ?? setting.field} ${value}`;
}

/**
 * The request with the uplink's values in the fields it leaves out (request-rules.ts,
 * uplinkSettings). A caller other than root that names another value is refused: on a parent
 * whose family or ipvlan mode the first device sets, its choice would bind every later caller.
 * Root may ask for others (it is the administrator; the conflict rule still holds while its
 * devices live).
 */
export function withUplinkSettings(req: AllocateRequest, uid: number, config: UplinkConfig, uplink: string): AllocateRequest {
  const out: AllocateRequest = { ...req };
  for (const [name, setting] of settings) {
    if (setting.onlyFor !== undefined && !setting.onlyFor.includes(req.type)) continue;
    const value = config[name];
    const asked = setting.byType !== undefined ? setting.byType[req.type] : req[setting.field];
    if (asked === undefined) {
      (out as unknown as Record<string, unknown>)[setting.field] = value;
    } else if (asked !== value && uid !== 0) {
      const what = setting.byType !== undefined ? req[setting.field] : asked;
      throw new RequestError('forbidden',
        `uplink ${uplink} serves ${served(setting, value)} (ontapd --${setting.option} ${value}); only root may ask for ${String(what)}`, setting.field);
    }
  }
  return out;
}
