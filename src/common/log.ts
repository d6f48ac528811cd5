import { fstatSync, writeSync } from 'node:fs';

export const levels = ['debug', 'info', 'warn', 'error'] as const;
export type Level = (typeof levels)[number];

export type Fields = Record<string, string | number | boolean | bigint | undefined | null>;

export function isLevel(s: string): s is Level {
  return (levels as readonly string[]).includes(s);
}

/**
 * Code points a log line must not carry raw: controls (C0, DEL and C1: a terminal takes U+009B
 * for CSI, U+0085 ends a line for some readers), format characters (bidi overrides and isolates,
 * zero-width characters, tag characters), separators other than U+0020 (U+2028, U+2029, no-break
 * and other spaces), lone surrogates, private-use and unassigned code points (JSON.stringify
 * escapes lone surrogates itself).
 */
const UNSAFE = /(?! )[\p{Cc}\p{Cf}\p{Z}\p{Cs}\p{Co}\p{Cn}]/u;
const UNSAFE_ALL = new RegExp(UNSAFE.source, 'gu');

function escapeUnits(c: string): string {
  let out = '';
  for (let i = 0; i < c.length; i++) out += `\\u${c.charCodeAt(i).toString(16).padStart(4, '0')}`;
  return out;
}

/**
 * Quotes a value only when logfmt would misread it (spaces, '=', quotes) or a reader would be
 * misled by it (UNSAFE); quoted, it is JSON with UNSAFE code points as \uXXXX escapes, so the
 * line is one line of printable text whatever a caller sent.
 */
export function formatValue(v: string): string {
  if (v !== '' && !/[\s="\\]/.test(v) && !UNSAFE.test(v)) return v;
  return JSON.stringify(v).replace(UNSAFE_ALL, escapeUnits);
}

/** syslog(3) priorities, for journald's `<N>` line prefix. */
const PRIORITY: Record<Level, number> = { debug: 7, info: 6, warn: 4, error: 3 };

/**
 * True when `fd` is the stream systemd connected to the journal: JOURNAL_STREAM holds its
 * device and inode (systemd.exec(5)). A descriptor merely inherited from such a service, but
 * redirected, does not match, so a terminal or a file never gets the prefixes.
 */
export function isJournalStream(fd: number, env: NodeJS.ProcessEnv = process.env): boolean {
  const m = /^(\d+):(\d+)$/.exec(env.JOURNAL_STREAM ?? '');
  if (!m) return false;
  try {
    const st = fstatSync(fd, { bigint: true });
    return st.dev === BigInt(m[1]!) && st.ino === BigInt(m[2]!);
  } catch {
    return false;
  }
}

/**
 * One line per event, key=value fields, to stderr: journald keeps each line as one entry.
 * Writes are synchronous so nothing is lost when the process execs or exits right after.
 */
export class Logger {
  private readonly threshold: number;
  /** Lines start with `<N>` so that journald files them under their priority (journalctl -p). */
  private readonly journal: boolean;

  constructor(private readonly component: string, level: Level = 'info', private readonly fd = 2, env: NodeJS.ProcessEnv = process.env) {
    this.threshold = levels.indexOf(level);
    this.journal = isJournalStream(fd, env);
  }

  enabled(level: Level): boolean {
    return levels.indexOf(level) >= this.threshold;
  }

  debug(event: string, fields?: Fields): void { this.write('debug', event, fields); }
  info(event: string, fields?: Fields): void { this.write('info', event, fields); }
  warn(event: string, fields?: Fields): void { this.write('warn', event, fields); }
  error(event: string, fields?: Fields): void { this.write('error', event, fields); }

  private write(level: Level, event: string, fields: Fields | undefined): void {
    if (!this.enabled(level)) return;
    let line = `${this.journal ? `<${PRIORITY[level]}>` : ''}${this.component}: level=${level} event=${event}`;
    if (fields !== undefined) {
      for (const [k, v] of Object.entries(fields)) {
        if (v === undefined || v === null) continue;
        line += ` ${k}=${formatValue(String(v))}`;
      }
    }
    try {
      writeSync(this.fd, line + '\n');
    } catch {
      // stderr closed: logging must never take the service down.
    }
  }
}
