#!/usr/bin/env node
import { Logger } from '../common/log.js';
import { ExitCode } from '../common/sysexits.js';
import { packageVersion } from '../common/version.js';
import { addonOrExit } from '../common/addon.js';
import { parse, USAGE, UsageError, type ZoneArgs } from './args.js';
import { ZoneService, ZoneWriteError } from './service.js';
import { MdnsService } from './mdns.js';
import { UtsTracker } from './uts-tracker.js';
import { native } from '../native/index.js';
import { RouteSocket } from '../netns/route-socket.js';

function quantile(values: number[], q: number): number | undefined {
  if (values.length === 0) return undefined;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

async function main(): Promise<number> {
  let args: ZoneArgs | 'help' | 'version';
  try {
    args = parse(process.argv.slice(2));
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`ontap-zone: ${e.message}\nTry 'ontap-zone --help'.\n`);
    return ExitCode.usage;
  }
  if (args === 'help') {
    process.stdout.write(USAGE);
    return ExitCode.ok;
  }
  if (args === 'version') {
    process.stdout.write(`ontap-zone ${packageVersion()}\n`);
    return ExitCode.ok;
  }
  addonOrExit('ontap-zone');
  const log = new Logger('ontap-zone', args.verbosity);
  if (process.getuid?.() !== 0) log.warn('not-root', { reason: 'other namespaces\' events need CAP_NET_BROADCAST there, dumps CAP_NET_ADMIN' });

  let fatal: ((e: Error) => void) | undefined;
  let service: ZoneService;
  let nsids: RouteSocket | undefined;
  let uts: UtsTracker | undefined;
  try {
    // The responders find each workload's namespace by its nsid (RTM_GETNSID on this socket).
    nsids = args.mdns || args.names !== 'alias' ? RouteSocket.open() : undefined;
    // Host names: the tracker tells the service, which is made next.
    const hostnames = args.names !== 'alias' ? new UtsTracker(native(), nsids!, log, () => service.hostnamesChanged()) : undefined;
    uts = hostnames;
    service = new ZoneService({
      zone: args.zone,
      output: args.output,
      names: args.names,
      hostnames,
      mdns: args.mdns ? new MdnsService(native(), nsids!, log) : undefined,
      exec: args.exec,
      rcvbuf: args.rcvbuf,
      maxAddresses: args.maxAddresses,
      onFatal: (e) => fatal?.(e),
    }, log);
  } catch (e) {
    log.error('netlink-failed', { error: (e as Error).message });
    return ExitCode.osErr;
  }
  log.info('starting', { domain: args.output === undefined ? undefined : args.zone.domain, file: args.output, mdns: args.mdns || undefined, names: args.names, lan: args.zone.lan.length, ttl: args.zone.ttl, max_addresses: args.maxAddresses, exec: args.exec });

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (code: number, why: string): void => {
      if (stopping) return;
      stopping = true;
      service.stop();
      uts?.stop();
      nsids?.close();
      const p50 = quantile(service.lags, 0.5);
      const p99 = quantile(service.lags, 0.99);
      log.info('stopped', {
        why, writes: service.writer?.writes, execs: service.writer?.execs, events: service.watch.stats.events,
        dumps: service.watch.stats.dumps, overruns: service.watch.stats.overruns, resyncs: service.watcher.stats.resyncs,
        lag_p50_ms: p50?.toFixed(2), lag_p99_ms: p99?.toFixed(2),
      });
      resolve(code);
    };
    fatal = () => stop(ExitCode.osErr, 'netlink-failed');
    process.on('SIGTERM', () => stop(ExitCode.ok, 'SIGTERM'));
    process.on('SIGINT', () => stop(ExitCode.ok, 'SIGINT'));
    process.on('SIGHUP', () => {
      log.info('sighup', { action: 'resync' });
      service.resync('SIGHUP');
    });
    // The responders' state, one line each: which name each workload link answers for now (a
    // conflict may have made it NAME-2 on the link, while the zone file keeps NAME).
    process.on('SIGUSR1', () => {
      if (uts) log.info('uts-status', { ...uts.stats });
      const mdns = service.mdns;
      if (!mdns) {
        log.info('status', { mdns: 'off' });
        return;
      }
      const all = mdns.status();
      log.info('status', { responders: all.length, ...mdns.segmentStats(), ...mdns.stats });
      for (const r of all) log.info('mdns-status', { nsid: r.nsid, ifname: r.ifname, name: r.label, mdns: r.name, state: r.state, listens: r.listens });
    });
    if (!args.once) uts?.start();
    service.start().then(
      () => {
        if (args.once) stop(ExitCode.ok, 'once');
        else log.info('serving', { file: args.output, workloads: service.lastPublication?.workloads.length ?? 0 });
      },
      (e: unknown) => stop(e instanceof ZoneWriteError ? ExitCode.cantCreate : ExitCode.osErr, (e as Error).message),
    );
  });
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    new Logger('ontap-zone').error('fatal', { error: (e as Error).stack ?? String(e) });
    process.exit(ExitCode.software);
  },
);
