#!/usr/bin/env node
// The README's test command: unit and host integration tests with node:test, then the VM suite.
// File lists are built here because Node 20's directory search treats every .js under a test/
// directory as a test file.
import { readdirSync, statSync, existsSync } from 'node:fs';
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
process.exit(status);
