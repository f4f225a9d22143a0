// The call budget of the recommended use: a node-locked app that runs 8 hours a day for 30 days,
// checking its license at start-up and then every 20 minutes, makes at most 2 HTTP calls on any
// day (2 on the first, 1 on every other). The clock is fake; the calls are counted twice: by the
// service (every request it received) and by the fetch the client was given.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ensureLicensed } from '../dist/index.js';
import { fakeService, signingKey, tempDir } from './helpers.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** A small deterministic generator, so the start times vary but every run is the same. */
function lcg(seed) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

for (const [name, startJitterHours] of [
  ['the same start time every day', 0],
  ['start times that vary by up to 4 hours', 4],
]) {
  test(`8 h a day for 30 days, ${name}: at most 2 calls on any day`, async (t) => {
    const day0 = Date.parse('2026-11-02T00:00:00.000Z');
    let now = day0;
    const clock = () => now;
    const service = await fakeService({ clock });
    t.after(service.close);
    const { dir, cleanup } = await tempDir();
    t.after(cleanup);
    let fetched = 0;
    const countingFetch = (url, init) => {
      fetched += 1;
      return fetch(url, init);
    };
    const random = lcg(23);
    const perDay = [];
    const sources = new Map();
    for (let day = 0; day < 30; day += 1) {
      const before = service.state.calls.length;
      const start = day0 + day * DAY + 7 * HOUR + Math.floor(random() * startJitterHours * 60) * MINUTE;
      for (now = start; now <= start + 8 * HOUR; now += 20 * MINUTE) {
        const licensed = await ensureLicensed({
          serverUrl: service.url,
          tenantId: 'acme',
          licenseKey: service.licenseKey,
          publicKeys: { v1: signingKey(1).publicKey },
          cacheDir: dir,
          clock,
          fetch: countingFetch,
          fingerprint: 'ann-laptop',
        });
        assert.ok(licensed.source === 'cache' || licensed.source === 'online', licensed.source);
        assert.ok(licensed.hasEntitlement('export-4k'));
        sources.set(licensed.source, (sources.get(licensed.source) ?? 0) + 1);
      }
      perDay.push(service.state.calls.length - before);
    }
    // Every call the service saw happened on the day it is counted for.
    for (const call of service.state.calls) {
      assert.ok(call.at >= day0 && call.at < day0 + 30 * DAY);
    }
    assert.equal(fetched, service.state.calls.length, 'the client sent exactly what the service saw');
    assert.ok(perDay.every((n) => n <= 2), `calls per day: ${perDay.join(' ')}`);
    assert.equal(perDay[0], 2, 'the first day: activation and file');
    assert.ok(perDay.slice(1).every((n) => n === 1), `calls per day: ${perDay.join(' ')}`);
    assert.equal(service.state.calls.length, 31);
    assert.equal(sources.get('online'), 30);
    assert.ok(sources.get('cache') > 30 * 20);
  });
}
