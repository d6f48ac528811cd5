#!/usr/bin/env node
// The README's test command: unit and host integration tests with node:test, then the VM suite.
// File lists are built here because Node 20's directory search treats every .js under a test/
// directory as a test file.
import { readdirSync, rmSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function collect(dir, out = []) {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) collect(path, out);
    else if (name.endsWith('.test.js')) out.push(path);
  }
  return out;
}

const only = process.argv.slice(2);

// A machine the tests run on usually has namespaces of its own with nsids (container runtimes,
// an ontapd, ontap-zone): tests must never assume nsids start anywhere. Make sure this run sees
// some from the start, in the initial namespace and in each other (named like the tests'
// namespaces, so a later run sweeps them if this one dies).
const foreign = [];
if (process.getuid?.() === 0 && spawnSync('ip', ['netns', 'list'], { stdio: 'ignore' }).status === 0) {
  for (let i = 0; i < 3; i++) {
    const name = `ontap-t-${process.pid}-0-foreign${i}`;
    if (spawnSync('ip', ['netns', 'add', name], { stdio: 'inherit' }).status !== 0) break;
    foreign.push(name);
    spawnSync('ip', ['netns', 'set', name, 'auto'], { stdio: 'inherit' });
  }
  if (foreign.length === 3) {
    spawnSync('ip', ['-n', foreign[0], 'link', 'add', 'fa', 'type', 'veth', 'peer', 'name', 'fb', 'netns', foreign[1]], { stdio: 'inherit' });
    spawnSync('ip', ['-n', foreign[2], 'netns', 'set', foreign[1], 'auto'], { stdio: 'inherit' });
  }
}
const removeForeign = () => {
  for (const name of foreign.splice(0)) spawnSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
};

// Tests that run ontap as another uid or under systemd use it as installed (test/helpers/install.ts):
// pack and install once for the whole run, into a prefix removed at the end.
let prefix;
if (!process.env.ONTAP_TEST_PREFIX) {
  const { installFresh } = await import('../dist/test/helpers/install.js');
  const t0 = Date.now();
  try {
    prefix = installFresh().prefix;
  } catch (e) {
    process.stderr.write(`test: installing the packed project failed: ${e.message}\n`);
    removeForeign();
    process.exit(1);
  }
  process.stderr.write(`test: installed the packed project into ${prefix} in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  process.env.ONTAP_TEST_PREFIX = prefix;
}
const cleanUp = () => {
  if (prefix) rmSync(prefix, { recursive: true, force: true });
  removeForeign();
};
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    cleanUp();
    process.exit(128 + { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 }[signal]);
  });
}

const suites = only.length > 0 ? only : ['unit', 'integration', 'vm'];
let status = 0;
const files = [];
if (suites.includes('unit')) files.push(...collect('dist/test/unit'));
if (suites.includes('integration')) files.push(...collect('dist/test/integration').filter((f) => !f.includes('/vm/')));
if (files.length > 0) {
  const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...files], { stdio: 'inherit' });
  status = r.status ?? 1;
}
if (suites.includes('vm') && existsSync('dist/test/integration/vm/run.js')) {
  const r = spawnSync(process.execPath, ['dist/test/integration/vm/run.js', '--suite'], { stdio: 'inherit' });
  if (status === 0) status = r.status ?? 1;
}
cleanUp();
process.exit(status);
