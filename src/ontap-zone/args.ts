/** ontap-zone's command line: parsing and validation only (main.ts runs it). */
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { isLevel, levels, type Level } from '../common/log.js';
import { DNS_LABEL } from '../protocol/messages.js';
import { parsePrefix, type Prefix } from './classify.js';
import { DEFAULT_MAX_ADDRESSES, type NameSource } from './publish.js';
import { DEFAULT_RCVBUF } from './rtnl-watch.js';
import { LOCAL_ZONE, type ZoneConfig } from './tinydns.js';

export const DEFAULT_TTL = 60;

export const USAGE = `Usage: ontap-zone --domain DOMAIN [--lan PREFIX]... [--ttl SECONDS] [--output FILE] [--exec COMMAND] [--max-addresses N] [--names SOURCE] [--mdns]
       ontap-zone --mdns [--max-addresses N] [--names SOURCE]

Publish DNS names for the named workloads of this host as tinydns-data, following their
addresses as they change. A workload is a network namespace that has an nsid in ontap-zone's
namespace (ontapd gives one to every namespace it puts a device in); its names are the aliases of
its links (ontap -n NAME) and the host names of the UTS namespaces its processes are in (ontap
--uts -n NAME, hostname(1); not the host's own). For a workload NAME:

  NAME.wan.DOMAIN   its global addresses
  NAME.lan.DOMAIN   its ULA (fc00::/7) and RFC 1918 addresses
  NAME.DOMAIN       lan addresses for clients inside a --lan prefix, wan ones for the others
  NAME.local        its link-local addresses (fe80::/10, 169.254.0.0/16)

With --mdns it also answers for NAME.local by multicast DNS (RFC 6762) on each of the workload's
links, from inside its namespace, with every usable address of that link; --domain and the file
are then optional.

Options:
  --domain DOMAIN      the zone to publish (required without --mdns)
  --lan PREFIX         IPv4 prefix (CIDR) of the clients that get lan answers; repeatable
  --ttl SECONDS        TTL of the records and of negative answers (default ${DEFAULT_TTL})
  --output FILE        the tinydns-data file to write (default ./data; with --mdns, none unless given)
  --exec COMMAND       run by /bin/sh in FILE's directory after each write (e.g. tinydns-data)
  --ns NAME            name server in the SOA and NS records (default ns.DOMAIN)
  --once               write the file for the current state, run --exec, and exit
  --max-addresses N    addresses one workload publishes at most (default ${DEFAULT_MAX_ADDRESSES}); over it,
                       the first N in the file's order (wan, lan, local; IPv4 first; by address)
  --names SOURCE       where names come from: alias, hostname or both (default both)
  --mdns               answer for NAME.local by multicast DNS on every workload's links
  --rcvbuf BYTES       netlink receive buffer (default ${DEFAULT_RCVBUF})
  --verbosity LEVEL    ${levels.join('|')} (default info)
  -h, --help           show this help
  --version            show the version

Exit status: 0 on SIGTERM/SIGINT (or after --once), 64 usage, 71 netlink failure,
73 the file cannot be written. See ontap-zone(8).
`;

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export interface ZoneArgs {
  zone: ZoneConfig;
  /** undefined: no file (--mdns without --domain or --output). */
  output: string | undefined;
  mdns: boolean;
  /** --names: where workload names come from. */
  names: NameSource;
  exec: string | undefined;
  once: boolean;
  maxAddresses: number;
  rcvbuf: number;
  verbosity: Level;
}

/** A domain name in LDH labels; returned in lower case without a trailing dot. */
export function parseDomain(option: string, text: string): string {
  const d = text.toLowerCase().replace(/\.$/, '');
  const labels = d.split('.');
  if (d === '' || d.length > 200 || !labels.every((l) => DNS_LABEL.test(l))) {
    throw new UsageError(`${option} must be a domain name of LDH labels (a-z, 0-9, "-"), not "${text}"`);
  }
  return d;
}

function integer(option: string, text: string, min: number, max: number): number {
  if (!/^[0-9]+$/.test(text) || Number(text) < min || Number(text) > max) {
    throw new UsageError(`${option} must be an integer from ${min} to ${max}, not "${text}"`);
  }
  return Number(text);
}

export function parseLan(text: string): Prefix {
  const p = parsePrefix(text);
  if (p === undefined) throw new UsageError(`--lan must be a prefix like 10.0.0.0/8 (host bits zero), not "${text}"`);
  if (p.family !== 4) throw new UsageError(`--lan ${text}: tinydns 1.05 tells clients apart by IPv4 address only; give IPv4 prefixes`);
  return p;
}

export function parse(argv: string[]): ZoneArgs | 'help' | 'version' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        domain: { type: 'string' },
        lan: { type: 'string', multiple: true },
        ttl: { type: 'string' },
        output: { type: 'string' },
        exec: { type: 'string' },
        ns: { type: 'string' },
        once: { type: 'boolean' },
        mdns: { type: 'boolean' },
        names: { type: 'string' },
        'max-addresses': { type: 'string' },
        rcvbuf: { type: 'string' },
        verbosity: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
      },
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) return 'help';
  if (values.version) return 'version';
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const mdns = values.mdns ?? false;
  if (values.domain === undefined && !mdns) throw new UsageError('--domain DOMAIN is required (or --mdns for multicast DNS only)');
  const fileless = values.domain === undefined;
  if (fileless && (values.output !== undefined || values.exec !== undefined || values.lan !== undefined || values.ns !== undefined || values.ttl !== undefined)) {
    throw new UsageError('--output, --exec, --lan, --ns and --ttl are for the zone file: give --domain too');
  }
  // Without a zone, names are checked as they would be under "local" (their only zone then).
  const domain = values.domain === undefined ? LOCAL_ZONE : parseDomain('--domain', values.domain);
  if (!fileless && (domain === LOCAL_ZONE || domain.endsWith(`.${LOCAL_ZONE}`))) throw new UsageError(`--domain cannot be ${LOCAL_ZONE} or under it: link-local names go there`);
  const verbosity = values.verbosity ?? 'info';
  if (!isLevel(verbosity)) throw new UsageError(`--verbosity must be one of ${levels.join(', ')}, not "${verbosity}"`);
  if (values.exec !== undefined && values.exec.trim() === '') throw new UsageError('--exec needs a command');
  const output = values.output ?? 'data';
  if (output === '' || output.endsWith('/')) throw new UsageError(`--output must name a file, not "${output}"`);
  const names = values.names ?? 'both';
  if (names !== 'alias' && names !== 'hostname' && names !== 'both') throw new UsageError(`--names must be one of alias, hostname, both, not "${names}"`);
  const nameServer = values.ns === undefined ? `ns.${domain}` : parseDomain('--ns', values.ns);
  return {
    zone: {
      domain,
      ttl: values.ttl === undefined ? DEFAULT_TTL : integer('--ttl', values.ttl, 0, 2147483647),
      lan: (values.lan ?? []).map(parseLan),
      nameServer,
      hostmaster: `hostmaster.${domain}`,
    },
    output: fileless ? undefined : resolve(output),
    mdns,
    names,
    exec: values.exec,
    once: values.once ?? false,
    maxAddresses: values['max-addresses'] === undefined ? DEFAULT_MAX_ADDRESSES : integer('--max-addresses', values['max-addresses'], 1, 1 << 20),
    rcvbuf: values.rcvbuf === undefined ? DEFAULT_RCVBUF : integer('--rcvbuf', values.rcvbuf, 1024, 1 << 30),
    verbosity,
  };
}
