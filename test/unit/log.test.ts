import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, fstatSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Logger, isJournalStream } from '../../src/common/log.js';

/** A file standing in for the journal's stream socket: JOURNAL_STREAM names a (dev, inode). */
function withStream(fn: (fd: number, stream: string, path: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'ontap-log-'));
  const path = join(dir, 'stream');
  const fd = openSync(path, 'w');
  try {
    const st = fstatSync(fd);
    fn(fd, `${st.dev}:${st.ino}`, path);
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
}

test('on the journal stream every line starts with its syslog priority', () => {
  withStream((fd, stream, path) => {
    const log = new Logger('ontapd', 'debug', fd, { JOURNAL_STREAM: stream });
    log.debug('a');
    log.info('b', { uid: 65534 });
    log.warn('c');
    log.error('d');
    assert.deepEqual(readFileSync(path, 'utf8').split('\n'), [
      '<7>ontapd: level=debug event=a',
      '<6>ontapd: level=info event=b uid=65534',
      '<4>ontapd: level=warn event=c',
      '<3>ontapd: level=error event=d',
      '',
    ]);
  });
});

test('anywhere else (another inode, no or garbled JOURNAL_STREAM) lines carry no prefix', () => {
  withStream((fd, stream, path) => {
    const [dev, ino] = stream.split(':');
    for (const env of [{}, { JOURNAL_STREAM: `${dev}:${Number(ino) + 1}` }, { JOURNAL_STREAM: 'x' }, { JOURNAL_STREAM: `${stream}:1` }]) {
      assert.equal(isJournalStream(fd, env), false, JSON.stringify(env));
      new Logger('ontapd', 'info', fd, env).warn('c');
    }
    assert.equal(readFileSync(path, 'utf8'), 'ontapd: level=warn event=c\n'.repeat(4));
  });
});

test('a closed descriptor is never the journal', () => {
  assert.equal(isJournalStream(987654, { JOURNAL_STREAM: '1:1' }), false);
});
