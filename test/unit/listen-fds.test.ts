import { test } from 'node:test';
import assert from 'node:assert/strict';
import { listenFds, ListenFdsError, MAX_LISTEN_FDS } from '../../src/common/listen-fds.js';

const PID = 4242;

test('descriptors 3.. with their names when LISTEN_PID is ours', () => {
  assert.deepEqual(listenFds({ LISTEN_PID: String(PID), LISTEN_FDS: '3', LISTEN_FDNAMES: 'port.eth0:eth1:ontapd.socket' }, PID), [
    { fd: 3, name: 'port.eth0' },
    { fd: 4, name: 'eth1' },
    { fd: 5, name: 'ontapd.socket' },
  ]);
});

test('LISTEN_PID missing, another pid or no pid at all: none, whatever LISTEN_FDS says', () => {
  for (const pid of [undefined, String(PID + 1), '', 'self', ` ${PID}`, `${PID}x`, '-1', `${PID}.0`]) {
    const env = { LISTEN_PID: pid, LISTEN_FDS: '2', LISTEN_FDNAMES: 'a:b' };
    assert.deepEqual(listenFds(env, PID), [], `LISTEN_PID=${JSON.stringify(pid)}`);
  }
  // Not ours, so not our problem either: garbage is not even looked at.
  assert.deepEqual(listenFds({ LISTEN_PID: String(PID + 1), LISTEN_FDS: 'lots' }, PID), []);
});

test('LISTEN_FDS missing or 0: none', () => {
  assert.deepEqual(listenFds({ LISTEN_PID: String(PID) }, PID), []);
  assert.deepEqual(listenFds({ LISTEN_PID: String(PID), LISTEN_FDS: '0' }, PID), []);
});

test('LISTEN_FDS garbage for us is an error that quotes it', () => {
  for (const count of ['', 'two', '-1', '1.5', '0x2', ' 2', '2 ', '1e3', String(MAX_LISTEN_FDS + 1), '99999999999999999999']) {
    assert.throws(
      () => listenFds({ LISTEN_PID: String(PID), LISTEN_FDS: count }, PID),
      (e: unknown) => e instanceof ListenFdsError && e.message.includes(`"${count}"`),
      `LISTEN_FDS=${JSON.stringify(count)}`,
    );
  }
  assert.equal(listenFds({ LISTEN_PID: String(PID), LISTEN_FDS: String(MAX_LISTEN_FDS) }, PID).length, MAX_LISTEN_FDS);
});

test('LISTEN_FDNAMES: by position; missing, empty and "unknown" entries are no name', () => {
  const env = (fdnames: string | undefined) => ({ LISTEN_PID: String(PID), LISTEN_FDS: '3', LISTEN_FDNAMES: fdnames });
  const names = (fdnames: string | undefined) => listenFds(env(fdnames), PID).map((p) => p.name);
  assert.deepEqual(names(undefined), [undefined, undefined, undefined]);
  assert.deepEqual(names(''), [undefined, undefined, undefined]);
  assert.deepEqual(names('a'), ['a', undefined, undefined]);
  assert.deepEqual(names('a::c'), ['a', undefined, 'c']);
  assert.deepEqual(names('unknown:b:unknown'), [undefined, 'b', undefined]);
  // More names than descriptors: the extra ones name nothing.
  assert.deepEqual(names('a:b:c:d'), ['a', 'b', 'c']);
  assert.deepEqual(listenFds(env('a:b:c'), PID).map((p) => p.fd), [3, 4, 5]);
});

test('the environment is left as it was, and process.env/process.pid are the defaults', () => {
  const env = { LISTEN_PID: String(PID), LISTEN_FDS: '1', LISTEN_FDNAMES: 'x' };
  listenFds(env, PID);
  assert.deepEqual(env, { LISTEN_PID: String(PID), LISTEN_FDS: '1', LISTEN_FDNAMES: 'x' });
  const saved = { ...process.env };
  try {
    process.env.LISTEN_PID = String(process.pid);
    process.env.LISTEN_FDS = '1';
    process.env.LISTEN_FDNAMES = 'port.lo';
    assert.deepEqual(listenFds(), [{ fd: 3, name: 'port.lo' }]);
  } finally {
    for (const k of ['LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES']) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  }
});
