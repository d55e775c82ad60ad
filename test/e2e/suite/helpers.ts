// Helpers for the extension's test suites (they run inside VS Code's extension host on the fixture
// made by scripts/e2e/run.mjs). Not a test file itself: index.ts loads *.test.js only.
import fs from 'node:fs';

export { EXT_ID, runCli, until } from '../util';

export interface Fixture {
  workspace: string;
  cli: string;
  /** The team server started for the tests, and its admin token. */
  server: { url: string; token: string };
  /** The CLI key file ($SPACES_KEY_FILE): the same key as $SPACES_KEY. */
  keyFile: string;
  alpha: { file: string; spaceId: string; todoId: string; chatId: string; boardId: string; milkId: string };
  beta: { file: string; spaceId: string };
  broken: { file: string };
}

export function loadFixture(): Fixture {
  return JSON.parse(fs.readFileSync(process.env.SPACES_E2E_FIXTURE ?? '', 'utf8')) as Fixture;
}
