/* VideosDGX web UI: plain JavaScript, no build step, no other host.
 *
 * Talks only to the bridge that served it (the routes in clients/bridge/README.md):
 *   GET /info, /queue/status           models with their limits, workers, broker health
 *   POST /generate, /jobs/{id}/cancel  make and stop jobs; GET /jobs/{id}/events (SSE) for progress
 *   GET /v1/videos, /jobs/{id}         the gallery; DELETE /v1/videos/{id}
 *   POST /unload, /drain               the status page's buttons
 * With API keys, requests carry "Authorization: Bearer KEY" (the key lives in localStorage);
 * the event stream is read with fetch() rather than EventSource so that it can carry the key,
 * and media are fetched into blob: URLs for the same reason.
 */
'use strict';

const KEY_STORE = 'vdgx.apiKey';
const $ = (sel, root = document) => root.querySelector(sel);

const app = {
  key: localStorage.getItem(KEY_STORE) || '',
  auth: false,
  models: new Map(),          // name -> {name, workers, states, limits}
  jobs: new Map(),            // id -> job card state (this session)
  galleryAfter: null,
  galleryGen: 0,              // the newest gallery load; older answers are dropped
  deleted: new Set(),         // ids deleted here (a load that raced the delete skips them)
  statusTimer: null,
};

// ---------------------------------------------------------------------------------------
// HTTP

class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || '';
    this.field = e.field || '';
  }
}

function headers(extra = {}) {
  const h = { Accept: 'application/json', ...extra };
  if (app.key) h.Authorization = `Bearer ${app.key}`;
  return h;
}

// JSON.parse that keeps integers beyond 2^53 (seeds go up to 2^63-1) as their exact text.
function parseJson(text) {
  return JSON.parse(text, (k, v, ctx) =>
    typeof v === 'number' && !Number.isSafeInteger(v) && Number.isInteger(v) && ctx && ctx.source
      ? ctx.source : v);
}

async function api(method, path, body) {
  const init = { method, headers: headers(body !== undefined ? { 'Content-Type': 'application/json' } : {}) };
  if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, { error: { message: 'The bridge cannot be reached.' } });
  }
  const text = await resp.text();
  let data = null;
  try { data = text ? parseJson(text) : null; } catch (err) { data = null; }
  if (resp.status === 401) keyDialog(app.key ? 'That key was refused.' : '');
  if (!resp.ok) throw new ApiError(resp.status, data);
  return data;
}

// A URL the page can put in <img>/<video>: the route itself, or a blob: copy fetched with the
// key, owned by `node` (released by dropBlobs when the node leaves the page).
const BLOBS = new WeakMap();
async function mediaUrl(path, node) {
  if (!app.key) return path;
  const resp = await fetch(path, { headers: headers({ Accept: '*/*' }) });
  if (!resp.ok) throw new ApiError(resp.status, null);
  const url = URL.createObjectURL(await resp.blob());
  if (!node.isConnected) {
    URL.revokeObjectURL(url);
    throw new ApiError(0, { error: { message: 'gone' } });
  }
  if (!BLOBS.has(node)) BLOBS.set(node, []);
  BLOBS.get(node).push(url);
  return url;
}

function dropBlobs(nodes) {
  for (const n of nodes) {
    for (const url of BLOBS.get(n) || []) URL.revokeObjectURL(url);
    BLOBS.delete(n);
  }
}

// ---------------------------------------------------------------------------------------
// Small helpers

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function announce(text) {
  const live = $('#live');
  live.textContent = '';
  setTimeout(() => { live.textContent = text; }, 50);
}

function notice(text) {
  const n = $('#notice');
  n.textContent = text || '';
  n.hidden = !text;
}

function bytes(n) {
  if (!n) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(n < 10 && i ? 1 : 0)} ${units[i]}`;
}

function duration(s) {
  if (!isFinite(s) || s < 0) return '';
  if (s < 60) return `${Math.max(1, Math.round(s))} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

function when(epoch) {
  if (!epoch) return '';
  return new Date(epoch * 1000).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

const PHASES = {
  queued: 'Queued', loading: 'Loading the model', encoding_text: 'Encoding the prompt',
  denoising: 'Denoising', decoding: 'Decoding', muxing: 'Writing the video', done: 'Done',
};
const FINAL = new Set(['completed', 'failed', 'cancelled', 'expired']);

// ---------------------------------------------------------------------------------------
// Views (hash routes: #generate, #gallery, #status)

function showView(focus) {
  const name = (location.hash || '#generate').slice(1);
  const view = ['generate', 'gallery', 'status'].includes(name) ? name : 'generate';
  for (const v of document.querySelectorAll('.view')) v.hidden = v.id !== `view-${view}`;
  for (const a of document.querySelectorAll('.tabs a')) {
    if (a.dataset.view === view) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.title = `${view[0].toUpperCase()}${view.slice(1)} · VideosDGX`;
  clearInterval(app.statusTimer);
  app.statusTimer = null;
  if (view === 'gallery') loadGallery(true);
  if (view === 'status') {
    loadStatus();
    app.statusTimer = setInterval(loadStatus, 3000);
  }
  if (focus) {
    const h = $(`#view-${view} h1`);
    h.setAttribute('tabindex', '-1');
    h.focus();
  }
}

// ---------------------------------------------------------------------------------------
// API key

function keyDialog(error) {
  const d = $('#key-dialog');
  $('#key-input').value = app.key;
  const e = $('#key-error');
  e.textContent = error || '';
  e.hidden = !error;
  $('#key-input').setAttribute('aria-invalid', error ? 'true' : 'false');
  if (!d.open) d.showModal();
  $('#key-input').focus();
}

async function saveKey(ev) {
  ev.preventDefault();
  app.key = $('#key-input').value.trim();
  if (app.key) localStorage.setItem(KEY_STORE, app.key);
  else localStorage.removeItem(KEY_STORE);
  try {
    await api('GET', '/queue/status');
  } catch (err) {
    if (err.status === 401) return;     // the dialog stays open with the error
  }
  $('#key-dialog').close();
  await loadModels();
  showView(false);
}

// ---------------------------------------------------------------------------------------
// Generate form

function sizeChoices(l) {
  if (Array.isArray(l.sizes) && l.sizes.length) return l.sizes.slice();
  const m = l.wh_multiple || 1;
  const fit = (v) => Math.min(l.wh_max, Math.max(l.wh_min, Math.round(v / m) * m));
  const out = [];
  for (const [rw, rh] of [[16, 9], [9, 16], [4, 3], [3, 4], [1, 1]]) {
    for (const scale of [1, 0.75, 0.5, 0.25]) {
      const long = l.wh_max * scale;
      const w = fit(rw >= rh ? long : long * rw / rh);
      const h = fit(rw >= rh ? long * rh / rw : long);
      const s = `${w}x${h}`;
      if (!out.includes(s) && Math.abs(w / h - rw / rh) < 0.12) out.push(s);
    }
  }
  return out.sort((a, b) => {
    const [aw, ah] = a.split('x').map(Number), [bw, bh] = b.split('x').map(Number);
    return bw * bh - aw * ah;
  });
}

function frameChoices(l) {
  const max = l.frames_max || 1;
  const step = l.frames_step || (l.frames_4n1 ? 4 : 1);
  const all = [];
  for (let f = 1; f <= max; f += step) all.push(f);
  if (all.length <= 40) return all;
  const stride = Math.ceil(all.length / 40);
  const some = all.filter((_, i) => i % stride === 0);
  if (some[some.length - 1] !== all[all.length - 1]) some.push(all[all.length - 1]);
  return some;
}

function option(value, label, selected) {
  const o = el('option', { value, text: label });
  if (selected) o.selected = true;
  return o;
}

function fillFrames(keep) {
  const m = app.models.get($('#f-model').value);
  const sel = $('#f-frames');
  const fps = Number($('#f-fps').value) || 0;
  const want = keep !== undefined ? String(keep) : sel.value;
  sel.replaceChildren(option('', 'Model default', !want));
  if (!m || !m.limits) return;
  for (const f of frameChoices(m.limits)) {
    const label = fps ? `${f} frames · ${(f / fps).toFixed(2)} s` : `${f} frames`;
    sel.append(option(String(f), label, String(f) === want));
  }
  if (want && sel.value !== want) sel.append(option(want, `${want} frames`, true));
}

function applyModel(keep = {}) {
  const m = app.models.get($('#f-model').value);
  const l = (m && m.limits) || null;
  const size = $('#f-size');
  const wantSize = keep.size !== undefined ? keep.size : size.value;
  size.replaceChildren(option('', 'Model default', !wantSize));
  const hint = $('#model-limits');
  if (!l) {
    hint.textContent = m ? 'This model has not said what it accepts yet; the server checks each request.' : '';
  } else {
    for (const s of sizeChoices(l)) size.append(option(s, s.replace('x', ' × '), s === wantSize));
    const parts = [];
    if (l.sizes && l.sizes.length) parts.push(`sizes ${l.sizes.join(', ')}`);
    else parts.push(`width and height ${l.wh_min}–${l.wh_max} px, multiples of ${l.wh_multiple}`);
    const fstep = l.frames_step || (l.frames_4n1 ? 4 : 1);
    parts.push(`up to ${l.frames_max} frames${fstep > 1 ? ` (${fstep}n+1)` : ''}`);
    parts.push(`up to ${l.fps_max} fps`, `up to ${l.steps_max} steps`, `guidance 0–${l.guidance_max}`);
    if (l.images) {
      const what = l.images > 1 ? 'a first and a last frame image' : 'a first frame image';
      parts.push(l.images_required ? `${what} (required)` : what);
    }
    hint.textContent = `Accepts ${parts.join(' · ')}.`;
    $('#f-fps').max = l.fps_max;
    $('#f-steps').max = l.steps_max;
    $('#f-guidance').max = l.guidance_max;
  }
  if (wantSize && size.value !== wantSize) size.append(option(wantSize, wantSize.replace('x', ' × '), true));
  // Image inputs only for models that take them (limits.images: 1 first frame, 2 also last).
  const images = (l && l.images) || 0;
  for (const [id, need] of [['image', 1], ['last_image', 2]]) {
    const field = $(`#${id}-field`);
    field.hidden = images < need;
    if (field.hidden) $(`#f-${id}`).value = '';
    // A model that needs the image: the browser asks for it before anything is sent.
    $(`#f-${id}`).required = !field.hidden && ((l && l.images_required) || 0) >= need;
  }
  if (m && !m.workers) hint.textContent += ' No worker serves it right now: jobs wait in the queue.';
  fillFrames(keep.frames);
}

async function loadModels() {
  let info;
  try {
    info = await api('GET', '/info');
  } catch (err) {
    if (err.status !== 401) notice(`Cannot list the models: ${err.message}`);
    return;
  }
  notice('');
  const sel = $('#f-model');
  const current = sel.value;
  app.models.clear();
  sel.replaceChildren();
  const models = (info.models || []).slice().sort((a, b) => a.name.localeCompare(b.name));
  for (const m of models) {
    app.models.set(m.name, m);
    sel.append(option(m.name, m.workers ? m.name : `${m.name} (no worker)`, m.name === current));
  }
  if (!models.length) {
    sel.append(option('', 'No model is registered yet', true));
    setTimeout(loadModels, 3000);      // a worker that starts later shows up by itself
  }
  if (!current) {
    const warm = models.find((m) => m.workers);
    if (warm) sel.value = warm.name;
  }
  applyModel();
}

const FIELD_OF = {
  width: 'size', height: 'size', resolution: 'size', size: 'size',
  seconds: 'frames', duration: 'frames',
};

function clearErrors() {
  for (const p of document.querySelectorAll('#gen-form .field-error')) { p.hidden = true; p.textContent = ''; }
  for (const i of document.querySelectorAll('#gen-form [aria-invalid]')) i.removeAttribute('aria-invalid');
  $('#form-error').hidden = true;
}

function showError(err) {
  const name = FIELD_OF[err.field] || err.field;
  const input = name && $(`#f-${CSS.escape(name)}`);
  const p = name && $(`#err-${CSS.escape(name)}`);
  if (input && p) {
    p.textContent = err.message;
    p.hidden = false;
    input.setAttribute('aria-invalid', 'true');
    input.focus();
  } else {
    const f = $('#form-error');
    f.textContent = err.field ? `${err.field}: ${err.message}` : err.message;
    f.hidden = false;
  }
  announce(`Not submitted: ${err.message}`);
}

// A chosen file as a data URL (what the API takes in JSON), or '' when none.
function fileDataURL(input) {
  const file = !input.closest('[hidden]') && input.files && input.files[0];
  if (!file) return Promise.resolve('');
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(Object.assign(new Error(`cannot read ${file.name}`), { field: input.name }));
    reader.readAsDataURL(file);
  });
}

// The request as JSON text; the seed goes in as its digits (it may exceed 2^53).
async function requestBody() {
  const v = (id) => $(`#f-${id}`).value.trim();
  const body = { model: v('model'), prompt: v('prompt') };
  if (v('negative_prompt')) body.negative_prompt = v('negative_prompt');
  if (v('size')) {
    const [w, h] = v('size').split('x').map(Number);
    body.width = w;
    body.height = h;
  }
  for (const k of ['frames', 'fps', 'steps', 'guidance']) {
    if (v(k) === '') continue;
    const n = Number(v(k));
    body[k] = Number.isFinite(n) ? n : v(k);     // not a number: the server names the field
  }
  for (const k of ['image', 'last_image']) {
    const url = await fileDataURL($(`#f-${k}`));
    if (url) body[k] = url;
  }
  let text = JSON.stringify(body);
  const seed = v('seed');
  if (seed !== '') {
    const raw = /^\d{1,19}$/.test(seed) ? seed : JSON.stringify(seed);
    text = `${text.slice(0, -1)},"seed":${raw}}`;
  }
  return text;
}

async function submit(ev) {
  ev.preventDefault();
  clearErrors();
  const button = $('#submit');
  button.disabled = true;
  try {
    const job = await api('POST', '/generate', await requestBody());
    const prompt = $('#f-prompt').value.trim();
    trackJob({ id: job.id, model: job.model, state: job.state, phase: 'queued', prompt, percent: 0 });
    announce(`Job started: ${prompt}`);
  } catch (err) {
    if (err.status !== 401) showError(err);
  } finally {
    button.disabled = false;
  }
}

function fillForm(req) {
  clearErrors();
  location.hash = '#generate';
  const model = $('#f-model');
  if (req.model && !app.models.has(req.model)) model.append(option(req.model, req.model, true));
  model.value = req.model || model.value;
  const size = req.width && req.height ? `${req.width}x${req.height}` : '';
  applyModel({ size, frames: req.frames || '' });
  $('#f-image').value = '';           // the stored request keeps its images; choose them again
  $('#f-last_image').value = '';
  $('#f-prompt').value = req.prompt || '';
  $('#f-negative_prompt').value = req.negative_prompt || '';
  $('#f-fps').value = req.fps || '';
  $('#f-steps').value = req.steps || '';
  $('#f-guidance').value = req.guidance !== undefined ? req.guidance : '';
  $('#f-seed').value = req.seed !== undefined ? req.seed : '';
  fillFrames(req.frames || '');
  $('#f-prompt').focus();
  announce('The form holds that request: change what you like and press Generate.');
}

// ---------------------------------------------------------------------------------------
// Jobs of this session: progress over server-sent events

function trackJob(job) {
  const node = $('#job-template').content.firstElementChild.cloneNode(true);
  node.id = `job-${job.id}`;
  $('.job-prompt', node).textContent = job.prompt || job.id;
  const bar = $('progress', node);
  bar.setAttribute('aria-label', `Progress of ${job.prompt || job.id}`);
  $('.cancel', node).addEventListener('click', () => cancelJob(job.id));
  $('#jobs').prepend(node);
  $('#jobs-empty').hidden = true;
  const entry = { ...job, node, started: 0, p0: 0, ctrl: new AbortController() };
  app.jobs.set(job.id, entry);
  renderJob(entry);
  follow(entry);
}

function renderJob(j) {
  const n = j.node;
  const badge = $('.badge', n);
  badge.textContent = j.state;
  badge.className = `badge ${j.state}`;
  const pct = Math.max(0, Math.min(100, j.state === 'completed' ? 100 : j.percent || 0));
  const bar = $('progress', n);
  bar.value = pct;
  bar.setAttribute('aria-valuetext', `${pct.toFixed(0)} percent`);
  let text;
  if (j.state === 'queued') text = 'Waiting in the queue';
  else if (j.state === 'running') {
    text = PHASES[j.phase] || j.phase;
    if (j.steps) text += ` · step ${j.step}/${j.steps}`;
    text += ` · ${pct.toFixed(0)}%`;
    const now = performance.now() / 1000;
    if (j.started && pct > j.p0 + 0.5) {
      const rate = (pct - j.p0) / (now - j.started);
      text += ` · about ${duration((100 - pct) / rate)} left`;
    }
  } else if (j.state === 'completed') text = 'Done';
  else text = (j.error && j.error.message) || j.state;
  $('.job-progress', n).textContent = text;
  $('.job-meta', n).textContent = `${j.model} · ${j.id}`;
  $('.cancel', n).hidden = FINAL.has(j.state);
}

async function follow(j) {
  for (let attempt = 0; attempt < 20 && !FINAL.has(j.state); attempt++) {
    try {
      const resp = await fetch(`/jobs/${encodeURIComponent(j.id)}/events`,
        { headers: headers({ Accept: 'text/event-stream' }), signal: j.ctrl.signal });
      if (resp.status === 404) {         // deleted elsewhere
        onEvent(j, { ...j, state: 'expired', error: { message: 'This job no longer exists.' } });
        return;
      }
      if (!resp.ok) throw new ApiError(resp.status, null);
      const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value.replace(/\r\n/g, '\n');
        let cut;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('\n');
          if (data) onEvent(j, parseJson(data));
        }
      }
    } catch (err) {
      if (j.ctrl.signal.aborted) return;
      if (err.status === 401) return;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

function onEvent(j, ev) {
  if (ev.state === 'running' && !j.started && ev.percent > 0) {      // the ETA's first sample
    j.started = performance.now() / 1000;
    j.p0 = ev.percent || 0;
  }
  Object.assign(j, { state: ev.state, phase: ev.phase, step: ev.step, steps: ev.steps, percent: ev.percent, error: ev.error });
  renderJob(j);
  if (FINAL.has(j.state)) finished(j);
}

async function finished(j) {
  j.ctrl.abort();
  announce(`Job ${j.state}: ${j.prompt}`);
  if (j.state !== 'completed') return;
  const media = $('.job-media', j.node);
  try {
    const src = await mediaUrl(`/jobs/${encodeURIComponent(j.id)}/download`, j.node);
    media.replaceChildren(el('video', {
      src, controls: true, playsinline: true, preload: 'metadata', loop: true,
      'aria-label': `Video: ${j.prompt}`,
    }));
  } catch (err) {
    media.replaceChildren(el('p', { class: 'field-error', text: `Cannot load the video: ${err.message}` }));
  }
}

async function cancelJob(id) {
  const j = app.jobs.get(id);
  try {
    const job = await api('POST', `/jobs/${encodeURIComponent(id)}/cancel`);
    if (j) onEvent(j, job);
  } catch (err) {
    if (err.status !== 401) notice(`Cannot cancel: ${err.message}`);
  }
}

// ---------------------------------------------------------------------------------------
// Gallery

async function loadGallery(fresh) {
  const gen = ++app.galleryGen;
  const list = $('#gallery');
  list.setAttribute('aria-busy', 'true');
  try {
    const q = new URLSearchParams({ limit: '24' });
    if (!fresh && app.galleryAfter) q.set('after', app.galleryAfter);
    const page = await api('GET', `/v1/videos?${q}`);
    const jobs = await Promise.all(page.data.map((v) =>
      api('GET', `/jobs/${encodeURIComponent(v.id)}`).catch(() => null)));
    if (gen !== app.galleryGen) return;
    const cards = jobs.filter((j) => j && !app.deleted.has(j.id)).map(videoCard);
    if (fresh) {
      const old = [...list.children];
      list.replaceChildren(...cards);
      dropBlobs(old);
    } else list.append(...cards);
    app.galleryAfter = page.last_id;
    $('#gallery-more').hidden = !page.has_more;
    $('#gallery-empty').hidden = list.children.length > 0;
  } catch (err) {
    if (err.status !== 401) notice(`Cannot list the videos: ${err.message}`);
  } finally {
    if (gen === app.galleryGen) list.setAttribute('aria-busy', 'false');
  }
}

function videoCard(job) {
  const node = $('#video-template').content.firstElementChild.cloneNode(true);
  const req = job.request || {};
  const res = job.result || null;
  const prompt = req.prompt || job.id;
  node.id = `video-${job.id}`;
  node.dataset.state = job.state;
  $('.video-prompt', node).textContent = prompt;
  const badge = $('.badge', node);
  badge.textContent = job.state;
  badge.className = `badge ${job.state}`;
  const meta = [job.model];
  if (res) meta.push(`${res.width}×${res.height}`, `${res.frames} frames @ ${res.fps} fps`);
  if (req.seed !== undefined) meta.push(`seed ${req.seed}`);
  else if (job.error) meta.push(job.error.message);
  meta.push(when(job.created_at));
  $('.video-meta', node).textContent = meta.filter(Boolean).join(' · ');
  $('.request pre', node).textContent = JSON.stringify(req, null, 2);
  const play = $('.play', node);
  const img = $('img', node);
  const download = $('.download', node);
  if (job.state === 'completed') {
    play.setAttribute('aria-label', `Play: ${prompt}`);
    img.alt = `First frame of: ${prompt}`;
    mediaUrl(`/v1/videos/${encodeURIComponent(job.id)}/content?variant=thumbnail`, node)
      .then((src) => { img.src = src; })
      .catch(() => { img.replaceWith(el('span', { class: 'no-thumb', text: 'No preview' })); });
    play.addEventListener('click', () => playInline(node, job, prompt));
    download.href = `/jobs/${encodeURIComponent(job.id)}/download`;
    download.setAttribute('download', `${job.id}.mp4`);
    download.setAttribute('aria-label', `Download: ${prompt}`);
    download.addEventListener('click', (ev) => downloadWithKey(ev, job.id));
  } else {
    play.replaceWith(el('span', { class: 'no-thumb', text: FINAL.has(job.state) ? 'No video' : 'In progress' }));
    download.remove();
  }
  const again = $('.again', node);
  again.setAttribute('aria-label', `Run again: ${prompt}`);
  again.addEventListener('click', () => fillForm(req));
  const del = $('.delete', node);
  del.setAttribute('aria-label', `Delete: ${prompt}`);
  del.addEventListener('click', () => deleteVideo(job.id, prompt));
  return node;
}

async function playInline(node, job, prompt) {
  const thumb = $('.thumb', node);
  try {
    const src = await mediaUrl(`/jobs/${encodeURIComponent(job.id)}/download`, node);
    const video = el('video', { src, controls: true, playsinline: true, autoplay: true, muted: true, loop: true,
      'aria-label': `Video: ${prompt}` });
    video.muted = true;
    thumb.replaceChildren(video);
    video.focus();
  } catch (err) {
    notice(`Cannot play: ${err.message}`);
  }
}

async function downloadWithKey(ev, id) {
  if (!app.key) return;             // a plain link does it
  ev.preventDefault();
  try {
    const url = await mediaUrl(`/jobs/${encodeURIComponent(id)}/download`, document.body);
    const a = el('a', { href: url, download: `${id}.mp4` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  } catch (err) {
    notice(`Cannot download: ${err.message}`);
  }
}

async function deleteVideo(id, prompt) {
  if (!confirm(`Delete this video?\n\n${prompt}`)) return;
  try {
    await api('DELETE', `/v1/videos/${encodeURIComponent(id)}`);
    app.deleted.add(id);
    const node = document.getElementById(`video-${id}`);
    if (!node) return;
    const next = node.nextElementSibling || node.previousElementSibling;
    node.remove();
    dropBlobs([node]);
    $('#gallery-empty').hidden = $('#gallery').children.length > 0;
    announce('Video deleted');
    if (next) $('button', next).focus();
  } catch (err) {
    if (err.status !== 401) notice(`Cannot delete: ${err.message}`);
  }
}

// ---------------------------------------------------------------------------------------
// Status

function stat(label, value, cls) {
  return el('div', { class: 'stat card' }, el('div', { class: 'label', text: label }),
    el('div', { class: `value ${cls || ''}`, text: String(value) }));
}

async function loadStatus() {
  let info, queue;
  try {
    [info, queue] = await Promise.all([api('GET', '/info'), api('GET', '/queue/status')]);
  } catch (err) {
    if (err.status === 401) return;
    $('#status-summary').replaceChildren(stat('Broker', 'unreachable', 'down'));
    notice(`The broker does not answer: ${err.message}`);
    return;
  }
  notice('');
  const b = info.broker || {};
  const healthy = b.healthy !== false;
  $('#status-summary').replaceChildren(
    stat('Broker', healthy ? 'healthy' : 'unhealthy', healthy ? 'ok' : 'down'),
    stat('Uptime', duration(b.uptime_s || 0) || '—'),
    stat('Workers', (info.workers || []).length),
    stat('Queued', queue.queued || 0),
    stat('Running', queue.running || 0),
    stat('Stored jobs', (b.store && b.store.jobs) || 0),
  );
  const qby = new Map((queue.models || []).map((m) => [m.model, m]));
  // A user key sees the models but not the workers (hosts) and may not unload or drain.
  const userKey = !(info.workers || []).length && (info.models || []).some((m) => m.workers > 0);
  const mem = info.memory || {};
  const mrows = (info.models || []).map((m) => {
    const q = qby.get(m.name) || {};
    const states = Object.entries(m.states || {}).map(([s, n]) => `${n} ${s}`).join(', ');
    const unload = el('button', { type: 'button', class: 'ghost small', text: 'Unload',
      'aria-label': `Unload ${m.name}`, onclick: () => command('/unload', { model: m.name }, `Unload ${m.name}`) });
    return el('tr', {},
      el('th', { scope: 'row', text: m.name }),
      el('td', { class: 'num', text: `${m.workers || 0}${states ? ` (${states})` : ''}` }),
      el('td', { class: 'num', text: String(q.queued || 0) }),
      el('td', { class: 'num', text: String(q.running || 0) }),
      el('td', { class: 'num', text: mem[m.name] ? bytes(mem[m.name].rss_bytes) : '—' }),
      el('td', {}, userKey ? null : el('div', { class: 'actions' }, unload)));
  });
  $('#models-table tbody').replaceChildren(...(mrows.length ? mrows
    : [el('tr', {}, el('td', { colspan: '6', class: 'muted', text: 'No model is registered.' }))]));
  const wrows = (info.workers || []).map((w) => {
    const drain = el('button', { type: 'button', class: 'ghost small danger', text: 'Drain',
      'aria-label': `Drain the ${w.service} worker on ${w.host || 'its host'}`,
      onclick: () => command('/drain', w.host ? { model: w.service, host: w.host } : { model: w.service },
        `Drain ${w.service}${w.host ? ` on ${w.host}` : ''}: it finishes its job and exits`) });
    const memText = `${bytes(w.rss_bytes)}${w.model_bytes ? ` (model ${bytes(w.model_bytes)})` : ''}`;
    return el('tr', { 'data-state': w.state },
      el('th', { scope: 'row', text: w.service }),
      el('td', {}, el('span', { class: `badge ${w.state}`, text: w.state })),
      el('td', { text: w.host || '—' }),
      el('td', { text: w.device || '—' }),
      el('td', { class: 'num', text: memText }),
      el('td', { class: 'muted', text: w.job || 'idle' }),
      el('td', {}, el('div', { class: 'actions' }, drain)));
  });
  $('#workers-table tbody').replaceChildren(...(wrows.length ? wrows
    : [el('tr', {}, el('td', { colspan: '7', class: 'muted',
      text: userKey ? 'Workers, their hosts and the unload and drain buttons are shown to admin keys only.'
        : 'No worker is connected.' }))]));
}

async function command(path, body, what) {
  if (!confirm(`${what}?`)) return;
  try {
    const r = await api('POST', path, body);
    announce(`${what}: ${r.workers} worker${r.workers === 1 ? '' : 's'} told`);
  } catch (err) {
    if (err.status !== 401) notice(`${what} failed: ${err.message}`);
  }
  loadStatus();
}

// ---------------------------------------------------------------------------------------
// Start

async function start() {
  $('#gen-form').addEventListener('submit', submit);
  $('#gen-form').addEventListener('reset', () => setTimeout(() => { clearErrors(); applyModel({ size: '', frames: '' }); }));
  $('#f-model').addEventListener('change', () => applyModel());
  $('#f-fps').addEventListener('input', () => fillFrames());
  $('#gallery-refresh').addEventListener('click', () => loadGallery(true));
  $('#gallery-more').addEventListener('click', () => loadGallery(false));
  $('#status-refresh').addEventListener('click', loadStatus);
  $('#key-form').addEventListener('submit', saveKey);
  $('#key-button').addEventListener('click', () => keyDialog(''));
  $('#key-cancel').addEventListener('click', () => $('#key-dialog').close());
  $('#key-forget').addEventListener('click', () => {
    app.key = '';
    localStorage.removeItem(KEY_STORE);
    $('#key-input').value = '';
    $('#key-input').focus();
  });
  window.addEventListener('hashchange', () => showView(true));
  try {
    const root = await api('GET', '/');
    app.auth = !!(root && root.auth);
  } catch (err) {
    app.auth = false;
  }
  $('#key-button').hidden = !app.auth;
  if (app.auth && !app.key) keyDialog('');
  await loadModels();
  showView(false);
}

start();
