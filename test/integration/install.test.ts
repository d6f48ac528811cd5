/**
 * The project installed as a user installs it: `npm pack`, then `npm install -g --prefix` of the
 * tarball into a prefix made here (test/helpers/install.ts). What the tarball holds, the installed
 * commands (--version, a real allocation through the installed ontapd and ontap, as uid 65534),
 * and what every command says when the addon is missing, and that the command it names fixes it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Background } from '../helpers/background.js';
import { COMMANDS, installFresh, type Installation } from '../helpers/install.js';
import { ROOT } from '../helpers/ontapd.js';
import { TestNamespaces, eventually, linksOfKind, sweepStaleNamespaces } from '../helpers/netns.js';
import { describeWhen, hasCommand, isRoot, kernelHasKind, missing } from '../helpers/requirements.js';

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string; bin: Record<string, string> };

/** What a user needs and nothing else: the compiled commands, the addon's sources, units, docs. */
const ALLOWED = [
  /^package\.json$/, /^README\.md$/, /^LICENSE$/,
  /^dist\/src\/(common|dhcp|mdns|native|ontap-client|ontap-zone|ontapd|protocol)\/[a-z0-9-]+\.js$/,
  /^dist\/src\/netns\/([a-z]+\/){0,2}[a-z0-9-]+\.js$/,
  /^dist\/man\/man[18]\/[a-z-]+\.[18]$/,
  /^native\/[a-z0-9_]+\.(cc|h)$/, /^binding\.gyp$/,
  /^bin\/runvm(\.sh)?$/,
  /^systemd\/[a-z@.-]+\.(service|socket|conf)$/, /^systemd\/examples\/[a-z.-]+$/,
  /^guix\/ontap\/services\.scm$/,
  /^docs\/(design|services)\.md$/,
];

test('npm pack holds what a user needs and nothing else', () => {
  const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const files = (JSON.parse(r.stdout) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path).sort();
  const stray = files.filter((f) => !ALLOWED.some((re) => re.test(f)));
  assert.deepEqual(stray, [], 'files no user needs');
  for (const needed of ['LICENSE', 'README.md', 'package.json', 'binding.gyp', 'bin/runvm.sh', 'systemd/ontapd@.service', ...Object.values(pkg.bin)]) {
    assert.ok(files.includes(needed), `the tarball lacks ${needed}`);
  }
  assert.ok(files.some((f) => f.startsWith('native/') && f.endsWith('.cc')), 'the addon\'s sources');
  assert.ok(!files.some((f) => /(^|\/)test\/|\.map$|\.ts$|demo/.test(f)), 'no tests, maps, TypeScript or demo');
  assert.match(readFileSync(join(ROOT, 'LICENSE'), 'utf8'), /GNU GENERAL PUBLIC LICENSE\s+Version 3, 29 June 2007/);
  assert.equal(pkg.name, 'ontapd', 'the npm name "ontap" belongs to another package');
});

const reason = missing([
  [isRoot, 'needs root (network namespaces)'],
  [() => hasCommand('ip') && hasCommand('setpriv'), 'needs iproute2 and setpriv'],
  [() => kernelHasKind('macvlan'), 'this kernel cannot create macvlan devices'],
]);

describeWhen('installed from the packed tarball into a prefix', reason, () => {
  let inst: Installation;
  const nets = new TestNamespaces();
  let dir = '';

  before(() => {
    sweepStaleNamespaces();
    inst = installFresh();
    dir = mkdtempSync(join(tmpdir(), 'ontap-install-'));
    chmodSync(dir, 0o755);
  });
  after(() => {
    nets.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (inst) rmSync(inst.prefix, { recursive: true, force: true });
  });

  function run(argv: string[]): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 120000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  test('every command is on PREFIX/bin and the three node ones print the package\'s version', () => {
    for (const c of COMMANDS) assert.ok(existsSync(inst.bin(c)), c);
    for (const c of ['ontapd', 'ontap', 'ontap-zone'] as const) {
      const r = run([inst.bin(c), '--version']);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, `${c} ${pkg.version}\n`);
    }
    const help = run([inst.bin('runvm'), '-h']);
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /^Usage: runvm /);
  });

  test('man finds every page in the prefix, and they render without a warning', () => {
    for (const [section, page] of [['8', 'ontapd'], ['1', 'ontap'], ['8', 'ontap-zone'], ['1', 'runvm']] as const) {
      const where = run(['man', '-M', inst.manDir, '-w', section, page]);
      assert.equal(where.status, 0, `${page}(${section}): ${where.stderr}`);
      // man -w resolves the link npm made in PREFIX/share/man into the package.
      assert.equal(realpathSync(where.stdout.trim()), realpathSync(join(inst.manDir, `man${section}`, `${page}.${section}`)));
      const r = spawnSync('man', ['--warnings', '-M', inst.manDir, section, page], { encoding: 'utf8', env: { ...process.env, MANWIDTH: '80', MANPAGER: 'cat', PAGER: 'cat' } });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr, '', `${page}(${section}) warnings`);
      assert.match(r.stdout, new RegExp(`^NAME\\n\\s+${page}\\s+-\\s+\\S`, 'm'));
      assert.match(r.stdout, new RegExp(`ontap ${pkg.version.replace(/\./g, '\\.')}`), 'the footer carries the package version');
    }
  });

  test('systemd-analyze verify: the installed units, pointed at the prefix, find their commands and manual pages', (t) => {
    if (!hasCommand('systemd-analyze')) {
      assert.notEqual(process.env.CI, 'true', 'needs systemd-analyze (apt-get install systemd)');
      t.skip('needs systemd-analyze (apt-get install systemd)');
      return;
    }
    const units = join(inst.packageDir, 'systemd');
    const copies = mkdtempSync(join(tmpdir(), 'ontap-units-'));
    try {
      const files: string[] = [];
      for (const name of ['ontapd@.socket', 'ontapd@.service', 'ontap-exec@.service', 'ontap-zone.service']) {
        const text = readFileSync(join(units, name), 'utf8')
          .replace(/^ExecStart=(ontapd|ontap-zone|ontap)(?=\s)/gm, (_, c: string) => `ExecStart=${inst.prefix}/bin/${c}`)
          .replaceAll('%i', 'up0').replaceAll('%I', 'up0');
        const copy = join(copies, name.replace('@.', '@up0.'));
        writeFileSync(copy, text);
        files.push(copy);
      }
      const verify = (manpath: string | undefined) => spawnSync('systemd-analyze', ['verify', '--man=yes', '--generators=no', ...files], {
        cwd: copies, encoding: 'utf8', env: { ...process.env, MANPATH: manpath },
      });
      // A trailing colon keeps man's own path (setpriv(1) is the system's).
      const found = verify(`${inst.manDir}:`);
      assert.equal(found.status, 0, found.stderr);
      assert.equal(found.stderr.trim(), '', 'no warning at all');
      // Proof that the pages were looked for: without the prefix they are not found.
      const lost = verify('/nonexistent:');
      assert.match(lost.stderr, /man ontapd\(8\)/);
    } finally {
      rmSync(copies, { recursive: true, force: true });
    }
  });

  test('the installed ontapd serves the installed ontap, run by uid 65534', async () => {
    const { host } = nets.uplink();
    const client = nets.add('client');
    const daemon = new Background(['ip', 'netns', 'exec', host, inst.bin('ontapd'), '--socket-dir', dir, '--mode', '0666', '--family', 'macvlan', 'up0'], join(dir, 'ontapd.log'));
    try {
      await eventually('ontapd serving', () => /event=serving uplink=up0/.test(daemon.log), 15000);
      const r = run(['ip', 'netns', 'exec', client, 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups',
        inst.bin('ontap'), '-t', 'macvlan', join(dir, 'port.up0'), '--', 'sh', '-c', 'echo "$ONTAP_TYPE $ONTAP_IFNAME"; ip -o link show "$ONTAP_IFNAME"']);
      assert.equal(r.status, 0, `${r.stderr}\n${daemon.log}`);
      const [type, ifname] = r.stdout.split('\n')[0]!.split(' ');
      assert.equal(type, 'macvlan');
      assert.match(r.stdout, new RegExp(`^\\d+: ${ifname}@`, 'm'), 'COMMAND saw its device in its namespace');
      await eventually('the device gone after COMMAND exited', () => linksOfKind(client, 'macvlan').length === 0, 5000);
    } finally {
      await daemon.kill('SIGTERM');
    }
  });

  test('without the addon every command says so in one line, naming the command that fixes it; that command does', () => {
    const addon = join(inst.packageDir, 'build/Release/ontap_native.node');
    assert.ok(existsSync(addon), 'npm install -g built the addon from the packed sources');
    renameSync(addon, `${addon}.away`);
    const fix = `npm rebuild -g --prefix ${inst.prefix} ontapd`;
    try {
      const calls: Array<[string, string[]]> = [
        ['ontapd', ['up0']],
        ['ontap', ['-t', 'macvlan', join(dir, 'port.up0'), '--', 'true']],
        ['ontap-zone', ['--domain', 'example.org', '--output', join(dir, 'zone'), '--once']],
      ];
      for (const [c, args] of calls) {
        const r = run([inst.bin(c as 'ontapd'), ...args]);
        assert.equal(r.status, 70, `${c}: ${r.stderr}`);
        assert.equal(r.stderr, `${c}: the native addon ${addon} is missing (was the install script skipped?): run ${fix}\n`);
      }
    } finally {
      rmSync(`${addon}.away`, { force: true });
    }
    const rebuilt = run(['sh', '-c', fix]);
    assert.equal(rebuilt.status, 0, `${rebuilt.stdout}\n${rebuilt.stderr}`);
    assert.ok(existsSync(addon), `${fix} rebuilt the addon`);
    const r = run([inst.bin('ontap'), '-t', 'macvlan', join(dir, 'port.none'), '--', 'true']);
    assert.equal(r.status, 69, r.stderr);
    assert.doesNotMatch(r.stderr, /native addon/);
  });
});
