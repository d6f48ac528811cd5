import { z } from 'zod';
import {
  DNS_LABEL, DNS_LABEL_RULE, PROTOCOL_VERSION, MAX_QUEUES, deviceTypes, ipvlanModes, ipvlanFlags, macvlanModes,
  isIpvlanFamily, isTapType, type AllocateRequest, type ProtocolError,
} from '../protocol/messages.js';


const allocateSchema = z
  .strictObject({
    v: z.literal(PROTOCOL_VERSION, { error: `must be ${PROTOCOL_VERSION}` }),
    op: z.literal('allocate', { error: 'must be "allocate"' }),
    type: z.enum(deviceTypes, { error: `must be one of ${deviceTypes.join(', ')}` }),
    queues: z
      .number({ error: 'must be a number' })
      .int({ error: 'must be an integer' })
      .min(1, { error: `must be between 1 and ${MAX_QUEUES}` })
      .max(MAX_QUEUES, { error: `must be between 1 and ${MAX_QUEUES}` })
      .optional(),
    name: z
      .string({ error: 'must be a string' })
      .regex(DNS_LABEL, {
        error: `must be a DNS label: ${DNS_LABEL_RULE}`,
      })
      .optional(),
    mode: z.string({ error: 'must be a string' }).optional(),
    flag: z.string({ error: 'must be a string' }).optional(),
  })
  .superRefine((req, ctx) => {
    const modes: readonly string[] = isIpvlanFamily(req.type) ? ipvlanModes : macvlanModes;
    if (req.mode !== undefined && !modes.includes(req.mode)) {
      ctx.addIssue({ code: 'custom', path: ['mode'], message: `must be one of ${modes.join(', ')} for ${req.type}` });
    }
    if (req.flag !== undefined) {
      if (!isIpvlanFamily(req.type)) {
        ctx.addIssue({ code: 'custom', path: ['flag'], message: `is only for ipvlan and ipvtap` });
      } else if (!(ipvlanFlags as readonly string[]).includes(req.flag)) {
        ctx.addIssue({ code: 'custom', path: ['flag'], message: `must be one of ${ipvlanFlags.join(', ')}` });
      }
    }
    if (!isTapType(req.type) && req.queues !== undefined && req.queues !== 1) {
      ctx.addIssue({ code: 'custom', path: ['queues'], message: `must be 1 for ${req.type} (queues are for tap types)` });
    }
  });

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
  if (result.success) return { ok: true, request: result.data as AllocateRequest };
  const issue = result.error.issues[0]!;
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.join(', ');
    return { ok: false, error: { code: 'bad-request', field: issue.keys[0], message: `unknown field: ${keys}` } };
  }
  const field = issue.path.join('.');
  const missing = issue.path.length === 1 && !(String(issue.path[0]) in (json as object));
  const message = missing ? 'is required' : issue.message;
  return { ok: false, error: { code: 'bad-request', field, message: `${field} ${message}` } };
}
