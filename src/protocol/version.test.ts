/** Node versions: strict semantic versions, compared by semantic version precedence. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareVersions, isSemver } from './version.ts';

test('a version is a semantic version: MAJOR.MINOR.PATCH[-pre-release][+build]', () => {
  for (const v of [
    '0.1.0',
    '1.2.3',
    '10.20.30',
    '1.0.0-rc.1',
    '1.0.0-alpha.beta.1',
    '1.0.0+sha.5114f85',
    '1.0.0-0.3.7',
  ])
    assert.ok(isSemver(v), v);
  for (const v of [
    'latest',
    '',
    '1',
    '1.2',
    'v1.2.3',
    '01.2.3',
    '1.02.3',
    '1.2.3-',
    '1.2.3-01',
    '1.2.3 ',
    '1.2.3\n',
    '99.0.0.0',
    `1.0.0-${'x'.repeat(64)}`,
  ])
    assert.ok(!isSemver(v), JSON.stringify(v));
});

test('versions compare by semantic version precedence', () => {
  const ordered = [
    '1.0.0-alpha',
    '1.0.0-alpha.1',
    '1.0.0-alpha.beta',
    '1.0.0-beta',
    '1.0.0-beta.2',
    '1.0.0-beta.11',
    '1.0.0-rc.1',
    '1.0.0',
    '1.9.0',
    '1.10.0',
    '2.0.0',
  ];
  for (let i = 0; i < ordered.length; i++)
    for (let j = 0; j < ordered.length; j++)
      assert.equal(
        compareVersions(ordered[i]!, ordered[j]!),
        Math.sign(i - j),
        `${ordered[i]} vs ${ordered[j]}`,
      );
  assert.equal(compareVersions('1.0.0+a', '1.0.0+b'), 0, 'build metadata is ignored');
});
