/**
 * A real browser for the portal's tests: Debian's chromium (/usr/bin/chromium), headless, driven by
 * playwright-core, with a fresh profile per test (so no token or storage leaks between tests). The
 * browser is closed when the test ends. `shot` saves a screenshot under test-artifacts/portal/ (kept
 * by CI as the tests' artifacts; gitignored).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { ROOT, tempDir } from './cluster.ts';

type Ctx = Pick<TestContext, 'after'>;

export const CHROMIUM = '/usr/bin/chromium';
export const ARTIFACTS = join(ROOT, 'test-artifacts', 'portal');

export interface Browser {
  context: BrowserContext;
  page: Page;
  /** Saves a full-page screenshot as test-artifacts/portal/NAME.png. */
  shot: (name: string, page?: Page) => Promise<void>;
}

export async function openBrowser(
  t: Ctx,
  o: { width?: number; height?: number; colorScheme?: 'light' | 'dark' } = {},
): Promise<Browser> {
  const profile = tempDir(t, 'ferry-chromium-');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-dev-shm-usage',
    ],
    viewport: { width: o.width ?? 1366, height: o.height ?? 860 },
    colorScheme: o.colorScheme ?? 'light',
  });
  t.after(() => context.close());
  context.setDefaultTimeout(20_000);
  const page = context.pages()[0] ?? (await context.newPage());
  mkdirSync(ARTIFACTS, { recursive: true });
  return {
    context,
    page,
    shot: async (name, p = page) => {
      await p.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
    },
  };
}

/** Signs in on the portal at `url` with `token` (the sign-in form, as a person would). */
export async function signIn(page: Page, url: string, token: string): Promise<void> {
  await page.goto(url);
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
}
