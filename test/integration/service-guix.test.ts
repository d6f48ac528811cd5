/**
 * guix/ontap/services.scm, as far as Debian's guile-3.0 can check it without Guix (see
 * test/helpers/guix-stand-in/README.md for what the stand-in is and is not):
 *  - it compiles against the stand-in with Guix's compiler warnings (unbound variables, arities,
 *    format strings, macro use before definition) and prints none;
 *  - its configuration records: the fields the issue names, each documented, with defaults;
 *    wrong values (interface names, DNS labels, capabilities, types, a list instead of a gexp)
 *    are refused when the record is built;
 *  - the README's example turns into the expected Shepherd services (ontap-exec-arroyocc needing
 *    ontapd-wlp3s0, which it brings in), accounts and socket endpoint;
 *  - the commands those Shepherd services would run, run here: ontapd socket-activated as the
 *    Shepherd's endpoint would do it (systemd-socket-activate stands in), and the workload chain,
 *    which serves a page as nobody with only CAP_NET_BIND_SERVICE.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestNamespaces, eventually, sweepStaleNamespaces } from '../helpers/netns.js';
import { ONTAP, ONTAPD, ROOT } from '../helpers/ontapd.js';
import { Background } from '../helpers/background.js';
import { describeWhen, hasCommand, isRoot, kernelHasKind, missing } from '../helpers/requirements.js';
import { boundingSetForSetpriv, capabilityMask, readUnit } from '../helpers/units.js';
import { BUSYBOX, CAP_NET_BIND_SERVICE, CAP_SETS, fetchOverLinkLocal, hasBusyboxApplets, listening, nsenter, procStatus, usableLinkLocal } from '../helpers/workload.js';

const GUIX = join(ROOT, 'guix');
const STAND_IN = join(ROOT, 'test/helpers/guix-stand-in');
const CHECK = join(ROOT, 'test/helpers/guix-check.scm');
const GUILE = ['guile', '--no-auto-compile', '-L', STAND_IN, '-L', GUIX];

interface Field { name: string; type: string; documentation: string; default: string | false }
interface Shepherd { provision: string[]; requirement: string[]; documentation: string; start: string; stop: string }
interface Account { kind: 'user' | 'group'; name: string; group?: string; system: boolean; home?: string; shell?: string }
interface Described { shepherd: Shepherd[]; accounts: Account[] }
interface Endpoint { path: string; name: string; style: number; owner: number; group: string; 'directory-permissions': number }
interface Check {
  fields: Record<string, Field[]>;
  example: { exec: Described; ontapd: Described; zone: Described; 'zone-mdns': Described; 'zone-alias': Described };
  invalid: Record<string, boolean>;
  valid: boolean;
  run: { ontapd: { command: string[]; endpoints: Endpoint[] }; exec: { command: string[] } } | false;
}

/** Runs guix-check.scm; with `run` arguments it also lowers the commands of such a configuration. */
function check(run: string[] = []): Check {
  const r = spawnSync(GUILE[0]!, [...GUILE.slice(1), CHECK, ...run], { encoding: 'utf8', timeout: 60000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as Check;
}

describeWhen('guix/ontap/services.scm against a stand-in for Guix', missing([[() => hasCommand('guile'), 'needs guile-3.0 (apt-get install guile-3.0)']]), () => {
  let result: Check;
  before(() => {
    result = check();
  });

  test('compiles with Guix\'s warnings on and prints none', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ontap-guix-'));
    try {
      const warnings = '(unbound-variable macro-use-before-definition arity-mismatch format shadowed-toplevel duplicate-case-datum bad-case-datum)';
      const r = spawnSync(GUILE[0]!, [...GUILE.slice(1), '-c',
        `(use-modules (system base compile)) (compile-file "${join(GUIX, 'ontap/services.scm')}" #:output-file "${join(dir, 'services.go')}" #:opts '(#:warnings ${warnings}))`],
      { encoding: 'utf8', timeout: 120000 });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr.trim(), '', `compiler output:\n${r.stderr}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('ontap-exec-configuration has the fields asked for, with these defaults', () => {
    const fields = new Map(result.fields['ontap-exec-configuration']!.map((f) => [f.name, f]));
    for (const name of ['port', 'type', 'user', 'caps', 'name', 'netns?', 'uts?', 'dhcp?', 'exec']) assert.ok(fields.has(name), `field ${name}`);
    assert.equal(fields.get('dhcp?')!.default, '#f');
    assert.equal(fields.get('type')!.default, '"ipvlan"');
    assert.equal(fields.get('caps')!.default, '""');
    assert.equal(fields.get('netns?')!.default, '#t');
    assert.equal(fields.get('uts?')!.default, '#t');
    assert.equal(fields.get('exec')!.type, 'gexp');
    for (const required of ['port', 'name', 'user', 'exec']) assert.equal(fields.get(required)!.default, false, `${required} has no default`);
  });

  test('every field of every configuration is documented in sentences', () => {
    for (const [record, fields] of Object.entries(result.fields)) {
      assert.ok(fields.length > 0, record);
      for (const f of fields) {
        assert.match(f.documentation, /^[A-Z@].{15,}[.)]$/s, `${record} ${f.name}: ${JSON.stringify(f.documentation)}`);
      }
    }
  });

  test('wrong values are refused when the record is built', () => {
    assert.deepEqual(Object.entries(result.invalid).filter(([, refused]) => !refused).map(([what]) => what), [], 'not refused');
    assert.ok(Object.keys(result.invalid).length >= 10);
    assert.equal(result.valid, true, 'a valid configuration with every optional field set is accepted');
  });

  test('the README\'s example: ontap-exec-arroyocc, its account, and ontapd-wlp3s0 brought in', () => {
    const [exec] = result.example.exec.shepherd;
    assert.ok(exec);
    assert.deepEqual(exec.provision, ['ontap-exec-arroyocc']);
    assert.deepEqual(exec.requirement, ['ontapd-wlp3s0']);
    assert.match(exec.start, /^\(make-forkexec-constructor \(append \(list "\/run\/current-system\/profile\/bin\/ontap" "-t" "ipvlan" "-n" "arroyocc"\) \(quote \("--netns" "--uts" "--dhcp"\)\) \(list "\/run\/ontap\/port\.wlp3s0" "--" "\/gnu\/store\/\S+-util-linux\/bin\/setpriv" "--reuid=www" \(string-append "--regid=" \(number->string \(passwd:gid \(getpwnam "www"\)\)\)\) "--init-groups"\) \(quote \("--inh-caps=-all,\+net_bind_service" "--ambient-caps=-all,\+net_bind_service" "--bounding-set=-all,\+net_bind_service"\)\) \(list "--"\) \(list "\/gnu\/store\/\S+-darkhttpd\/bin\/darkhttpd" "\/www"\)\)/);
    assert.deepEqual(result.example.exec.accounts.map((a) => [a.kind, a.name, a.system]), [['group', 'www', true], ['user', 'www', true]]);
    assert.match(result.example.exec.accounts[1]!.shell!, /-shadow\/sbin\/nologin$/);

    const [ontapd] = result.example.ontapd.shepherd;
    assert.ok(ontapd);
    assert.deepEqual(ontapd.provision, ['ontapd-wlp3s0']);
    assert.match(ontapd.start, /^\(make-systemd-constructor \(list "\/gnu\/store\/\S+-util-linux\/bin\/setpriv" "--bounding-set=-all,\+net_admin,\+sys_admin,\+mknod,\+net_broadcast,\+net_bind_service" "--inh-caps=-all" "--" "\/run\/current-system\/profile\/bin\/ontapd" /);
    assert.match(ontapd.start, / "--family=ipvlan" "wlp3s0"\)/, 'the uplink family is the configuration\'s (ipvlan by default)');
    assert.match(ontapd.start, /\(endpoint \(make-socket-address AF_UNIX "\/run\/ontap\/port\.wlp3s0"\) #:name "port\.wlp3s0" #:style SOCK_SEQPACKET #:socket-owner 0 #:socket-group "ontap" #:socket-directory-permissions 488\)/);
    assert.equal(ontapd.stop, '(make-systemd-destructor)');
    assert.deepEqual(result.example.ontapd.accounts.map((a) => [a.kind, a.name, a.system]), [['group', 'ontap', true]]);

    const [zone] = result.example.zone.shepherd;
    assert.deepEqual(zone?.provision, ['ontap-zone']);
    assert.doesNotMatch(zone!.start, /--mdns/, 'multicast DNS is off by default');
    const [mdns] = result.example['zone-mdns'].shepherd;
    assert.match(mdns!.start, /\(quote \("--mdns" "--names=both" "--verbosity=debug"\)\)/, 'mdns? #t puts --mdns first');
    assert.match(zone!.start, /\(quote \("--names=both"\)\)/, 'names from aliases and host names by default');
    const [alias] = result.example['zone-alias'].shepherd;
    assert.match(alias!.start, /\(quote \("--names=alias"\)\)/, 'names "alias" gives --names=alias');
  });
});

describeWhen('the commands guix/ontap/services.scm gives the Shepherd, run here', missing([
  [() => hasCommand('guile'), 'needs guile-3.0 (apt-get install guile-3.0)'],
  [isRoot, 'needs root (network namespaces)'],
  [() => hasCommand('ip') && hasCommand('nsenter') && hasCommand('setpriv'), 'needs iproute2 and util-linux'],
  [() => hasCommand('systemd-socket-activate'), 'needs systemd-socket-activate (apt-get install systemd)'],
  [() => hasBusyboxApplets('httpd', 'wget'), `needs ${BUSYBOX} with httpd and wget (apt-get install busybox-static)`],
  [() => kernelHasKind('macvlan'), 'this kernel cannot create macvlan devices'],
]), () => {
  const nets = new TestNamespaces();
  let host = '';
  let wire = '';
  let client = '';
  let dir = '';
  const running: Background[] = [];

  before(() => {
    sweepStaleNamespaces();
    ({ host, wire } = nets.uplink());
    client = nets.add('client');
    dir = mkdtempSync(join(tmpdir(), 'ontap-guix-run-'));
    chmodSync(dir, 0o755);
    // The "ontap package": a bin/ with ontap and ontapd.
    mkdirSync(join(dir, 'ontap/bin'), { recursive: true });
    writeFileSync(join(dir, 'ontap/bin/ontapd'), `#!/bin/sh\nexec ${process.execPath} ${ONTAPD} "$@"\n`, { mode: 0o755 });
    writeFileSync(join(dir, 'ontap/bin/ontap'), `#!/bin/sh\nexec ${process.execPath} ${ONTAP} "$@"\n`, { mode: 0o755 });
    mkdirSync(join(dir, 'run'), { mode: 0o755 });
    mkdirSync(join(dir, 'www'), { mode: 0o755 });
    writeFileSync(join(dir, 'www/index.html'), 'hello from guix\n', { mode: 0o644 });
  });

  after(async () => {
    for (const p of running) await p.kill('SIGKILL');
    nets.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  test('ontapd socket-activated on the endpoint, then the workload: nobody, CAP_NET_BIND_SERVICE only, serving port 80', async () => {
    const setpriv = spawnSync('sh', ['-c', 'command -v setpriv'], { encoding: 'utf8' }).stdout.trim();
    const utilLinux = setpriv.replace(/\/bin\/setpriv$/, '');
    const { run } = check([join(dir, 'ontap'), utilLinux, join(dir, 'run'), 'up0', 'macvlan', 'nobody', 'nogroup', '+net_bind_service',
      '--', BUSYBOX, 'httpd', '-f', '-p', '80', '-h', join(dir, 'www')]);
    assert.ok(run);
    const [endpoint] = run.ontapd.endpoints;
    assert.ok(endpoint && run.ontapd.endpoints.length === 1);
    assert.equal(endpoint.style, 5, 'SOCK_SEQPACKET');
    // What the Shepherd's endpoint does (bind, listen, LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES),
    // systemd-socket-activate does too; the Shepherd also chmods the socket 0666 and the
    // directory to root:GROUP 0750.
    const ontapd = new Background(['ip', 'netns', 'exec', host, 'systemd-socket-activate', '--seqpacket', '-l', endpoint.path,
      `--fdname=${endpoint.name}`, ...run.ontapd.command], join(dir, 'ontapd.log'));
    running.push(ontapd);
    await ontapd.waitFor(/Listening on/, 'the endpoint bound');
    chmodSync(endpoint.path, 0o666);

    const workload = new Background(['ip', 'netns', 'exec', client, ...run.exec.command], join(dir, 'workload.log'));
    running.push(workload);
    await eventually('the workload listening on port 80', () => listening(workload.pid, 80), 15000)
      .catch((e: Error) => assert.fail(`${e.message}\n${workload.log}\n${ontapd.log}`));
    assert.match(ontapd.log, /event=serving uplink=up0 socket=fd:3/);
    const st = procStatus(workload.pid);
    assert.deepEqual(st.Uid!.split(/\s+/), ['65534', '65534', '65534', '65534']);
    for (const set of CAP_SETS) assert.equal(st[set], CAP_NET_BIND_SERVICE, `${set}: ${st[set]}`);
    assert.equal(nsenter(workload.pid, ['-u'], ['hostname']).trim(), 'arroyocc');
    // ontapd runs with the bounding set the service gives it.
    assert.equal(procStatus(ontapd.pid).CapBnd, capabilityMask(boundingSetForSetpriv(readUnit('ontapd@.service', 'up0'))), 'the same as ontapd@.service\'s');
    const address = await usableLinkLocal(['nsenter', '-t', String(workload.pid), '-n', '--']);
    assert.equal(await fetchOverLinkLocal(wire, 'peer0', address), 'hello from guix\n');
  });
});
