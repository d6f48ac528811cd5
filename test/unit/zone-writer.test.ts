import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ZoneWriter, readPrevious, writeAtomic } from '../../src/ontap-zone/writer.js';
import { parse, UsageError } from '../../src/ontap-zone/args.js';
import { ROOT } from '../helpers/ontapd.js';

const quiet = { debug() {}, info() {}, warn() {} };
const MAIN = join(ROOT, 'dist/src/ontap-zone/main.js');

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'ontap-zone-t-'));
}

describe('ontap-zone writer', () => {
  test('atomic replace: no temporary file left, mode 0644, content exact', () => {
    const dir = tmp();
    try {
      const path = join(dir, 'data');
      writeAtomic(path, 'one\n');
      writeAtomic(path, 'two\n');
      assert.equal(readFileSync(path, 'utf8'), 'two\n');
      assert.deepEqual(readdirSync(dir), ['data']);
      assert.equal(statSync(path).mode & 0o777, 0o644);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the previous file is read only when it is a regular file: not through a symlink, not from a FIFO', () => {
    const dir = tmp();
    try {
      const path = join(dir, 'data');
      assert.equal(readPrevious(path), undefined);
      writeFileSync(join(dir, 'elsewhere'), 'secret\n');
      symlinkSync(join(dir, 'elsewhere'), path);
      assert.equal(readPrevious(path), undefined);
      // The rename replaces the link itself; its target keeps its content.
      writeAtomic(path, 'zone\n');
      assert.ok(lstatSync(path).isFile());
      assert.equal(readFileSync(join(dir, 'elsewhere'), 'utf8'), 'secret\n');
      assert.equal(readPrevious(path), 'zone\n');
      rmSync(path);
      const fifo = spawnSync('mkfifo', [path]);
      if (fifo.status === 0) assert.equal(readPrevious(path), undefined, 'a FIFO (open would block without O_NONBLOCK)');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('identical content is not rewritten (the mtime, tinydns\'s SOA serial, stays), even across restarts', () => {
    const dir = tmp();
    try {
      const path = join(dir, 'data');
      const w = new ZoneWriter(path, undefined, quiet);
      assert.equal(w.write('a\n'), true);
      assert.equal(w.write('a\n'), false);
      assert.equal(new ZoneWriter(path, undefined, quiet).write('a\n'), false, 'a restart reads the file back');
      assert.equal(w.write('b\n'), true);
      assert.equal(w.writes, 2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a failed write leaves the old file and no temporary', () => {
    // The write fails in a child whose file size limit (RLIMIT_FSIZE) is below the new content:
    // EFBIG mid-write, which also works as root (directory permissions would not stop root).
    const dir = tmp();
    try {
      const path = join(dir, 'data');
      writeAtomic(path, 'old\n');
      const writer = new URL('../../src/ontap-zone/writer.js', import.meta.url).pathname;
      const r = spawnSync('prlimit', ['--fsize=8', process.execPath, '--input-type=module', '-e',
        `import { writeAtomic } from ${JSON.stringify(writer)}; writeAtomic(${JSON.stringify(path)}, 'x'.repeat(64));`], { encoding: 'utf8' });
      assert.notEqual(r.status, 0, 'the write failed');
      assert.match(r.stderr, /EFBIG/);
      assert.equal(readFileSync(path, 'utf8'), 'old\n');
      assert.deepEqual(readdirSync(dir), ['data']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('--exec runs in the file\'s directory after a write; writes during a run give exactly one more run', async () => {
    const dir = tmp();
    try {
      const path = join(dir, 'data');
      const log = join(dir, 'runs');
      writeFileSync(log, '');
      const w = new ZoneWriter(path, `sleep 0.2; echo "$PWD $ONTAP_ZONE_FILE $(cat data)" >> runs`, quiet);
      w.write('1');
      const first = w.runExec();
      w.write('2');
      const second = w.runExec();
      w.write('3');
      const third = w.runExec();
      await Promise.all([first, second, third]);
      const runs = readFileSync(log, 'utf8').trim().split('\n');
      assert.deepEqual(runs, [`${dir} ${path} 3`, `${dir} ${path} 3`].slice(0, runs.length));
      assert.equal(runs.length, 2, `runs: ${runs.join(' | ')}`);
      assert.equal(w.execs, 2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('ontap-zone command line', () => {
  test('defaults and normalisation', () => {
    const a = parse(['--domain', 'Example.TEST.', '--lan', '10.0.0.0/8', '--lan', '192.168.0.0/16']);
    assert.ok(typeof a === 'object');
    assert.equal(a.zone.domain, 'example.test');
    assert.equal(a.zone.ttl, 60);
    assert.equal(a.zone.nameServer, 'ns.example.test');
    assert.equal(a.zone.lan.length, 2);
    assert.match(a.output!, /\/data$/);
    assert.equal(a.once, false);
    assert.equal(a.maxAddresses, 64);
    const b = parse(['--domain', 'd.test', '--max-addresses', '8']);
    assert.ok(typeof b === 'object');
    assert.equal(b.maxAddresses, 8);
  });

  test('--mdns: the zone file is optional; with --domain both', () => {
    const a = parse(['--mdns']);
    assert.ok(typeof a === 'object');
    assert.equal(a.mdns, true);
    assert.equal(a.output, undefined);
    const b = parse(['--mdns', '--domain', 'd.test']);
    assert.ok(typeof b === 'object');
    assert.equal(b.mdns, true);
    assert.match(b.output!, /\/data$/);
    const c = parse(['--domain', 'd.test']);
    assert.ok(typeof c === 'object');
    assert.equal(c.mdns, false);
  });

  const bad: Array<[string, string[], RegExp]> = [
    ['no domain', [], /--domain DOMAIN is required \(or --mdns/],
    ['--output without a zone', ['--mdns', '--output', 'x'], /give --domain too/],
    ['--lan without a zone', ['--mdns', '--lan', '10.0.0.0/8'], /give --domain too/],
    ['a bad domain', ['--domain', 'ex_ample.test'], /LDH/],
    ['the local zone', ['--domain', 'local'], /cannot be local/],
    ['an IPv6 --lan', ['--domain', 'd.test', '--lan', 'fd00::/8'], /IPv4 address only/],
    ['host bits in --lan', ['--domain', 'd.test', '--lan', '10.0.0.1/8'], /host bits zero/],
    ['a negative ttl', ['--domain', 'd.test', '--ttl', '-1'], /--ttl/],
    ['an unknown option', ['--domain', 'd.test', '--colour'], /Unknown option/],
    ['a positional', ['--domain', 'd.test', 'extra'], /unexpected argument/],
    ['an empty --exec', ['--domain', 'd.test', '--exec', ' '], /--exec needs a command/],
    ['--max-addresses 0', ['--domain', 'd.test', '--max-addresses', '0'], /--max-addresses must be an integer from 1 to/],
    ['--max-addresses not a number', ['--domain', 'd.test', '--max-addresses', 'lots'], /--max-addresses must be an integer/],
  ];
  for (const [what, argv, message] of bad) {
    test(`usage error: ${what}`, () => assert.throws(() => parse(argv), (e: unknown) => e instanceof UsageError && message.test((e as Error).message)));
  }

  test('the command: --help exits 0, usage errors exit 64 with a hint', () => {
    const help = spawnSync(process.execPath, [MAIN, '--help'], { encoding: 'utf8' });
    assert.equal(help.status, 0);
    assert.match(help.stdout, /^Usage: ontap-zone --domain DOMAIN/);
    assert.match(help.stdout, /^  --max-addresses N +addresses one workload publishes at most \(default 64\)/m);
    const usage = spawnSync(process.execPath, [MAIN, '--lan', 'fd00::/8', '--domain', 'd.test'], { encoding: 'utf8' });
    assert.equal(usage.status, 64);
    assert.match(usage.stderr, /^ontap-zone: --lan fd00::\/8: .*\nTry 'ontap-zone --help'\.\n$/);
  });
});
