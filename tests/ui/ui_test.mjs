// Browser test of the web UI served by vdgx-bridge: Debian's chromium (headless, driven by
// playwright-core) against the real vdgx-broker, a real `vdgx-worker --model wan21-tiny` and
// vdgx-bridge on loopback ports, in a temp dir.
//
//   node tests/ui/ui_test.mjs        (VDGX_BUILD_DIR: the build tree, default ./build)
//
// Submits from the form and watches the progress change, plays the video, cancels a second
// job, finds both in the gallery (thumbnail, inline playback, run again, delete), gets a field
// error for a bad value, sees the worker on the status page (unload, drain), answers the
// API-key prompt of a bridge with keys, checks that no request leaves the bridge's origin and
// that the Content-Security-Policy is never violated, and runs axe-core on every view (no
// serious or critical violation). Screenshots go to BUILD/tests/ui/screenshots/.
// Exit 0 = pass, 77 = skipped (no chromium or no node_modules: run scripts/setup.sh --test).
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const BUILD = path.resolve(process.env.VDGX_BUILD_DIR || path.join(HERE, '../../build'));
const BIN = path.join(BUILD, 'bin');
const SHOTS = path.join(BUILD, 'tests/ui/screenshots');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SKIP = 77;
const T0 = Date.now();

const require = createRequire(import.meta.url);
let chromium, axePath;
try {
  ({ chromium } = require('playwright-core'));
  axePath = require.resolve('axe-core/axe.min.js');
} catch (err) {
  console.log(`playwright-core/axe-core not installed in tests/ui (npm ci there, or scripts/setup.sh --test): skipped`);
  process.exit(SKIP);
}
if (!fs.existsSync(CHROMIUM)) {
  console.log(`${CHROMIUM} not found (apt-get install chromium, or scripts/setup.sh --test): skipped`);
  process.exit(SKIP);
}

function log(msg) {
  console.log(`[${((Date.now() - T0) / 1000).toFixed(1).padStart(5)} s] ${msg}`);
}

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
  log(`ok: ${what}`);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------
// The stack

class Stack {
  constructor() {
    this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vdgx-ui-'));
    this.procs = [];
  }

  spawn(name, argv) {
    const out = fs.openSync(path.join(this.tmp, `${name}.log`), 'w');
    const p = spawn(argv[0], argv.slice(1), { stdio: ['ignore', out, out] });
    p.name = name;
    this.procs.push(p);
    return p;
  }

  async start() {
    const weights = path.join(this.tmp, 'tiny');
    const mk = spawnSync(path.join(BIN, 'vdgx-worker'), ['--make-tiny-checkpoint', weights], { encoding: 'utf8' });
    if (mk.status !== 0) throw new Error(`make-tiny-checkpoint: ${mk.stderr}`);
    const [bp, ep] = [await freePort(), await freePort()];
    this.brokerEp = `tcp://127.0.0.1:${bp}`;
    this.eventsEp = `tcp://127.0.0.1:${ep}`;
    this.spawn('broker', [path.join(BIN, 'vdgx-broker'), '--bind', this.brokerEp, '--events', this.eventsEp,
      '--data', path.join(this.tmp, 'broker'), '--heartbeat-ms', '200', '--model', 'wan21-tiny']);
    this.worker = this.spawn('worker', [path.join(BIN, 'vdgx-worker'), '--model', 'wan21-tiny', '--weights', weights,
      '--broker', this.brokerEp, '--data', path.join(this.tmp, 'worker'), '--heartbeat-ms', '200', '--threads', '1']);
    this.url = await this.bridge('bridge', []);
    // the worker is registered (cold until its first job)
    for (let i = 0; i < 200; i++) {
      const r = await fetch(`${this.url}/info`).then((x) => x.json()).catch(() => ({}));
      if ((r.workers || []).length) return;
      await sleep(50);
    }
    throw new Error('the wan21-tiny worker did not register');
  }

  async bridge(name, args) {
    const port = await freePort();
    const p = this.spawn(name, [path.join(BIN, 'vdgx-bridge'), '--listen', `127.0.0.1:${port}`, '--broker', this.brokerEp,
      '--events', this.eventsEp, ...args]);
    const url = `http://127.0.0.1:${port}`;
    for (let i = 0; i < 200; i++) {
      if (p.exitCode !== null) throw new Error(`${name} exited with ${p.exitCode}`);
      if (await fetch(`${url}/health`).then((r) => r.ok).catch(() => false)) return url;
      await sleep(50);
    }
    throw new Error(`${name} did not start`);
  }

  // Stops every process; returns the sanitizer reports (ASan, LSan, UBSan) in their logs.
  async stop(keep) {
    for (const p of this.procs) if (p.exitCode === null) p.kill('SIGTERM');
    for (let i = 0; i < 100 && this.procs.some((p) => p.exitCode === null); i++) await sleep(50);
    for (const p of this.procs) if (p.exitCode === null) p.kill('SIGKILL');
    await sleep(50);
    const reports = [];
    for (const f of fs.readdirSync(this.tmp).filter((f) => f.endsWith('.log'))) {
      const text = fs.readFileSync(path.join(this.tmp, f), 'utf8');
      const m = text.match(/^.*(ERROR: \w+Sanitizer|runtime error:).*$/m);
      if (m) reports.push(`${f}: ${m[0]}`);
    }
    if (keep || reports.length) {
      for (const f of fs.readdirSync(this.tmp).filter((f) => f.endsWith('.log'))) {
        console.log(`--- ${f}`);
        console.log(fs.readFileSync(path.join(this.tmp, f), 'utf8').split('\n').slice(-25).join('\n'));
      }
    }
    fs.rmSync(this.tmp, { recursive: true, force: true });
    return reports;
  }
}

// ---------------------------------------------------------------------------------------
// Browser helpers

const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--autoplay-policy=no-user-gesture-required'];

async function browserContext(tmp, origins, problems) {
  const ctx = await chromium.launchPersistentContext(path.join(tmp, 'profile'), {
    executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 1280, height: 900 },
  });
  // Nothing may leave the bridges' origins (the page and everything it loads).
  await ctx.route('**/*', (route) => {
    const u = new URL(route.request().url());
    if (!origins.includes(u.origin) && u.protocol !== 'blob:' && u.protocol !== 'data:') {
      problems.push(`request to another host: ${u.href}`);
      return route.abort();
    }
    return route.continue();
  });
  return ctx;
}

function watch(page, problems) {
  page.on('console', (m) => {
    const t = m.text();
    if (/Content.Security.Policy|Refused to/i.test(t)) problems.push(`CSP: ${t}`);
  });
  page.on('pageerror', (e) => problems.push(`script error: ${e.message}`));
}

async function axe(page, label) {
  // Injected over the DevTools protocol: the page's own policy forbids inline scripts.
  if (!await page.evaluate(() => typeof window.axe === 'object')) await page.evaluate(fs.readFileSync(axePath, 'utf8'));
  const r = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const res = await axe.run(document, { resultTypes: ['violations'] });
    return res.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 3) }));
  });
  const bad = r.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  for (const v of r) log(`axe ${label}: ${v.impact} ${v.id} (${v.help}) at ${v.nodes.join(', ')}`);
  check(bad.length === 0, `axe-core on ${label}: no serious or critical violation (${r.length} minor)`);
}

async function shot(page, name) {
  const file = path.join(SHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  log(`screenshot ${file}`);
}

const jobId = async (page, n) => (await page.locator('#jobs > li').nth(n).getAttribute('id')).replace(/^job-/, '');

// ---------------------------------------------------------------------------------------
// The scenario

async function main() {
  fs.mkdirSync(SHOTS, { recursive: true });
  const st = new Stack();
  let ctx;
  let ok = false;
  const problems = [];
  try {
    await st.start();
    log(`stack up at ${st.url}`);
    // A second bridge on the same broker that requires a key.
    const secret = 'ui-test-secret-1';
    const keys = path.join(st.tmp, 'keys');
    fs.writeFileSync(keys, `${createHash('sha256').update(secret).digest('hex')} ui-test\n`);
    const keyedUrl = await st.bridge('bridge-keys', ['--keys', keys]);

    // API clients keep the JSON index at /; browsers get the page, with its policy.
    const api = await fetch(`${st.url}/`, { headers: { Accept: 'application/json' } });
    check(api.headers.get('content-type') === 'application/json' && (await api.json()).routes, 'GET / as JSON for API clients');
    const html = await fetch(`${st.url}/`, { headers: { Accept: 'text/html,*/*;q=0.8' } });
    const csp = html.headers.get('content-security-policy') || '';
    check(html.headers.get('content-type').startsWith('text/html') && csp.includes("default-src 'none'")
      && html.headers.get('vary') === 'Accept', 'GET / as HTML for browsers, with a strict CSP');
    check((await fetch(`${st.url}/ui/nope.js`)).status === 404, '/ui/ unknown file is 404');

    ctx = await browserContext(st.tmp, [st.url, keyedUrl], problems);
    const page = await ctx.newPage();
    watch(page, problems);
    page.on('dialog', (d) => d.accept());
    await page.goto(`${st.url}/`);
    await page.waitForSelector('#f-model option[value="wan21-tiny"]', { state: 'attached' });
    check(await page.title() === 'Generate · VideosDGX', 'the page loads at / with its script');
    // The model picker offers only what the model accepts.
    const sizes = await page.$$eval('#f-size option', (o) => o.map((x) => x.value).filter(Boolean));
    check(sizes.length > 2 && sizes.every((s) => {
      const [w, h] = s.split('x').map(Number);
      return w % 16 === 0 && h % 16 === 0 && w >= 32 && w <= 256 && h >= 32 && h <= 256;
    }), `sizes within the limits, multiples of 16: ${sizes.join(' ')}`);
    const frames = await page.$$eval('#f-frames option', (o) => o.map((x) => Number(x.value)).filter(Boolean));
    check(frames.length === 9 && frames.every((f) => f % 4 === 1 && f <= 33), `frame counts 4n+1 up to 33: ${frames.join(' ')}`);
    check(await page.textContent('#model-limits') !== '' && await page.getAttribute('#f-steps', 'max') === '100', 'limits shown, steps max 100');
    await axe(page, 'generate');

    // A bad value: the server's field error shows next to that field.
    await page.fill('#f-prompt', 'too many steps');
    await page.fill('#f-steps', '500');
    await page.click('#submit');
    await page.waitForSelector('#err-steps:not([hidden])');
    const errText = await page.textContent('#err-steps');
    check(/steps/.test(errText) && await page.getAttribute('#f-steps', 'aria-invalid') === 'true',
      `field error next to steps: "${errText}"`);
    check(await page.evaluate(() => document.activeElement.id) === 'f-steps', 'focus moves to the field in error');
    await shot(page, 'field-error');

    // Job 1 from the form; its progress changes over SSE.
    await page.fill('#f-prompt', 'a lighthouse in a storm, waves crashing');
    await page.fill('#f-negative_prompt', 'blurry');
    await page.selectOption('#f-size', '128x128');
    await page.selectOption('#f-frames', '17');
    await page.fill('#f-steps', '100');
    await page.fill('#f-seed', '9007199254740993');      // beyond 2^53: must arrive exactly
    await page.click('#submit');
    await page.waitForSelector('#jobs > li');
    check(await page.isHidden('#err-steps'), 'the old field error is cleared');
    const id1 = await jobId(page, 0);
    const seen = new Set();
    let eta = false, steps = false;
    for (let i = 0; i < 600; i++) {
      const text = await page.textContent(`#job-${id1} .job-progress`);
      const value = await page.getAttribute(`#job-${id1} progress`, 'value');
      if (/step \d+\/\d+/.test(text)) steps = true;
      if (/left/.test(text)) eta = true;
      seen.add(value);
      if (seen.size >= 4 && eta) break;
      if (await page.textContent(`#job-${id1} .badge`) === 'completed') break;
      await sleep(25);
    }
    check(seen.size >= 3, `progress changes while the job runs: ${[...seen].join(', ')}`);
    check(steps, 'progress shows the phase step');
    check(eta, 'progress shows the time left');
    await shot(page, 'progress');

    // Job 2 waits behind job 1 (one worker) and is cancelled from its card.
    // (a long one: should job 1 end first, job 2 is still running when cancelled)
    await page.fill('#f-prompt', 'a second job to cancel');
    await page.selectOption('#f-size', '256x256');
    await page.selectOption('#f-frames', '33');
    await page.fill('#f-steps', '100');
    await page.fill('#f-seed', '');
    await page.click('#submit');
    await page.waitForFunction(() => document.querySelectorAll('#jobs > li').length === 2);
    const id2 = await jobId(page, 0);
    await page.click(`#job-${id2} .cancel`);
    await page.waitForFunction((id) => document.querySelector(`#job-${id} .badge`).textContent === 'cancelled', id2);
    check(true, `job ${id2} cancelled from the page`);
    const j2 = await (await fetch(`${st.url}/jobs/${id2}`)).json();
    check(j2.state === 'cancelled', 'the broker has it cancelled');

    // Job 1 completes and its video plays in the page.
    await page.waitForFunction((id) => document.querySelector(`#job-${id} .badge`).textContent === 'completed', id1, { timeout: 60000 });
    const play = async (sel) => page.waitForFunction((s) => {
      const v = document.querySelector(s);
      if (!v) return false;
      v.muted = true;
      if (v.paused) v.play().catch(() => {});
      return v.duration > 0 && v.currentTime > 0 && !v.error ? v.duration : false;
    }, sel, { timeout: 20000, polling: 100 }).then((h) => h.jsonValue());
    const d1 = await play(`#job-${id1} video`);
    check(d1 > 0, `the job's video plays in the page (duration ${d1} s)`);
    const j1 = await (await fetch(`${st.url}/jobs/${id1}`)).text();
    check(j1.includes('"seed":9007199254740993') && j1.includes('"negative_prompt":"blurry"'), 'the request arrived as typed (seed beyond 2^53 exact)');
    await shot(page, 'generate');

    // Gallery: both jobs, a thumbnail, inline playback, the request, run again, delete.
    await page.click('a[data-view="gallery"]');
    await page.waitForSelector(`#gallery[aria-busy="false"] #video-${id1}`);
    check(await page.isVisible(`#video-${id2}`), 'the gallery lists both jobs');
    check(await page.evaluate(() => document.activeElement.id) === 'gallery-title', 'focus moves to the view heading');
    await page.waitForFunction((id) => {
      const img = document.querySelector(`#video-${id} img`);
      return img && img.complete && img.naturalWidth > 0;
    }, id1);
    check(true, 'the completed job has a thumbnail');
    check((await page.textContent(`#video-${id2} .badge`)) === 'cancelled', 'the cancelled job shows its state');
    const reqText = await page.textContent(`#video-${id1} .request pre`);
    check(JSON.parse(reqText).prompt === 'a lighthouse in a storm, waves crashing', 'the request that made it is shown');
    const href = await page.getAttribute(`#video-${id1} a.download`, 'href');
    const dl = await fetch(`${st.url}${href}`);
    check(dl.status === 200 && dl.headers.get('content-type') === 'video/mp4', `download link ${href}`);
    await shot(page, 'gallery');
    await page.click(`#video-${id1} .play`);
    const d2 = await play(`#video-${id1} video`);
    check(d2 > 0, `inline playback in the gallery (duration ${d2} s)`);
    await axe(page, 'gallery');
    await page.click(`#video-${id1} .again`);
    await page.waitForSelector('#view-generate:not([hidden])');
    check(await page.inputValue('#f-prompt') === 'a lighthouse in a storm, waves crashing'
      && await page.inputValue('#f-size') === '128x128' && await page.inputValue('#f-frames') === '17'
      && await page.inputValue('#f-seed') === '9007199254740993' && await page.inputValue('#f-negative_prompt') === 'blurry',
    'run again fills the form with the request');
    await page.click('a[data-view="gallery"]');
    await page.waitForSelector(`#gallery[aria-busy="false"] #video-${id2}`);
    await page.click(`#video-${id2} .delete`);
    await page.waitForSelector(`#video-${id2}`, { state: 'detached' });
    check((await fetch(`${st.url}/jobs/${id2}`)).status === 404, 'delete removes the job from the broker');

    // Phone width.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.click('a[data-view="generate"]');
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 0, `no horizontal scrolling at 390 px (${overflow})`);
    await shot(page, 'phone');
    await page.click('a[data-view="gallery"]');
    await page.waitForSelector(`#gallery[aria-busy="false"] #video-${id1}`);
    check(await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth) <= 0, 'gallery at 390 px fits');
    await shot(page, 'phone-gallery');
    await page.click('a[data-view="status"]');
    await page.waitForSelector('#workers-table tbody tr[data-state]');
    check(await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth) <= 0, 'status at 390 px fits (tables scroll inside their box)');
    await shot(page, 'phone-status');
    await page.setViewportSize({ width: 1280, height: 900 });
    // The dark theme (prefers-color-scheme) passes the same scan.
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.click('a[data-view="gallery"]');
    await page.waitForSelector(`#gallery[aria-busy="false"] #video-${id1}`);
    await axe(page, 'gallery, dark theme');
    await shot(page, 'gallery-dark');
    await page.emulateMedia({ colorScheme: 'light' });

    // A bridge with keys: the page asks for one, refuses a wrong one, keeps the right one.
    const kpage = await ctx.newPage();
    watch(kpage, problems);
    await kpage.goto(`${keyedUrl}/ui/`);
    await kpage.waitForSelector('#key-dialog[open]');
    check(true, 'a bridge with keys asks for one');
    await axe(kpage, 'API-key prompt');
    await kpage.fill('#key-input', 'wrong');
    await kpage.click('#key-form button[value="save"]');
    await kpage.waitForSelector('#key-error:not([hidden])');
    check(await kpage.isVisible('#key-dialog'), 'a wrong key is refused');
    await shot(kpage, 'api-key');
    await kpage.fill('#key-input', secret);
    await kpage.click('#key-form button[value="save"]');
    await kpage.waitForSelector('#key-dialog', { state: 'hidden' });
    await kpage.waitForSelector('#f-model option[value="wan21-tiny"]', { state: 'attached' });
    check(await kpage.evaluate(() => localStorage.getItem('vdgx.apiKey')) === secret, 'the key is kept in localStorage');
    // With a (user) key: progress over the event stream (read with fetch, carrying the key),
    // the video and the thumbnail (blob: URLs fetched with the key); the gallery holds this
    // key's jobs only.
    await kpage.fill('#f-prompt', 'a job through the bridge with keys');
    await kpage.fill('#f-steps', '2');
    await kpage.click('#submit');
    await kpage.waitForSelector('#jobs > li');
    const id3 = await jobId(kpage, 0);
    await kpage.waitForFunction((id) => document.querySelector(`#job-${id} .badge`).textContent === 'completed', id3, { timeout: 30000 });
    const d3 = await kpage.waitForFunction((sel) => {
      const v = document.querySelector(sel);
      if (!v) return false;
      v.muted = true;
      if (v.paused) v.play().catch(() => {});
      return v.src.startsWith('blob:') && v.duration > 0 && v.currentTime > 0 ? v.duration : false;
    }, `#job-${id3} video`, { timeout: 20000, polling: 100 }).then((h) => h.jsonValue());
    check(d3 > 0, `with a key, a job's progress and video reach the page (duration ${d3} s)`);
    await kpage.click('a[data-view="gallery"]');
    await kpage.waitForFunction((id) => {
      const img = document.querySelector(`#gallery[aria-busy="false"] #video-${id} img`);
      return img && img.complete && img.naturalWidth > 0 && img.src.startsWith('blob:');
    }, id3);
    check(await kpage.locator('#gallery > li').count() === 1, 'with a user key, the gallery shows its own job (thumbnail fetched with the key) and no other');
    await kpage.click('a[data-view="status"]');
    await kpage.waitForSelector('#workers-table td:has-text("admin keys only")');
    check(await kpage.locator('#models-table button').count() === 0, 'with a user key, the status page hides workers and the operator buttons');
    await kpage.close();

    // Status page: broker health, queue per model, the worker; unload, then drain.
    await page.click('a[data-view="status"]');
    await page.waitForSelector('#workers-table tbody tr[data-state]');
    const row = await page.textContent('#workers-table tbody tr[data-state]');
    check(row.includes('wan21-tiny') && row.includes('cpu') && row.includes(os.hostname().slice(0, 8)),
      `the status page shows the worker: ${row.replace(/\s+/g, ' ')}`);
    check((await page.textContent('#status-summary')).includes('healthy'), 'broker health shown');
    check((await page.textContent('#models-table tbody')).includes('wan21-tiny'), 'the queue per model shown');
    await axe(page, 'status');
    await shot(page, 'status');
    const unload = page.waitForResponse((r) => r.url().endsWith('/unload'));
    await page.click('#models-table button:has-text("Unload")');
    check((await unload).status() === 200, 'the unload button asks the broker');
    const drain = page.waitForResponse((r) => r.url().endsWith('/drain'));
    await page.click('#workers-table button:has-text("Drain")');
    check((await drain).status() === 200, 'the drain button asks the broker');
    await page.waitForSelector('#workers-table td:has-text("No worker is connected")', { timeout: 15000 });
    for (let i = 0; i < 200 && st.worker.exitCode === null; i++) await sleep(50);
    check(st.worker.exitCode === 0, 'the drained worker exited');

    // Keyboard: the first Tab reaches the skip link, which lands on the main content.
    await page.goto(`${st.url}/ui/`);
    await page.waitForSelector('#f-model option', { state: 'attached' });
    await page.keyboard.press('Tab');
    check(await page.evaluate(() => document.activeElement.className) === 'skip', 'Tab reaches the skip link first');

    // Image-to-video: the image fields show only for a model that takes images (the test
    // worker's testgen-i2v); a corrupt file gets its field error; a real one makes a video
    // whose first frame is the picture.
    const i2v = st.spawn('worker-i2v', [path.join(BIN, 'vdgx-worker-test'), '--model', 'testgen-i2v',
      '--broker', st.brokerEp, '--data', path.join(st.tmp, 'worker-i2v'), '--heartbeat-ms', '200']);
    const png = path.join(st.tmp, 'red.png');
    const mk = spawnSync('ffmpeg', ['-loglevel', 'error', '-f', 'lavfi', '-i', 'color=c=0xc83214:s=64x48',
      '-frames:v', '1', png], { encoding: 'utf8' });
    check(mk.status === 0, `a PNG made with ffmpeg ${mk.stderr || ''}`);
    for (let i = 0; i < 200; i++) {
      const r = await fetch(`${st.url}/info`).then((x) => x.json()).catch(() => ({}));
      if ((r.workers || []).some((w) => w.service === 'testgen-i2v')) break;
      await sleep(50);
    }
    await page.reload();
    await page.waitForSelector('#f-model option[value="testgen-i2v"]', { state: 'attached' });
    await page.selectOption('#f-model', 'wan21-tiny');
    check(await page.isHidden('#image-field') && await page.isHidden('#last_image-field'),
      'no image field for a text-to-video model');
    await page.selectOption('#f-model', 'testgen-i2v');
    check(await page.isVisible('#image-field') && await page.isVisible('#last_image-field'),
      'first and last frame fields for an image-to-video model');
    await axe(page, 'generate with image fields');
    await page.fill('#f-prompt', 'the picture comes alive');
    await page.fill('#f-steps', '2');
    await page.setInputFiles('#f-image', { name: 'bad.png', mimeType: 'image/png', buffer: Buffer.from('\x89PNG broken') });
    await page.click('#submit');
    await page.waitForSelector('#err-image:not([hidden])');
    const imgErr = await page.textContent('#err-image');
    check(/image/.test(imgErr) && await page.getAttribute('#f-image', 'aria-invalid') === 'true',
      `a corrupt image gets its field error: "${imgErr}"`);
    const before = (await (await fetch(`${st.url}/v1/videos?limit=100`)).json()).data.length;
    await page.setInputFiles('#f-image', png);
    await page.click('#submit');
    await page.waitForFunction(() => document.querySelector('#jobs > li .job-prompt')?.textContent === 'the picture comes alive');
    const id4 = await jobId(page, 0);
    await page.waitForFunction((id) => document.querySelector(`#job-${id} .badge`).textContent === 'completed', id4, { timeout: 30000 });
    const after = (await (await fetch(`${st.url}/v1/videos?limit=100`)).json()).data.length;
    check(after === before + 1, 'the refused image queued nothing, the good one made one job');
    const mp4 = path.join(st.tmp, 'i2v.mp4');
    fs.writeFileSync(mp4, Buffer.from(await (await fetch(`${st.url}/jobs/${id4}/download`)).arrayBuffer()));
    const raw = spawnSync('ffmpeg', ['-loglevel', 'error', '-i', mp4, '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-']).stdout;
    const mean = [0, 1, 2].map((c) => raw.filter((_, i) => i % 3 === c).reduce((a, b) => a + b, 0) / (raw.length / 3));
    check(Math.abs(mean[0] - 200) < 12 && Math.abs(mean[1] - 50) < 12 && Math.abs(mean[2] - 20) < 12,
      `the video starts from the uploaded picture (mean ${mean.map(Math.round).join(' ')})`);
    await shot(page, 'image-to-video');
    i2v.kill('SIGTERM');

    check(problems.length === 0, `no request to another host, no CSP violation, no script error${problems.length ? `: ${problems.join('; ')}` : ''}`);
    ok = true;
  } finally {
    if (ctx) await ctx.close().catch(() => {});
    const reports = await st.stop(!ok);
    if (ok) check(reports.length === 0, `no sanitizer report in the logs${reports.length ? `: ${reports.join('; ')}` : ''}`);
  }
  log('PASS');
}

main().catch((err) => {
  console.error(err.stack || String(err));
  process.exit(1);
});
