/**
 * The mDNS responder's rules (RFC 6762), driven by a clock of the test's own: what it sends, when,
 * and to whom. The wire format is the codec's (its own tests use captures of avahi and dig); the
 * real peers are in the integration tests (avahi, a standard-library client).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CLASS_IN, FLAG_AA, FLAG_QR, TYPE, decodeMessage, encodeMessage, type Message, type Question, type ResourceRecord } from '../../src/mdns/dns.js';
import { LinkResponder, type Clock, type Destination, type Timer } from '../../src/mdns/responder.js';
import { recordSet, reverseName, type LinkAddress } from '../../src/mdns/records.js';
import { parseAddress } from '../../src/ontap-zone/classify.js';

class TestClock implements Clock {
  t = 1000;
  private timers: Array<{ at: number; fn: () => void; live: boolean }> = [];
  now(): number {
    return this.t;
  }
  after(ms: number, fn: () => void): Timer {
    const entry = { at: this.t + ms, fn, live: true };
    this.timers.push(entry);
    return { cancel: () => (entry.live = false) };
  }
  /** Runs every timer due up to now + ms, in time order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const next = this.timers.filter((x) => x.live && x.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!next) break;
      next.live = false;
      this.t = next.at;
      next.fn();
    }
    this.t = end;
    this.timers = this.timers.filter((x) => x.live);
  }
}

interface Sent { at: number; family: 4 | 6; message: Message; dest: Destination }

function address(family: 4 | 6, text: string): LinkAddress {
  return { family, address: text, bytes: parseAddress(family, text)! };
}

const V4 = address(4, '10.0.0.5');
const V6 = address(6, 'fe80::1234');

function setup(addresses: LinkAddress[] = [V4, V6], families: Array<4 | 6> = [4, 6]) {
  const clock = new TestClock();
  const sent: Sent[] = [];
  const renames: string[] = [];
  const r = new LinkResponder({
    label: 'web', addresses, clock, random: () => 0,
    transport: { families, send: (family, packet, dest) => sent.push({ at: clock.now(), family, message: decodeMessage(packet), dest }) },
    events: { renamed: (_from, to) => renames.push(to) },
  });
  return { clock, sent, renames, r };
}

function established(addresses?: LinkAddress[]) {
  const s = setup(addresses);
  s.r.start();
  s.clock.advance(3000);
  assert.equal(s.r.state, 'established');
  s.sent.length = 0;
  return s;
}

const q = (name: string, type: number, unicastResponse = false): Question => ({ name, type, class: CLASS_IN, unicastResponse });
const query = (questions: Question[], extra: Partial<Message> = {}): Message =>
  ({ id: 0, flags: 0, questions, answers: [], authorities: [], additionals: [], ...extra });
const a = (name: string, ip: string, ttl = 120): ResourceRecord => ({ name, type: TYPE.A, class: CLASS_IN, cacheFlush: true, ttl, data: { kind: 'a', address: ip } });
const peer = (message: Message, sourcePort = 5353) => ({ family: 4 as const, source: '10.0.0.9', sourcePort, message: decodeMessage(encodeMessage(message)) });

test('three probes 250 ms apart (the first QU), then two announcements a second apart, then established', () => {
  const { clock, sent, r } = setup();
  r.start();
  clock.advance(3000);
  const probes = sent.filter((s) => (s.message.flags & FLAG_QR) === 0);
  assert.deepEqual([...new Set(probes.map((p) => p.at))], [1000, 1250, 1500]);
  assert.equal(probes.length, 6, 'each probe on both families');
  for (const p of probes) {
    assert.equal(p.message.questions[0]!.name, 'web.local');
    assert.equal(p.message.questions[0]!.type, TYPE.ANY);
    assert.deepEqual(p.message.authorities.map((x) => x.type).sort(), [TYPE.A, TYPE.AAAA]);
  }
  assert.deepEqual(probes.map((p) => p.message.questions[0]!.unicastResponse), [true, true, false, false, false, false]);
  const announcements = sent.filter((s) => (s.message.flags & FLAG_QR) !== 0);
  assert.deepEqual([...new Set(announcements.map((p) => p.at))], [1750, 2750]);
  for (const an of announcements) {
    assert.equal(an.dest.to, 'multicast');
    assert.equal(an.message.flags & FLAG_AA, FLAG_AA);
    assert.ok(an.message.answers.every((x) => x.cacheFlush && x.ttl === 120));
    assert.deepEqual(an.message.answers.map((x) => x.type).sort((x, y) => x - y), [TYPE.A, TYPE.PTR, TYPE.PTR, TYPE.AAAA, TYPE.NSEC, TYPE.NSEC, TYPE.NSEC]);
  }
  assert.equal(r.state, 'established');
});

test('a response with the name while probing: the next name is taken (web-2) and probed', () => {
  const { clock, sent, renames, r } = setup();
  r.start();
  clock.advance(300);
  r.receive(peer({ ...query([]), flags: FLAG_QR | FLAG_AA, answers: [a('web.local', '10.0.0.99')] }));
  assert.deepEqual(renames, ['web-2.local']);
  assert.equal(r.name, 'web-2.local');
  sent.length = 0;
  clock.advance(3000);
  assert.ok(sent.some((s) => s.message.questions[0]?.name === 'web-2.local'));
  assert.ok(!sent.some((s) => s.message.questions[0]?.name === 'web.local' || s.message.answers.some((x) => x.name === 'web.local')));
  assert.equal(r.state, 'established');
});

test('a simultaneous probe with later data wins the tie-break: we wait a second, then probe again', () => {
  const { clock, sent, r } = setup([V4], [4]);
  r.start();
  clock.advance(100);
  r.receive(peer(query([q('web.local', TYPE.ANY)], { authorities: [a('web.local', '10.0.0.200')] })));
  sent.length = 0;
  clock.advance(900);
  assert.equal(sent.length, 0, 'no probe while deferring');
  clock.advance(200);
  assert.ok(sent.some((s) => s.message.questions[0]?.name === 'web.local'), 'probing again after the second');
});

test('a simultaneous probe with earlier data loses: we go on probing', () => {
  const { clock, sent, r } = setup([V4], [4]);
  r.start();
  clock.advance(100);
  r.receive(peer(query([q('web.local', TYPE.ANY)], { authorities: [a('web.local', '10.0.0.1')] })));
  clock.advance(3000);
  assert.equal(r.state, 'established');
  assert.equal(r.name, 'web.local');
  assert.ok(sent.length > 0);
});

test('a QM question for A: multicast, with the AAAA in the additional section; again within a second: nothing', () => {
  const { clock, sent, r } = established();
  r.receive(peer(query([q('WEB.local', TYPE.A)])));
  assert.equal(sent.length, 1);
  assert.equal(sent[0]!.dest.to, 'multicast');
  assert.deepEqual(sent[0]!.message.answers.map((x) => x.data), [{ kind: 'a', address: '10.0.0.5' }]);
  assert.ok(sent[0]!.message.additionals.some((x) => x.type === TYPE.AAAA));
  clock.advance(500);
  r.receive(peer(query([q('web.local', TYPE.A)])));
  assert.equal(sent.length, 1, 'rate-limited to one a second per record');
  clock.advance(600);
  r.receive(peer(query([q('web.local', TYPE.A)])));
  assert.equal(sent.length, 2);
});

test('an IPv6-only name asked for A answers with its NSEC at once (types: AAAA)', () => {
  const { sent, r } = established([V6]);
  r.receive(peer(query([q('web.local', TYPE.A)])));
  assert.equal(sent.length, 1);
  const [nsec] = sent[0]!.message.answers;
  assert.equal(nsec!.type, TYPE.NSEC);
  assert.deepEqual(nsec!.data, { kind: 'nsec', next: 'web.local', types: [TYPE.AAAA] });
});

test('a legacy unicast query (source port not 5353): unicast back, ID and question echoed, TTL 10, no cache-flush', () => {
  const { sent, r } = established();
  r.receive(peer({ ...query([q('web.local', TYPE.A)]), id: 0x4242 }, 40000));
  assert.equal(sent.length, 1);
  assert.deepEqual(sent[0]!.dest, { to: 'unicast', address: '10.0.0.9', port: 40000 });
  assert.equal(sent[0]!.message.id, 0x4242);
  assert.equal(sent[0]!.message.questions[0]!.name, 'web.local');
  assert.ok([...sent[0]!.message.answers, ...sent[0]!.message.additionals].every((x) => x.ttl <= 10 && !x.cacheFlush));
});

test('a QU question: unicast to the asker\'s port 5353', () => {
  const { sent, r } = established();
  r.receive(peer(query([q('web.local', TYPE.AAAA, true)])));
  assert.equal(sent.length, 1);
  assert.deepEqual(sent[0]!.dest, { to: 'unicast', address: '10.0.0.9', port: 5353 });
  assert.equal(sent[0]!.message.answers[0]!.type, TYPE.AAAA);
});

test('known answers with at least half the TTL left are not sent again; with less they are', () => {
  const { clock, sent, r } = established([V4]);
  r.receive(peer(query([q('web.local', TYPE.A)], { answers: [a('web.local', '10.0.0.5', 120)] })));
  assert.equal(sent.length, 0);
  clock.advance(1100);
  r.receive(peer(query([q('web.local', TYPE.A)], { answers: [a('web.local', '10.0.0.5', 30)] })));
  assert.equal(sent.length, 1);
});

test('a reverse-mapping question gets the PTR to the name, with its addresses', () => {
  const { sent, r } = established();
  r.receive(peer(query([q(reverseName(4, V4.bytes), TYPE.PTR)])));
  assert.equal(reverseName(4, V4.bytes), '5.0.0.10.in-addr.arpa');
  assert.equal(sent.length, 1);
  assert.deepEqual(sent[0]!.message.answers[0]!.data, { kind: 'ptr', target: 'web.local' });
  assert.ok(sent[0]!.message.additionals.some((x) => x.type === TYPE.A));
  assert.equal(reverseName(6, V6.bytes), '4.3.2.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.e.f.ip6.arpa');
});

test('questions for names that are not ours, and other classes, get nothing', () => {
  const { sent, r } = established();
  r.receive(peer(query([q('other.local', TYPE.A), { name: 'web.local', type: TYPE.A, class: 3, unicastResponse: false }])));
  assert.equal(sent.length, 0);
});

test('a flood of unicast queries gets a bounded number of answers', () => {
  const { clock, sent, r } = established();
  for (let i = 0; i < 1000; i++) r.receive(peer({ ...query([q('web.local', TYPE.A)]), id: i }, 40000 + (i % 1000)));
  assert.equal(sent.length, 20, 'the burst');
  clock.advance(1000);
  for (let i = 0; i < 1000; i++) r.receive(peer({ ...query([q('web.local', TYPE.A)]), id: i }, 40000));
  assert.equal(sent.length, 40, 'then 20 a second');
});

test('stop() after the name was announced: a goodbye (TTL 0) for every record, on every family', () => {
  const { sent, r } = established();
  const packets = r.stop();
  assert.ok(packets.length >= 1);
  assert.equal(sent.length, 2);
  for (const s of sent) {
    assert.equal(s.dest.to, 'multicast');
    assert.equal(s.message.answers.length, recordSet('web.local', [V4, V6]).all.length);
    assert.ok(s.message.answers.every((x) => x.ttl === 0));
  }
  r.receive(peer(query([q('web.local', TYPE.A)])));
  assert.equal(sent.length, 2, 'a stopped responder answers nothing');
});

test('stop() before anything was announced sends nothing', () => {
  const { clock, sent, r } = setup();
  r.start();
  clock.advance(300);
  sent.length = 0;
  assert.deepEqual(r.stop(), []);
  assert.equal(sent.length, 0);
});

test('an address change is announced at once, with a goodbye for the address that went', () => {
  const { clock, sent, r } = established([V4]);
  r.update([address(4, '10.0.0.6')]);
  clock.advance(1);
  assert.deepEqual(sent.map((x) => x.family), [4, 6], 'on both families\' sockets');
  const answers = sent[0]!.message.answers;
  assert.ok(answers.some((x) => x.type === TYPE.A && x.ttl === 120 && (x.data as { address: string }).address === '10.0.0.6'));
  assert.ok(answers.some((x) => x.type === TYPE.A && x.ttl === 0 && (x.data as { address: string }).address === '10.0.0.5'));
  clock.advance(1000);
  assert.equal(sent.length, 4, 'announced twice');
});

test('address changes in a loop are announced at most every 100 ms', () => {
  const { clock, sent, r } = established([V4]);
  for (let i = 0; i < 100; i++) {
    r.update([address(4, `10.0.1.${i}`)]);
    clock.advance(10);
  }
  const v4 = sent.filter((x) => x.family === 4).length;
  assert.ok(v4 >= 5 && v4 <= 11, `${v4} announcements in 1 s`);
});

test('established, another host claims the name with other data: probing again; its defence makes us web-2', () => {
  const { clock, sent, renames, r } = established([V4]);
  r.receive(peer({ ...query([]), flags: FLAG_QR | FLAG_AA, answers: [a('web.local', '10.0.0.99')] }));
  assert.equal(r.state, 'probing');
  clock.advance(10);
  assert.ok(sent.some((s) => s.message.questions[0]?.name === 'web.local'), 'probing the same name');
  r.receive(peer({ ...query([]), flags: FLAG_QR | FLAG_AA, answers: [a('web.local', '10.0.0.99')] }));
  assert.deepEqual(renames, ['web-2.local']);
});

test('established, another host probes for our name: we answer at once (QU: by unicast, as we multicast recently; QM: by multicast, every 250 ms)', () => {
  const { clock, sent, r } = established([V4]);
  r.receive(peer(query([q('web.local', TYPE.ANY, true)], { authorities: [a('web.local', '10.0.0.99')] })));
  assert.equal(sent.length, 1);
  assert.deepEqual(sent[0]!.dest, { to: 'unicast', address: '10.0.0.9', port: 5353 });
  assert.equal(sent[0]!.message.answers.find((x) => x.type === TYPE.A)?.data.kind, 'a');
  clock.advance(250);
  r.receive(peer(query([q('web.local', TYPE.ANY)], { authorities: [a('web.local', '10.0.0.99')] })));
  assert.equal(sent.length, 2);
  assert.equal(sent[1]!.dest.to, 'multicast');
});

test('a QU question long after the last multicast is answered by multicast (RFC 6762 §5.4)', () => {
  const { clock, sent, r } = established([V4]);
  clock.advance(31000);
  r.receive(peer(query([q('web.local', TYPE.A, true)])));
  assert.equal(sent.length, 1);
  assert.equal(sent[0]!.dest.to, 'multicast');
});

/**
 * Two responders for `web` on one simulated link, each one's multicast delivered to the other (as
 * macvlan's bridge mode does between two devices of one uplink), started together.
 */
function twoLinks(siblings: boolean) {
  const clock = new TestClock();
  const renames: string[] = [];
  const responders: LinkResponder[] = [];
  const make = (addr: LinkAddress, source: string) => {
    const self = responders.length;
    const r = new LinkResponder({
      label: 'web', addresses: [addr], clock, random: () => 0,
      transport: {
        families: [4],
        send: (_family, packet, dest) => {
          if (dest.to !== 'multicast') return;
          const other = responders[1 - self]!;
          clock.after(0, () => other.receive({ family: 4, source, sourcePort: 5353, message: decodeMessage(packet) }));
        },
      },
      events: { renamed: (_from, to) => renames.push(to) },
      ...(siblings ? { ownedElsewhere: (rec: ResourceRecord) => responders[1 - self]!.owns(rec) } : {}),
    });
    responders.push(r);
    return r;
  };
  const one = make(address(4, '10.0.0.5'), '10.0.0.5');
  const two = make(address(4, '10.0.0.6'), '10.0.0.6');
  one.start();
  two.start();
  clock.advance(10000);
  return { one, two, renames };
}

test('one workload\'s two links on one LAN hear each other: neither takes the other\'s records for a conflict (§14)', () => {
  const { one, two, renames } = twoLinks(true);
  assert.deepEqual(renames, []);
  assert.deepEqual([one.name, one.state, two.name, two.state], ['web.local', 'established', 'web.local', 'established']);
  // The same two without ownedElsewhere are two hosts: the tie-break's loser is renamed.
  const hosts = twoLinks(false);
  assert.deepEqual(hosts.renames, ['web-2.local']);
  assert.deepEqual([hosts.one.name, hosts.two.name], ['web-2.local', 'web.local']);
});

test('established, our other link announces its address for the name: not a conflict, no probing', () => {
  const other = a('web.local', '10.0.0.6');
  const clock = new TestClock();
  const r = new LinkResponder({
    label: 'web', addresses: [V4], clock, random: () => 0, transport: { families: [4], send: () => {} },
    ownedElsewhere: (rec) => rec.type === TYPE.A && rec.data.kind === 'a' && rec.data.address === '10.0.0.6',
  });
  r.start();
  clock.advance(3000);
  r.receive(peer({ ...query([]), flags: FLAG_QR | FLAG_AA, answers: [other] }));
  assert.equal(r.state, 'established');
  r.receive(peer({ ...query([]), flags: FLAG_QR | FLAG_AA, answers: [a('web.local', '10.0.0.99')] }));
  assert.equal(r.state, 'probing', 'another host\'s data still is a conflict');
});

test('a tie-break lost to a host still probing: the wait restarts with each of its probes, reported once', () => {
  const clock = new TestClock();
  const sent: number[] = [];
  const deferred: string[] = [];
  const r = new LinkResponder({
    label: 'web', addresses: [V4], clock, random: () => 0,
    transport: { families: [4], send: () => sent.push(clock.now()) },
    events: { deferred: (name) => deferred.push(name) },
  });
  r.start();
  const rival = () => r.receive(peer(query([q('web.local', TYPE.ANY)], { authorities: [a('web.local', '10.0.0.200')] })));
  clock.advance(100);
  rival();
  clock.advance(250);
  rival();
  clock.advance(250);
  rival();
  sent.length = 0;
  clock.advance(999);
  assert.deepEqual(sent, [], 'no probe within a second of the rival\'s last');
  clock.advance(2);
  assert.equal(sent.length, 1);
  assert.deepEqual(deferred, ['web.local']);
});

test('conflict after conflict: 15 renames within 10 s, then each further attempt waits 5 s (§8.1)', () => {
  const { clock, sent, renames, r } = setup([V4], [4]);
  r.start();
  clock.advance(10);
  const claim = () => r.receive(peer({ ...query([]), flags: FLAG_QR | FLAG_AA, answers: [a(r.name, '10.0.0.99')] }));
  for (let i = 0; i < 14; i++) {
    claim();
    sent.length = 0;
    clock.advance(250);
    assert.ok(sent.some((s) => s.message.questions[0]?.name === r.name), `conflict ${i + 1}: probing again at once`);
  }
  claim();
  assert.equal(renames.length, 15);
  assert.equal(r.name, 'web-16.local');
  sent.length = 0;
  clock.advance(4999);
  assert.deepEqual(sent, [], 'the 15th conflict within 10 s: no probe for 5 s');
  clock.advance(1);
  assert.equal(sent.length, 1);
});

test('a legacy query of one question repeated 1,000 times (and others not ours): the answer repeats it once, not 1,000 times', () => {
  const { sent, r } = established();
  const questions = [...Array.from({ length: 1000 }, () => q('web.local', TYPE.A)), q('WEB.local', TYPE.A), q('other.local', TYPE.A), q('web.local', TYPE.AAAA)];
  r.receive(peer(query(questions, { id: 77 }), 40000));
  assert.equal(sent.length, 1);
  assert.equal(sent[0]!.message.id, 77);
  assert.deepEqual(sent[0]!.message.questions.map((x) => [x.name, x.type]), [['web.local', TYPE.A], ['web.local', TYPE.AAAA]]);
  assert.ok(encodeMessage(sent[0]!.message).length < 200);
});
