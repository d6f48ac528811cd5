/**
 * Reading the unit files in systemd/ the way systemd does, as far as the tests need: sections and
 * keys (continuation lines joined, comments dropped), specifiers %i/%I, and ExecStart= expansion
 * of environment variables. Lets a host test run the exact command line a unit would run.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './ontapd.js';

export const UNIT_DIR = join(ROOT, 'systemd');

/** section -> key -> values in order (a key may repeat). */
export type Unit = Map<string, Map<string, string[]>>;

export function parseUnit(text: string): Unit {
  const unit: Unit = new Map();
  let section: Map<string, string[]> | undefined;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    // A trailing backslash joins the next line (comment lines in between are skipped).
    while (line.endsWith('\\') && i + 1 < lines.length) {
      let next = lines[++i]!.trim();
      while ((next.startsWith('#') || next.startsWith(';')) && i + 1 < lines.length) next = lines[++i]!.trim();
      line = `${line.slice(0, -1)} ${next}`;
    }
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = new Map();
      unit.set(header[1]!, section);
      continue;
    }
    const eq = line.indexOf('=');
    if (eq < 0 || section === undefined) throw new Error(`unparseable unit line: ${line}`);
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    section.set(key, [...(section.get(key) ?? []), value]);
  }
  return unit;
}

/** %i and %I for an instance name that needs no escaping (letters, digits, "." and "_"). */
export function instantiate(text: string, instance: string): string {
  if (!/^[A-Za-z0-9._]+$/.test(instance)) throw new Error(`instance ${instance} would need systemd-escape`);
  return text.replaceAll('%i', instance).replaceAll('%I', instance);
}

export function readUnit(name: string, instance?: string): Unit {
  const text = readFileSync(join(UNIT_DIR, name), 'utf8');
  return parseUnit(instance === undefined ? text : instantiate(text, instance));
}

export function values(unit: Unit, section: string, key: string): string[] {
  return unit.get(section)?.get(key) ?? [];
}

/** Every unit file shipped in systemd/ (not the examples). */
export function shippedUnits(): string[] {
  return readdirSync(UNIT_DIR).filter((f) => /\.(service|socket)$/.test(f)).sort();
}

/** Splits a command line into words as systemd does: whitespace, double and single quotes. */
function words(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < line.length) {
    while (i < line.length && /\s/.test(line[i]!)) i++;
    if (i >= line.length) break;
    let word = '';
    while (i < line.length && !/\s/.test(line[i]!)) {
      const c = line[i]!;
      if (c === '"' || c === "'") {
        const end = line.indexOf(c, i + 1);
        if (end < 0) throw new Error(`unterminated quote in ${line}`);
        word += line.slice(i + 1, end);
        i = end + 1;
      } else {
        word += c;
        i++;
      }
    }
    out.push(word);
  }
  return out;
}

/**
 * The argv systemd would run for an ExecStart= line: "${VAR}" is replaced inside its word, a word
 * that is exactly "$VAR" becomes the value split at whitespace (zero or more words). An unset
 * variable is empty. Prefixes such as "-" or "+" are not supported (the units use none).
 */
export function expandCommand(line: string, env: Record<string, string>): string[] {
  const argv: string[] = [];
  for (const word of words(line)) {
    const whole = /^\$([A-Za-z_][A-Za-z0-9_]*)$/.exec(word);
    if (whole) {
      argv.push(...(env[whole[1]!] ?? '').split(/\s+/).filter((w) => w !== ''));
      continue;
    }
    argv.push(word.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => env[name] ?? ''));
  }
  return argv;
}

/** Environment= assignments ("A=b" or "\"A=b c\"" words) followed by an EnvironmentFile's lines. */
export function unitEnvironment(unit: Unit, file: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of values(unit, 'Service', 'Environment')) {
    for (const assignment of words(line)) {
      const eq = assignment.indexOf('=');
      env[assignment.slice(0, eq)] = assignment.slice(eq + 1);
    }
  }
  return { ...env, ...file };
}

/** CapabilityBoundingSet= of a unit, as setpriv wants it: "+net_admin,+sys_admin". */
export function boundingSetForSetpriv(unit: Unit): string {
  const caps = values(unit, 'Service', 'CapabilityBoundingSet').flatMap((v) => v.split(/\s+/)).filter((c) => c !== '');
  return caps.map((c) => `+${c.replace(/^CAP_/, '').toLowerCase()}`).join(',');
}

/** capabilities(7) numbers of the capabilities the units name. */
const CAPABILITY_NUMBERS: Record<string, number> = {
  net_bind_service: 10, net_broadcast: 11, net_admin: 12, net_raw: 13, setgid: 6, setuid: 7, setpcap: 8, sys_ptrace: 19, sys_admin: 21, mknod: 27,
};

/** The /proc/PID/status mask ("0000000008281000") of a setpriv-style list ("+net_admin,+mknod"). */
export function capabilityMask(list: string): string {
  let mask = 0n;
  for (const item of list.split(',').filter((c) => c !== '')) {
    const n = CAPABILITY_NUMBERS[item.replace(/^\+/, '')];
    if (n === undefined) throw new Error(`capabilityMask: unknown capability ${item}`);
    mask |= 1n << BigInt(n);
  }
  return mask.toString(16).padStart(16, '0');
}
