import { z } from 'zod';
import { type AllocateRequest, type ProtocolError } from '../protocol/messages.js';
import {
  allowedText, requestRules, typesText, violation, type FieldRule, type RuleField,
} from '../protocol/request-rules.js';

/**
 * Each field's own shape (JSON type, range, pattern, the choices of `type`), from the rules table.
 * Choices that depend on the device type, and fields only some types take, are a string or a
 * number here and are checked after, in dependentIssue.
 */
function fieldSchema(rule: FieldRule): z.ZodType {
  let schema: z.ZodType;
  switch (rule.kind) {
    case 'literal':
      schema = z.literal(rule.value, { error: `must be ${allowedText(rule)}` });
      break;
    case 'choice':
      schema = rule.values !== undefined && rule.onlyFor === undefined
        ? z.enum(rule.values as [string, ...string[]], { error: `must be ${allowedText(rule)}` })
        : z.string({ error: 'must be a string' });
      break;
    case 'integer': {
      const range = `must be ${allowedText(rule)}`;
      schema = z.number({ error: 'must be a number' }).int({ error: 'must be an integer' })
        .min(rule.min, { error: range }).max(rule.max, { error: range });
      break;
    }
    case 'pattern':
      schema = z.string({ error: 'must be a string' }).regex(rule.pattern, { error: `must be ${allowedText(rule)}` });
      break;
  }
  return rule.required ? schema : schema.optional();
}

/** Rules that need the request's device type: choices by type, fields only some types take. */
function dependsOnType(rule: FieldRule): boolean {
  return rule.kind === 'choice' ? rule.valuesByType !== undefined || rule.onlyFor !== undefined
    : rule.kind === 'integer' && rule.onlyFor !== undefined;
}

function dependentIssue(field: RuleField, rule: FieldRule, req: AllocateRequest): string | undefined {
  const value = req[field];
  if (value === undefined || !dependsOnType(rule)) return undefined;
  const problem = violation(rule, value, req.type);
  // An integer's range is fieldSchema's: only its type dependence is left for here.
  if (problem === undefined || (problem === 'value' && rule.kind === 'integer')) return undefined;
  const onlyFor = 'onlyFor' in rule && rule.onlyFor !== undefined ? typesText(rule.onlyFor) : '';
  if (problem === 'type') {
    return rule.kind === 'integer'
      ? `must be ${rule.otherwise} for ${req.type} (other values are for ${onlyFor})`
      : `is only for ${onlyFor}`;
  }
  return rule.kind === 'choice' && rule.valuesByType !== undefined
    ? `must be ${allowedText(rule, req.type)} for ${req.type}`
    : `must be ${allowedText(rule, req.type)}`;
}

const fields = Object.entries(requestRules) as Array<[RuleField, FieldRule]>;

const allocateSchema = z
  .strictObject(Object.fromEntries(fields.map(([field, rule]) => [field, fieldSchema(rule)])))
  .superRefine((parsed, ctx) => {
    const req = parsed as unknown as AllocateRequest;
    for (const [field, rule] of fields) {
      const message = dependentIssue(field, rule, req);
      if (message !== undefined) ctx.addIssue({ code: 'custom', path: [field], message });
    }
  });

/** Longest part of a caller's key shown back (in the reply and ontapd's log). */
const SHOWN_KEY_CHARS = 64;
/** Unknown keys listed in one message; the rest are counted. */
const SHOWN_KEYS = 4;

/**
 * A key from the request as ontapd shows it: a plain one as it is; anything else quoted, with
 * every character outside printable ASCII (C0 and C1 controls such as U+0085 and U+009B, DEL,
 * line and paragraph separators, any other non-ASCII) as \uXXXX, and cut at 64 characters.
 * The key is the caller's, and the message and field it lands in are written to ontapd's log and
 * the caller's terminal: neither may receive a control sequence from it.
 */
export function shownKey(key: string): string {
  if (/^[A-Za-z0-9_-]{1,64}$/.test(key)) return key;
  // By UTF-16 code unit: a surrogate pair, or half of one, becomes two (or one) \uXXXX.
  const body = key.slice(0, SHOWN_KEY_CHARS).replace(/[^\x20-\x7e]|["\\]/g, (c) =>
    c === '"' || c === '\\' ? `\\${c}` : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return `"${body}"${key.length > SHOWN_KEY_CHARS ? '...' : ''}`;
}

export type ParseResult = { ok: true; request: AllocateRequest } | { ok: false; error: ProtocolError };

/** Parses one request record: JSON, then the schema; the first issue names the field and the rule. */
export function parseRequest(record: Buffer): ParseResult {
  let json: unknown;
  try {
    json = JSON.parse(record.toString('utf8'));
  } catch {
    return { ok: false, error: { code: 'bad-request', message: 'request is not a JSON object' } };
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return { ok: false, error: { code: 'bad-request', message: 'request is not a JSON object' } };
  }
  const result = allocateSchema.safeParse(json);
  if (result.success) return { ok: true, request: result.data as unknown as AllocateRequest };
  const issue = result.error.issues[0]!;
  if (issue.code === 'unrecognized_keys') {
    const shown = issue.keys.slice(0, SHOWN_KEYS).map(shownKey);
    const more = issue.keys.length > SHOWN_KEYS ? ` and ${issue.keys.length - SHOWN_KEYS} more` : '';
    const noun = issue.keys.length === 1 ? 'field' : 'fields';
    return { ok: false, error: { code: 'bad-request', field: shown[0], message: `unknown ${noun}: ${shown.join(', ')}${more}` } };
  }
  const field = issue.path.join('.');
  const missing = issue.path.length === 1 && !(String(issue.path[0]) in (json as object));
  const message = missing ? 'is required' : issue.message;
  return { ok: false, error: { code: 'bad-request', field, message: `${field} ${message}` } };
}
