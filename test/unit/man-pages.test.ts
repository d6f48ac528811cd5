/**
 * The manual pages as installed: docs/NAME.N built into dist/man/manN/NAME.N (scripts/man.mjs),
 * listed in package.json's "man". Each one:
 *  - carries the package's version in .TH and a NAME line whatis/apropos can index (lexgrog);
 *  - formats without a single warning (groff -ww, man --warnings) and reads at 80 columns;
 *  - documents exactly the options its command's --help lists, no more and no fewer;
 *  - resolves the units' Documentation=man: links (systemd-analyze verify, man's own lookup).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { ROOT } from '../helpers/ontapd.js';
import { describeWhen, hasCommand, missing } from '../helpers/requirements.js';
import { requireOrSkip } from '../helpers/skip.js';

const MAN_DIR = join(ROOT, 'dist/man');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; man?: string[] };

interface Page {
  name: string;
  section: string;
  /** Path inside the package, as package.json's "man" gives it. */
  path: string;
  /** How to print the command's usage, per implementation. */
  help: Array<[string, string[]]>;
}

const node = process.execPath;
const PAGES: Page[] = [
  { name: 'ontapd', section: '8', path: 'dist/man/man8/ontapd.8', help: [['ontapd', [node, join(ROOT, 'dist/src/ontapd/main.js'), '--help']]] },
  { name: 'ontap', section: '1', path: 'dist/man/man1/ontap.1', help: [['ontap', [node, join(ROOT, 'dist/src/ontap-client/main.js'), '--help']]] },
  { name: 'ontap-zone', section: '8', path: 'dist/man/man8/ontap-zone.8', help: [['ontap-zone', [node, join(ROOT, 'dist/src/ontap-zone/main.js'), '--help']]] },
  {
    name: 'runvm', section: '1', path: 'dist/man/man1/runvm.1',
    help: [['bin/runvm.sh', ['sh', join(ROOT, 'bin/runvm.sh'), '-h']], ['bin/runvm (execline)', [join(ROOT, 'bin/runvm'), '-h']]],
  },
];
const OURS = new Set(PAGES.map((p) => `${p.name}(${p.section})`));

const toolsMissing = missing([
  [() => hasCommand('groff'), 'needs groff (apt-get install groff-base)'],
  [() => hasCommand('man') && hasCommand('lexgrog'), 'needs man-db (apt-get install man-db)'],
]);

/** man's environment for plain, reproducible text: 80 columns, UTF-8, no user formatting options. */
function manEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, MANWIDTH: '80', LC_ALL: 'C.UTF-8', ...extra };
  for (const k of ['MANOPT', 'MAN_KEEP_FORMATTING', 'MANROFFOPT', 'GROFF_SGR', 'MANPAGER', 'PAGER']) delete env[k];
  return env;
}

/** `man -l` of a page: what a reader sees at 80 columns, and what groff said about it. */
function render(file: string): { text: string; stderr: string; status: number | null } {
  const r = spawnSync('man', ['--warnings', '-l', file], { env: manEnv(), encoding: 'utf8' });
  return { text: r.stdout, stderr: r.stderr, status: r.status };
}

/** Rendered sections: heading (a line at column 0) -> its body lines. */
function sections(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let body: string[] | undefined;
  for (const line of text.split('\n')) {
    if (/^[A-Z][A-Z ]*$/.test(line)) out.set(line, (body = []));
    else if (body !== undefined && !/^\S/.test(line)) body.push(line);
    else body = undefined; // the header and footer lines
  }
  return out;
}

/**
 * Options named by a usage or an OPTIONS list: a line indented and starting with "-" is an entry
 * (`  -t, --type TYPE   text` in --help, `       -t, --type TYPE` in a page); its tag runs to two
 * spaces or the end of the line.
 */
function optionsOf(lines: string[], indent: RegExp): Set<string> {
  const options = new Set<string>();
  for (const line of lines) {
    const m = indent.exec(line);
    if (m === null) continue;
    const tag = line.slice(m[0].length).split(/ {2}/)[0]!;
    for (const word of tag.split(/[,\s]+/)) if (/^--?[a-z][a-z0-9-]*$/.test(word)) options.add(word);
  }
  return options;
}

const sorted = (s: Set<string>): string[] => [...s].sort();

test('package.json "man" lists the four pages, and every docs/ page is one of them', () => {
  assert.deepEqual(pkg.man?.slice().sort(), PAGES.map((p) => p.path).sort());
  const sources = readdirSync(join(ROOT, 'docs')).filter((f) => /\.[1-8]$/.test(f)).sort();
  assert.deepEqual(sources, PAGES.map((p) => `${p.name}.${p.section}`).sort());
});

for (const page of PAGES) {
  const file = join(ROOT, page.path);

  test(`${page.name}(${page.section}): built, with the package version in .TH`, () => {
    assert.ok(existsSync(file), `${page.path} is missing: build with npm run build (or node scripts/man.mjs)`);
    assert.equal(basename(file), `${page.name}.${page.section}`);
    const th = readFileSync(file, 'utf8').split('\n').filter((l) => l.startsWith('.TH '));
    assert.equal(th.length, 1);
    assert.match(th[0]!, new RegExp(`^\\.TH ${page.name} ${page.section} \\d{4}-\\d{2}-\\d{2} "ontap ${pkg.version.replaceAll('.', '\\.')}" "[^"]+"$`));
  });

  test(`${page.name}(${page.section}): options and dashes in the source are \\- (a plain - is a hyphen)`, () => {
    const source = readFileSync(join(ROOT, 'docs', `${page.name}.${page.section}`), 'utf8');
    const bare = source.split('\n').filter((l) => !l.startsWith('.\\"') && /(?<![\\\w-])-{1,2}[A-Za-z0-9]/.test(l));
    assert.deepEqual(bare, []);
  });

  describeWhen(`${page.name}(${page.section}) formatted`, toolsMissing, () => {
    test('groff -man -ww -z: no warning', () => {
      const r = spawnSync('groff', ['-man', '-ww', '-z', file], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr, '');
    });

    test('man --warnings -l at 80 columns: no warning, no line over 80, no word broken by hyphenation', () => {
      const r = render(file);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr, '');
      const lines = r.text.split('\n');
      assert.ok(lines.length > 20, r.text);
      for (const line of lines) {
        assert.ok([...line].length <= 80, `over 80 columns: ${line}`);
        assert.ok(!line.endsWith('\u2010'), `hyphenated: ${line}`);
      }
    });

    test('NAME in "name - description" form (lexgrog reads what whatis and apropos index)', () => {
      const lex = spawnSync('lexgrog', [file], { encoding: 'utf8' });
      assert.equal(lex.status, 0, lex.stdout + lex.stderr);
      assert.match(lex.stdout, new RegExp(`^${file}: "${page.name} - \\S.*"\\n$`));
      const name = sections(render(file).text).get('NAME')?.join(' ').trim().replace(/\s+/g, ' ');
      assert.match(name ?? '', new RegExp(`^${page.name} - \\S`));
    });

    test('SYNOPSIS, DESCRIPTION, OPTIONS and SEE ALSO, which names the other pages', () => {
      const s = sections(render(file).text);
      for (const h of ['NAME', 'SYNOPSIS', 'DESCRIPTION', 'OPTIONS', 'EXIT STATUS', 'SEE ALSO']) {
        assert.ok((s.get(h)?.join('').trim() ?? '') !== '', `no ${h} section`);
      }
      assert.match(s.get('SYNOPSIS')!.join(' '), new RegExp(`^\\s+${page.name} `));
      const seeAlso = s.get('SEE ALSO')!.join(' ');
      for (const other of OURS) if (other !== `${page.name}(${page.section})`) assert.ok(seeAlso.includes(other), `SEE ALSO lacks ${other}`);
    });

    for (const [impl, argv] of page.help) {
      test(`OPTIONS documents exactly the options ${impl} --help lists`, (t) => {
        if (impl.includes('execline') && !requireOrSkip(t, hasCommand('execlineb'), 'needs execline (apt-get install execline)')) return;
        const help = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
        assert.equal(help.status, 0, help.stderr);
        const listed = optionsOf(help.stdout.split('\n'), /^\s+(?=-)/);
        assert.ok(listed.size >= 4, `too few options parsed from --help:\n${help.stdout}`);
        const documented = optionsOf(sections(render(file).text).get('OPTIONS') ?? [], /^ {7}(?=-)/);
        assert.deepEqual(sorted(documented), sorted(listed), `${page.path} OPTIONS vs ${impl}'s usage`);
      });
    }
  });
}

/** man:NAME(N) links of every unit and example in systemd/, per file. */
function documentationLinks(): Map<string, string[]> {
  const links = new Map<string, string[]>();
  const dirs = [join(ROOT, 'systemd'), join(ROOT, 'systemd/examples')];
  for (const dir of dirs) {
    for (const f of readdirSync(dir).filter((n) => /\.(service|socket)$/.test(n))) {
      const text = readFileSync(join(dir, f), 'utf8');
      const found = [...text.matchAll(/^Documentation=(.*)$/gm)].flatMap((m) => m[1]!.trim().split(/\s+/));
      links.set(f, found.filter((l) => l.startsWith('man:')).map((l) => l.slice(4)));
    }
  }
  return links;
}

test('every Documentation=man: link to an ontap command names a built page', () => {
  const ours = [...documentationLinks().values()].flat().filter((l) => OURS.has(l) || /^(ontap|runvm)/.test(l));
  assert.ok(ours.length >= 5, `found ${ours.join(' ')}`);
  for (const link of ours) {
    const [, name, section] = /^([a-z0-9-]+)\(([1-8])\)$/.exec(link) ?? [];
    assert.ok(name !== undefined && OURS.has(link), `${link} is not one of ${[...OURS].join(' ')}`);
    assert.ok(existsSync(join(MAN_DIR, `man${section}`, `${name}.${section}`)), `no page for ${link}`);
  }
});

describeWhen('systemd-analyze verify finds the units\' manual pages on MANPATH', missing([
  [() => hasCommand('systemd-analyze'), 'needs systemd-analyze (apt-get install systemd)'],
  [() => hasCommand('man'), 'needs man-db (apt-get install man-db)'],
]), () => {
  // One stand-in unit per shipped unit, with its links to our pages: systemd-analyze runs man for
  // each of them (the other pages, e.g. setpriv(1), are the distribution's business).
  let dir = '';
  let units: string[] = [];
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'ontap-man-units-'));
    units = [...documentationLinks()].filter(([, links]) => links.some((l) => OURS.has(l))).map(([file, links], i) => {
      const unit = join(dir, `ontap-doc-${i}.service`);
      writeFileSync(unit, `[Unit]\nDescription=links of ${file}\nDocumentation=${links.filter((l) => OURS.has(l)).map((l) => `man:${l}`).join(' ')}\n\n[Service]\nExecStart=/bin/true\n`);
      return unit;
    });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const verify = (manpath: string) =>
    spawnSync('systemd-analyze', ['verify', '--man=yes', '--generators=no', ...units], { cwd: dir, env: manEnv({ MANPATH: manpath }), encoding: 'utf8' });

  test('with MANPATH=dist/man: no warning', () => {
    assert.ok(units.length >= 4);
    const r = verify(MAN_DIR);
    assert.equal(r.stderr.trim(), '', `systemd-analyze printed:\n${r.stderr}`);
    assert.equal(r.status, 0);
  });

  test('without the pages: every link warns (the check can fail)', () => {
    const r = verify(join(dir, 'empty'));
    assert.notEqual(r.status, 0);
    for (const page of ['ontapd(8)', 'ontap(1)', 'ontap-zone(8)']) assert.ok(r.stderr.includes(`Command 'man ${page}' failed`), r.stderr);
  });
});
