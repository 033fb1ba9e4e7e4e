/**
 * The example page: load an ONNX classifier, collect labelled images (dropped, picked, or the
 * sample digits), adapt the model with QuadraNet V2 in the browser, and compare accuracy and
 * latency with the original. Bundled to dist/browser/app.mjs by scripts/build-browser.ts; it
 * loads the library bundle for the chosen device at run time.
 *
 * The page's state is also published as `window.quadranetDemo` (for the end-to-end test).
 */
import type { DemoResult, DemoState } from './state.js';

type Lib = typeof import('../../src/browser.js');
type Graph = import('../../src/browser.js').Graph;

/** Images of one class: model inputs and the thumbnails shown. */
interface ClassImages {
  inputs: Float32Array[];
  thumbs: HTMLCanvasElement[];
}

declare global {
  interface Window {
    quadranetDemo: DemoState;
  }
}

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const pct = (x: number | null) => (x === null ? '–' : `${(x * 100).toFixed(1)}%`);
const demo: DemoState = { state: 'loading', images: 0 };
window.quadranetDemo = demo;

const params = new URLSearchParams(location.search);
let device: 'wasm' | 'webgpu' = 'wasm';
const threadsParam = params.get('threads');
let q: Lib;
let base: Graph | undefined;
let shape: [number, number, number] = [1, 28, 28];
let zones: ClassImages[] = [];

function fail(e: unknown): void {
  const msg = e instanceof Error ? e.message : String(e);
  demo.state = 'error';
  demo.error = msg;
  const el = $('error');
  el.textContent = `Error: ${msg}`;
  el.classList.remove('hidden');
  updateButtons();
}

function updateButtons(): void {
  const busy = demo.state === 'loading' || demo.state === 'adapting';
  const n = zones.reduce((s, z) => s + z.inputs.length, 0);
  demo.images = n;
  $<HTMLButtonElement>('adapt').disabled = busy || !base || n < 2;
  $<HTMLButtonElement>('samples').disabled =
    busy || !base || zones.length !== 10 || shape.join('x') !== '1x28x28';
  $<HTMLButtonElement>('clear').disabled = busy || n === 0;
  $('data-status').textContent = n
    ? `${n} image(s) in ${zones.filter((z) => z.inputs.length).length} class(es).`
    : 'No images yet.';
}

/** Loads the library bundle for the device and configures onnxruntime-web. */
async function init(): Promise<void> {
  const webgpu = (navigator as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
  const gpu = !!(await webgpu?.requestAdapter().catch(() => null));
  if (params.get('device') === 'webgpu' && gpu) device = 'webgpu';
  const file = device === 'webgpu' ? './quadranet.webgpu.mjs' : './quadranet.mjs';
  q = (await import(new URL(file, import.meta.url).href)) as Lib;
  const threads = threadsParam
    ? Number(threadsParam)
    : crossOriginIsolated
      ? Math.min(4, Math.max(1, Math.ceil(navigator.hardwareConcurrency / 2)))
      : 1;
  q.configureBackend({ device, numThreads: threads });
  const select = $<HTMLSelectElement>('device');
  select.value = device;
  (select.options[1] as HTMLOptionElement).disabled = !gpu;
  select.onchange = () => {
    params.set('device', select.value);
    location.search = params.toString();
  };
  $('backend-status').textContent =
    `onnxruntime-web ${q.ort.env.versions.web ?? ''} on ${device === 'webgpu' ? 'WebGPU (WebAssembly fallback)' : 'WebAssembly'}, ${threads} thread(s)` +
    (gpu ? '' : '; WebGPU is not available in this browser');
  demo.result = undefined;
  const res = await fetch('models/mnist-cnn.onnx');
  if (!res.ok) throw new Error(`models/mnist-cnn.onnx: HTTP ${res.status}`);
  await loadModel(
    'mnist-cnn.onnx (embedded, pretrained on MNIST)',
    new Uint8Array(await res.arrayBuffer()),
  );
}

/** Decodes a model, reads its input shape, finds the number of classes by running it once. */
async function loadModel(name: string, bytes: Uint8Array): Promise<void> {
  demo.state = 'loading';
  $('error').classList.add('hidden');
  const status = $('model-status');
  status.dataset.state = 'loading';
  status.textContent = `Loading ${name}…`;
  updateButtons();
  const g = q.decodeModel(bytes, { file: name });
  const dims = g.inputs[0]!.shape.slice(1);
  if (dims.length !== 3 || !dims.every((d) => typeof d === 'number' && d > 0))
    throw new Error(
      `${name}: expected an image classifier with input N×C×H×W, got [${g.inputs[0]!.shape.join(', ')}]`,
    );
  shape = dims as [number, number, number];
  const s = await q.Session.create(g);
  const size = shape[0] * shape[1] * shape[2];
  const out = await s.run({
    [g.inputs[0]!.name]: { dtype: 'float32', dims: [1, ...shape], data: new Float32Array(size) },
  });
  await s.release();
  const classes = out[g.outputs[0]!.name]!.data.length;
  if (classes < 2 || classes > 100)
    throw new Error(
      `${name}: ${classes} outputs; this page handles classifiers of 2 to 100 classes`,
    );
  let params = 0;
  for (const t of g.initializers.values()) params += t.data.length;
  base = g;
  demo.model = { name, shape, classes, params };
  makeZones(classes);
  status.textContent = `${name}: ${params.toLocaleString('en')} parameters, input ${shape.join('×')}, ${classes} classes.`;
  status.dataset.state = 'ready';
  demo.state = 'ready';
  updateButtons();
}

function makeZones(classes: number): void {
  zones = [];
  const host = $('zones');
  host.replaceChildren();
  for (let c = 0; c < classes; c++) {
    const z: ClassImages = { inputs: [], thumbs: [] };
    zones.push(z);
    const el = document.createElement('div');
    el.className = 'zone';
    el.id = `zone-${c}`;
    el.innerHTML = `<div class="head">${c}<span>0</span></div><div class="thumbs"></div><input type="file" accept="image/*" multiple />`;
    const input = el.querySelector('input')!;
    el.onclick = (e) => {
      if (e.target !== input) input.click();
    };
    input.onchange = () => {
      addFiles(c, [...(input.files ?? [])]).catch(fail);
      input.value = '';
    };
    el.ondragover = (e) => {
      e.preventDefault();
      el.classList.add('over');
    };
    el.ondragleave = () => el.classList.remove('over');
    el.ondrop = (e) => {
      e.preventDefault();
      el.classList.remove('over');
      addFiles(c, [...(e.dataTransfer?.files ?? [])]).catch(fail);
    };
    host.append(el);
  }
}

function renderZone(c: number): void {
  const el = $(`zone-${c}`);
  const z = zones[c]!;
  el.querySelector('.head span')!.textContent = String(z.inputs.length);
  const more = document.createElement('span');
  more.className = 'more';
  more.textContent = z.thumbs.length > 17 ? `+${z.thumbs.length - 17}` : '';
  el.querySelector('.thumbs')!.replaceChildren(...z.thumbs.slice(0, 17), more);
}

/**
 * Converts (a region of) an image into a model input: fitted into H×W keeping its aspect ratio,
 * pixels in [0, 1]; grayscale for one channel. A one-channel image on a light background (a dark
 * digit on paper) is inverted to the MNIST convention (light digit on black), judged by the mean
 * of the pixels along the image's edge; its margins are filled with its background.
 */
function toInput(
  src: CanvasImageSource,
  sw: number,
  sh: number,
  sx = 0,
  sy = 0,
): { input: Float32Array; thumb: HTMLCanvasElement } {
  const [c, h, w] = shape;
  const canvas = document.createElement('canvas');
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
  const scale = Math.min(w / sw, h / sh);
  const [dw, dh] = [Math.max(1, Math.round(sw * scale)), Math.max(1, Math.round(sh * scale))];
  const [dx, dy] = [Math.floor((w - dw) / 2), Math.floor((h - dh) / 2)];
  const draw = (background: string) => {
    ctx.fillStyle = background;
    ctx.fillRect(0, 0, w, h);
    ctx.drawImage(src, sx, sy, sw, sh, dx, dy, dw, dh);
    return ctx.getImageData(0, 0, w, h).data;
  };
  const lum = (px: Uint8ClampedArray, i: number) =>
    (0.299 * px[i]! + 0.587 * px[i + 1]! + 0.114 * px[i + 2]!) / 255;
  let px = draw('#000');
  let invert = false;
  if (c === 1) {
    let edge = 0;
    let n = 0;
    for (let y = dy; y < dy + dh; y++)
      for (let x = dx; x < dx + dw; x++)
        if (x === dx || y === dy || x === dx + dw - 1 || y === dy + dh - 1) {
          edge += lum(px, (y * w + x) * 4);
          n++;
        }
    invert = edge / n > 0.5;
    if (invert) px = draw('#fff');
  }
  const input = new Float32Array(c * h * w);
  const thumb = ctx.createImageData(w, h);
  for (let p = 0; p < h * w; p++) {
    const i = p * 4;
    if (c === 1) {
      const v = invert ? 1 - lum(px, i) : lum(px, i);
      input[p] = v;
      thumb.data.fill(Math.round(v * 255), i, i + 3);
    } else {
      for (let k = 0; k < 3; k++) thumb.data[i + k] = px[i + k]!;
      for (let k = 0; k < Math.min(c, 3); k++) input[k * h * w + p] = px[i + k]! / 255;
    }
    thumb.data[i + 3] = 255;
  }
  ctx.putImageData(thumb, 0, 0);
  return { input, thumb: canvas };
}

async function addFiles(c: number, files: File[]): Promise<void> {
  for (const f of files) {
    if (!f.type.startsWith('image/')) continue;
    const bmp = await createImageBitmap(f);
    const { input, thumb } = toInput(bmp, bmp.width, bmp.height);
    bmp.close();
    zones[c]!.inputs.push(input);
    zones[c]!.thumbs.push(thumb);
  }
  renderZone(c);
  updateButtons();
}

/** The sample digits: one row per class of 28×28 rotated MNIST test digits. */
async function addSamples(): Promise<void> {
  const meta = (await (await fetch('samples/samples.json')).json()) as {
    perClass: number;
    size: number;
  };
  const bmp = await createImageBitmap(await (await fetch('samples/digits.png')).blob());
  const s = meta.size;
  for (let c = 0; c < 10; c++) {
    for (let k = 0; k < meta.perClass; k++) {
      const { input, thumb } = toInput(bmp, s, s, k * s, c * s);
      zones[c]!.inputs.push(input);
      zones[c]!.thumbs.push(thumb);
    }
    renderZone(c);
  }
  bmp.close();
  updateButtons();
}

/** Splits the collected images: every 4th image of a class is held out. */
function datasets() {
  const sets = {
    adapt: { x: [] as Float32Array[], y: [] as number[] },
    held: { x: [] as Float32Array[], y: [] as number[] },
  };
  zones.forEach((z, c) =>
    z.inputs.forEach((x, i) => {
      const s = i % 4 === 3 ? sets.held : sets.adapt;
      s.x.push(x);
      s.y.push(c);
    }),
  );
  const k = zones.length;
  const all = [...sets.adapt.x, ...sets.held.x];
  return {
    adapt: q.datasetFromImages(sets.adapt.x, sets.adapt.y, shape, k, 'adapt'),
    held: sets.held.x.length
      ? q.datasetFromImages(sets.held.x, sets.held.y, shape, k, 'held-out')
      : null,
    all: q.datasetFromImages(all, [...sets.adapt.y, ...sets.held.y], shape, k, 'all'),
  };
}

/** A nextTick that lets the page repaint. */
const repaint = () => new Promise<void>((r) => setTimeout(r, 0));

async function runAdaptation(): Promise<void> {
  const g = base!;
  demo.state = 'adapting';
  $('error').classList.add('hidden');
  updateButtons();
  $('results-section').classList.add('hidden');
  const status = $('adapt-status');
  const progress = $<HTMLProgressElement>('progress');
  progress.classList.remove('hidden');
  progress.value = 0;
  const { adapt, held, all } = datasets();
  if (adapt.n < 2) throw new Error('add at least 2 images (besides the held-out ones)');
  status.textContent = 'Evaluating the original model…';
  await repaint();
  const acc = async (m: Graph) => ({
    adaptAccuracy: (await q.evaluateModel(m, adapt)).accuracy,
    heldOutAccuracy: held ? (await q.evaluateModel(m, held)).accuracy : null,
  });
  const before = await acc(g);
  const t0 = performance.now();
  let identity: DemoResult['identity'] | undefined;
  const stepLosses: number[] = [];
  $('loss-caption').textContent = 'training loss per step';
  $('loss-figure').classList.remove('hidden');
  const res = await q.adapt(g, adapt, {
    rank: Number($<HTMLSelectElement>('rank').value),
    epochs: Math.max(1, Math.min(50, Number($<HTMLInputElement>('epochs').value) || 6)),
    batchSize: 32,
    onQuadratized: async (quad) => {
      status.textContent = 'Checking the quadratized model against the original…';
      await repaint();
      const cmp = await q.compareOutputs(quad, g, all);
      identity = { maxAbsDiff: cmp.maxAbsDiff, relative: cmp.relative, ok: cmp.relative <= 1e-6 };
    },
    onStep: async (s) => {
      stepLosses.push(s.loss);
      drawLoss(stepLosses, s.totalSteps);
      progress.value = s.step / s.totalSteps;
      status.textContent = `epoch ${s.epoch + 1}, step ${s.step}/${s.totalSteps}: loss ${s.epochLoss.toFixed(3)} (${s.ms.toFixed(0)} ms/step)`;
      await repaint();
    },
  });
  const trainSeconds = (performance.now() - t0) / 1000;
  status.textContent = 'Evaluating the adapted model and timing both…';
  await repaint();
  const after = await acc(res.model);
  const [lo, la] = await q.measureLatency([g, res.model], shape, {
    batchSizes: [1, 32],
    runs: 30,
  });
  const result: DemoResult = {
    model: demo.model!.name,
    device,
    threads: q.ort.env.wasm.numThreads ?? 1,
    images: { adapt: adapt.n, heldOut: held?.n ?? 0 },
    identity: identity!,
    before,
    after,
    epochLosses: res.epochLosses,
    steps: res.steps,
    stepMs: res.stepMs,
    trainSeconds,
    trainableParams: res.trainableParams,
    latency: lo!.map((l, i) => ({
      batch: l.batchSize,
      originalP50Ms: l.p50Ms,
      adaptedP50Ms: la![i]!.p50Ms,
    })),
  };
  status.textContent = `Done: ${res.steps} steps in ${trainSeconds.toFixed(1)} s (${res.stepMs.toFixed(0)} ms/step).`;
  progress.classList.add('hidden');
  showResults(result, res.model);
  demo.result = result;
  demo.state = 'done';
  updateButtons();
}

function showResults(r: DemoResult, adapted: Graph): void {
  const id = $('identity');
  id.className = `check ${r.identity.ok ? 'ok' : 'fail'}`;
  id.textContent = `${r.identity.ok ? '✓' : '✗'} Before training, the quadratized model computes the original's outputs (max |Δ| ${r.identity.maxAbsDiff.toExponential(1)}, relative ${r.identity.relative.toExponential(1)}).`;
  const row = (name: string, a: DemoResult['before'], ms: number[]) =>
    `<tr><td>${name}</td><td>${pct(a.adaptAccuracy)}</td><td>${pct(a.heldOutAccuracy)}</td>` +
    ms.map((m) => `<td>${m.toFixed(2)} ms</td>`).join('') +
    '</tr>';
  $('results-table').querySelector('tbody')!.innerHTML =
    row(
      'original',
      r.before,
      r.latency.map((l) => l.originalP50Ms),
    ) +
    row(
      'adapted (QuadraNet V2)',
      r.after,
      r.latency.map((l) => l.adaptedP50Ms),
    );
  const big = r.latency.at(-1)!;
  const ratio = big.adaptedP50Ms / big.originalP50Ms;
  $('summary').textContent =
    `${r.images.adapt} adaptation and ${r.images.heldOut} held-out images; ${r.trainableParams.toLocaleString('en')} trainable parameters ` +
    `(quadratic terms + head); the quadratic terms cannot be merged into the weights, so the adapted model takes ${ratio.toFixed(2)}× the original's time (batch ${big.batch}).`;
  $('loss-caption').textContent =
    `loss per step (epoch mean ${r.epochLosses[0]!.toFixed(2)} → ${r.epochLosses.at(-1)!.toFixed(2)})`;
  $('download').onclick = () => {
    const bytes = q.encodeModel(adapted);
    const a = document.createElement('a');
    a.href = URL.createObjectURL(
      new Blob([bytes as BlobPart], { type: 'application/octet-stream' }),
    );
    a.download = 'adapted.onnx';
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  };
  $('results-section').classList.remove('hidden');
}

/** The training loss of every step so far, on an x axis of all the steps. */
function drawLoss(losses: number[], totalSteps: number): void {
  const cv = $<HTMLCanvasElement>('loss-chart');
  const ctx = cv.getContext('2d')!;
  const { width: W, height: H } = cv;
  const pad = { l: 64, r: 20, t: 14, b: 54 };
  ctx.clearRect(0, 0, W, H);
  ctx.font = '22px system-ui, sans-serif';
  ctx.fillStyle = '#5d6678';
  ctx.strokeStyle = '#c9d0dc';
  ctx.lineWidth = 2;
  const max = Math.max(...losses) * 1.05;
  const x = (i: number) => pad.l + ((W - pad.l - pad.r) * i) / Math.max(1, totalSteps - 1);
  const y = (v: number) => pad.t + (H - pad.t - pad.b) * (1 - v / max);
  ctx.beginPath();
  ctx.moveTo(pad.l, pad.t);
  ctx.lineTo(pad.l, H - pad.b);
  ctx.lineTo(W - pad.r, H - pad.b);
  ctx.stroke();
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  ctx.fillText(max.toFixed(2), pad.l - 8, y(max));
  ctx.fillText('0', pad.l - 8, y(0));
  ctx.textBaseline = 'top';
  ctx.textAlign = 'left';
  ctx.fillText('1', x(0), H - pad.b + 6);
  ctx.textAlign = 'right';
  ctx.fillText(String(totalSteps), x(totalSteps - 1), H - pad.b + 6);
  ctx.textAlign = 'center';
  ctx.fillText('step', (pad.l + W - pad.r) / 2, H - pad.b + 6);
  ctx.strokeStyle = '#2458c6';
  ctx.lineWidth = 3;
  ctx.beginPath();
  losses.forEach((v, i) => (i ? ctx.lineTo(x(i), y(v)) : ctx.moveTo(x(i), y(v))));
  ctx.stroke();
}

$('samples').onclick = () => void addSamples().catch(fail);
$('clear').onclick = () => {
  makeZones(zones.length);
  updateButtons();
};
$('adapt').onclick = () => void runAdaptation().catch(fail);
$<HTMLInputElement>('model-file').onchange = async (e) => {
  const f = (e.target as HTMLInputElement).files?.[0];
  if (!f) return;
  try {
    await loadModel(f.name, new Uint8Array(await f.arrayBuffer()));
  } catch (err) {
    fail(err);
  }
};
init().catch(fail);
