import fs from 'node:fs';
import path from 'node:path';
import { checkEnv, formatCheckReport } from '../envs/checker';
import { createEnv } from './fixtures/readme-coin-match-env';

/* The README's env example is this fixture, word for word (but for where it imports troupe from), and it passes the checker. */

test("the README's env example is test/fixtures/readme-coin-match-env.ts, and it passes every check", () => {
  const readme = fs.readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8');
  const fixture = fs.readFileSync(path.join(__dirname, '..', '..', 'test', 'fixtures', 'readme-coin-match-env.ts'), 'utf8');
  const section = readme.slice(readme.indexOf('## Define your own environment'));
  const block = section.slice(section.indexOf('```ts\n') + 6, section.indexOf('```', section.indexOf('```ts\n') + 6));
  expect(block).toBe(fixture.replace("from '../../index';", "from 'troupe';"));
  const report = checkEnv(() => createEnv(), { seed: 3, episodes: 2 });
  expect([report.passed, formatCheckReport(report)]).toEqual([true, expect.any(String)]);
});
