// clients/conformance/cases.json: signed answers and license files, valid and tampered, that every
// client library must judge identically. Every case is run; a verdict that differs fails.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import {
  LicenseFileError,
  MAX_ANSWER_SKEW_MS,
  MAX_CLOCK_SKEW_MS,
  PinnedKeys,
  parseRfc3339,
  verifyAnswer,
  verifyLicenseFile,
} from '../dist/index.js';

const path = fileURLToPath(new URL('../../conformance/cases.json', import.meta.url));
const cases = JSON.parse(readFileSync(path, 'utf8'));

// `reason` is informational (clients/conformance/README.md): the verdict is what must agree. When
// the case's reason is one this suite knows, the library's own reason must also match it; a reason
// added later fails nothing by itself.

/** The conformance reasons an answer's refusal may be given for, by this library's reason. */
const ANSWER_REASONS = {
  malformed: ['missing_signature', 'unsupported_version', 'malformed'],
  unknown_kid: ['unknown_kid'],
  bad_signature: [
    'bad_signature',
    'tampered_request_body',
    'tampered_response_body',
    'tampered_path',
    'tampered_date',
    'tampered_nonce',
    'tampered_tenant',
    'tampered_method',
  ],
  expired: ['expired'],
};

/** The same for license files. */
const FILE_REASONS = {
  malformed: ['malformed', 'tampered'],
  bad_signature: ['tampered', 'bad_signature'],
  unknown_kid: ['unknown_kid'],
  unsupported_format: ['unsupported_format'],
  wrong_tenant: ['wrong_tenant'],
  expired: ['expired'],
  not_yet_valid: ['not_yet_valid'],
  unbound: ['unbound_with_fingerprint'],
  wrong_fingerprint: ['wrong_fingerprint'],
};

const KNOWN_ANSWER_REASONS = new Set(Object.values(ANSWER_REASONS).flat());
const KNOWN_FILE_REASONS = new Set(Object.values(FILE_REASONS).flat());

const now = parseRfc3339(cases.now);
const keys = new PinnedKeys(cases.keys);

test('the cases file is the format this suite reads', () => {
  assert.equal(cases.format, 'licensing-conformance/v1');
  assert.notEqual(now, null, 'now is an RFC 3339 time');
  if (cases.max_clock_skew_seconds !== undefined) {
    assert.equal(cases.max_clock_skew_seconds * 1000, MAX_ANSWER_SKEW_MS);
    assert.equal(cases.max_clock_skew_seconds * 1000, MAX_CLOCK_SKEW_MS);
  }
  assert.ok(cases.answers.length > 0 && cases.files.length > 0);
  assert.ok(cases.answers.some((c) => c.expect === 'valid') && cases.answers.some((c) => c.expect === 'invalid'));
  assert.ok(cases.files.some((c) => c.expect === 'valid') && cases.files.some((c) => c.expect === 'invalid'));
});

for (const c of cases.answers) {
  test(`answer ${c.name}: ${c.expect} (${c.reason})`, () => {
    const headers = Object.fromEntries(Object.entries(c.response.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
    const verdict = verifyAnswer(
      keys,
      {
        method: c.request.method,
        pathAndQuery: c.request.path,
        tenant: c.request.tenant ?? cases.tenant,
        nonce: c.request.nonce,
        body: c.request.body,
      },
      { signature: headers['x-signature'], date: headers['x-signature-date'], body: c.response.body },
      { now },
    );
    if (c.expect === 'valid') {
      assert.equal(verdict.ok, true, verdict.message);
    } else {
      assert.equal(c.expect, 'invalid');
      assert.equal(verdict.ok, false, 'accepted an answer every library must refuse');
      assert.ok(
        !KNOWN_ANSWER_REASONS.has(c.reason) || (ANSWER_REASONS[verdict.reason] ?? []).includes(c.reason),
        `refused as ${verdict.reason} (${verdict.message}), the case says ${c.reason}`,
      );
    }
  });
}

for (const c of cases.files) {
  test(`file ${c.name}: ${c.expect} (${c.reason})`, () => {
    const run = () =>
      verifyLicenseFile(c.certificate, {
        keys,
        tenantId: c.tenant ?? cases.tenant,
        fingerprint: c.fingerprint,
        now,
      });
    if (c.expect === 'valid') {
      const file = run();
      assert.equal(file.tenantId, c.tenant ?? cases.tenant);
      if (c.fingerprint !== null && c.fingerprint !== undefined) assert.equal(file.fingerprint, c.fingerprint);
    } else {
      assert.equal(c.expect, 'invalid');
      assert.throws(run, (e) => {
        assert.ok(e instanceof LicenseFileError, String(e));
        assert.ok(
          !KNOWN_FILE_REASONS.has(c.reason) || (FILE_REASONS[e.reason] ?? []).includes(c.reason),
          `refused as ${e.reason} (${e.message}), the case says ${c.reason}`,
        );
        return true;
      });
    }
  });
}
