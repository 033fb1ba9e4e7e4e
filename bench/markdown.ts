/**
 * The markdown table of a `npm run bench` result (bench/results/latest.md, quoted by the README).
 * Each row names what its ratio compares: the cases are timed against PyTorch, against the
 * original model, or are peak-memory comparisons, and one "PyTorch ms" column read them wrong.
 *
 *   npx tsx bench/markdown.ts [bench/results/latest.json]   re-renders latest.md from a saved result
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** One benchmark case as run.ts writes it to the JSON. */
export interface BenchResult {
  name: string;
  quadranet_ms: number;
  torch_ms: number | null;
  ratio: number | null;
  spread: number;
  [extra: string]: unknown;
}

/** The JSON document run.ts writes (the parts the table reads). */
export interface BenchDoc {
  machine: { cpus: string; cores: number; threads: number };
  versions: { node: string; onnxruntime: string; torch: string | null };
  settings: { rounds: number; iters: number };
  results: BenchResult[];
  webgpu: { available: boolean; reason?: string; ratio?: number; ms?: number; cpuMs?: number };
}

const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);

/** The measured value and what it is compared with, as table cells. */
function cells(r: BenchResult): [string, string] {
  const withMiB = num(r['with_mib']);
  const withoutMiB = num(r['without_mib']);
  if (withMiB !== undefined && withoutMiB !== undefined) {
    const other =
      r.name === 'mempattern_off_peak_rss'
        ? 'with the memory-pattern planner'
        : 'without recomputation';
    return [`${withMiB.toFixed(0)} MiB`, `${withoutMiB.toFixed(0)} MiB ${other}`];
  }
  const original = num(r['original_ms']);
  if (original !== undefined) {
    const d = original < 1 ? 2 : 1;
    // The latency method's self-check times a copy of the model against the model.
    const other = r.name.startsWith('same_model') ? 'the same model' : 'original';
    return [`${r.quadranet_ms.toFixed(d)} ms`, `${other} ${original.toFixed(d)} ms`];
  }
  return [
    `${r.quadranet_ms.toFixed(1)} ms`,
    r.torch_ms === null ? '–' : `PyTorch ${r.torch_ms.toFixed(1)} ms`,
  ];
}

/** Renders the result table, the WebGPU line and the machine line. */
export function benchMarkdown(doc: BenchDoc): string {
  const { machine, versions, settings, webgpu } = doc;
  return [
    `| case | quadranet | compared with | ratio | spread |`,
    `|---|---:|---:|---:|---:|`,
    ...doc.results.map((r) => {
      const [value, other] = cells(r);
      return `| ${r.name} | ${value} | ${other} | ${r.ratio?.toFixed(2) ?? '–'} | ${(r.spread * 100).toFixed(0)}% |`;
    }),
    '',
    webgpu.available
      ? `WebGPU (original CNN, batch 64): ${webgpu.ms!.toFixed(2)} ms vs ${webgpu.cpuMs!.toFixed(2)} ms on cpu (${webgpu.ratio!.toFixed(2)}×).`
      : `WebGPU: not available on this machine (${webgpu.reason}).`,
    '',
    `Machine: ${machine.cpus}, ${machine.cores} cores; ${machine.threads} threads each; node ${versions.node}, onnxruntime-node ${versions.onnxruntime}, torch ${versions.torch ?? 'n/a'}. ` +
      `Ratio: quadranet / PyTorch (train and infer cases; medians of ${settings.rounds} alternating rounds × ${settings.iters} steps, the median of per-round ratios), ` +
      `adapted / original (the two models' median times over alternating runs; for ResNet-18 and the same-model check the median of paired per-run ratios), or peak RSS of the two settings. ` +
      `Spread: (p90 − p10) / median of the per-round ratios; for the adapted cases (p95 − p50) / p50 of the adapted model's times, or the paired interval's half-width for ResNet-18 and the same-model check.`,
  ].join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const file = process.argv[2] ?? fileURLToPath(new URL('./results/latest.json', import.meta.url));
  const doc = JSON.parse(readFileSync(file, 'utf8')) as BenchDoc;
  writeFileSync(file.replace(/\.json$/, '.md'), benchMarkdown(doc) + '\n');
}
