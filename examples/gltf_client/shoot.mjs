// Screenshot pages in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core),
// waiting until each page sets document.title to 'rendered' (view.html does, once three.js drew).
// Usage: node shoot.mjs CLIENT_DIR JOBS.json   where JOBS.json is [{"url": ..., "path": ...}, ...]
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const [clientDir, jobsFile] = process.argv.slice(2);
const { chromium } = createRequire(path.join(path.resolve(clientDir), 'package.json'))('playwright-core');
const jobs = JSON.parse(fs.readFileSync(jobsFile, 'utf8'));
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--enable-unsafe-swiftshader', '--use-angle=swiftshader'],
});
try {
  for (const job of jobs) {
    const page = await browser.newPage({ viewport: { width: job.size, height: job.size } });
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(job.url);
    await page.waitForFunction(() => document.title !== '', null, { timeout: 60000 });
    const title = await page.title();
    if (title !== 'rendered') throw new Error(`${job.url}: ${title} ${errors.join('; ')}`);
    await page.screenshot({ path: job.path });
    await page.close();
  }
} finally {
  await browser.close();
}
