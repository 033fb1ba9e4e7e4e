import { join } from 'node:path';
import type { Command } from 'commander';
import { encodeModel } from '../../ir/onnx.js';
import { saveAdapter } from '../../workflow/adapter-files.js';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE } from '../../io/formats/adapter-config.js';
import { ensureWritableDir } from '../../io/atomic.js';
import { accountLayers } from '../../passes/accounting.js';
import { budgetCandidates } from '../../passes/budget/candidates.js';
import { termFlops } from '../../passes/budget/plan.js';
import { quadratize } from '../../passes/quadratize.js';
import type { BudgetPlan } from '../../workflow/budget.js';
import { budgetJson, budgetLine, planBudget, scoringData } from '../../workflow/budget.js';
import { usefulnessScores } from '../../workflow/usefulness.js';
import {
  costInputSize,
  describeInputSize,
  loadModelSource,
  withInputShape,
} from '../../workflow/model-source.js';
import type { QuadFlags } from '../options.js';
import { inputShape, nonNegativeInt, quadOptions, toQuadratizeOptions } from '../options.js';
import { refuseOccupiedDir } from '../output-dir.js';
import { formatNumber, table } from '../table.js';
import { modelLimits } from '../options.js';

/** The files quadratize writes (and refuses to overwrite without --force). */
const QUADRATIZE_FILES = ['model.onnx', ADAPTER_WEIGHTS_FILE, ADAPTER_CONFIG_FILE];

/** `quadranet quadratize MODEL -o DIR`: add the zero-initialised quadratic term and export it. */
export function registerQuadratize(program: Command): void {
  const cmd = program
    .command('quadratize')
    .description(
      'turn target layers into quadratic neurons (outputs unchanged at init); write model.onnx and the adapter files',
    )
    .argument(
      '<model>',
      'model file (.onnx, TF.js model.json, .safetensors checkpoint) or arch:NAME',
    )
    .option('-o, --out <dir>', 'output directory')
    .option('--seed <n>', 'seed of the A/B initialisation', nonNegativeInt, 0)
    .option('--dry-run', 'only list every candidate layer and whether/why it is adapted')
    .option(
      '--input-shape <dims>',
      'resolution of the FLOPs for a model with an open input size: dims after the batch, in the model layout (e.g. 3x512x512; default: open dims 224). The written model keeps its open dims',
      inputShape,
    )
    .option(
      '--data <spec>',
      "score each candidate's usefulness on this data (loss gradient of its zero U; a column, and the order a --budget spends in)",
    )
    .option('--force', 'overwrite the model and adapter files of an occupied output directory')
    .option('--json', 'print the result as JSON');
  for (const opt of quadOptions()) cmd.addOption(opt);
  cmd.action(
    async (
      modelArg: string,
      o: QuadFlags & {
        out?: string;
        seed: number;
        dryRun?: boolean;
        force?: boolean;
        json?: boolean;
        inputShape?: number[];
        data?: string;
      },
    ) => {
      if (!o.dryRun && !o.out)
        throw new (await import('../errors.js')).UserError(
          'quadratize needs -o DIR (or --dry-run to only list the targets)',
        );
      if (!o.dryRun) await refuseOccupiedDir(o.out!, QUADRATIZE_FILES, o.force);
      const src = await loadModelSource(modelArg, modelLimits(o));
      const size = costInputSize(src.graph, o.inputShape);
      if (size.source === 'given') withInputShape(src.graph, size.dims, modelArg); // checks it
      const userOpts = toQuadratizeOptions(o, o.seed);
      let qopts = userOpts;
      // Scores and budgets are planned on the model as given; the data only ranks the layers.
      const scoring = o.data ? await scoringData(src.graph, o.data, modelArg, o.seed) : undefined;
      let plan: BudgetPlan | undefined;
      let scores: Map<string, { score: number; perFlop: number }> | undefined;
      if (o.budget) {
        plan = await planBudget(src.graph, {
          budget: o.budget,
          quad: qopts,
          inputShape: size.source === 'model' ? undefined : size.dims,
          data: scoring?.data,
          scoreGraph: scoring?.graph,
          latencyBatch: o.budgetBatch,
        });
        qopts = plan.options;
        if (plan.scores === 'gradient')
          scores = new Map(
            plan.layers.map((l) => [l.node, { score: l.score, perFlop: l.scorePerFlop }]),
          );
      } else if (scoring) {
        const { candidates } = budgetCandidates(src.graph, qopts, size.dims);
        const s = await usefulnessScores(scoring.graph, qopts, candidates, scoring.data);
        scores = new Map(
          candidates.map((c) => [
            c.node,
            { score: s.get(c.node)!, perFlop: s.get(c.node)! / termFlops(c, c.maxRank) },
          ]),
        );
      }
      const res = quadratize(src.graph, { ...qopts, dryRun: o.dryRun });
      // Why a layer is in or out: the budget's word for its candidates, the pass's for the rest.
      const before = plan
        ? new Map(
            quadratize(src.graph, { ...userOpts, dryRun: true }).targets.map((t) => [
              t.node,
              t.reason,
            ]),
          )
        : undefined;
      const why = (t: (typeof res.targets)[number]) => {
        if (!plan) return t.reason;
        if (t.matched) return `planned within --budget ${plan.budget}`;
        if (plan.layers.some((l) => l.node === t.node))
          return `left out by --budget ${plan.budget} (${plan.scores === 'gradient' ? 'less useful per FLOP' : 'dearer'} than the chosen)`;
        return before!.get(t.node) ?? t.reason;
      };
      const rows = res.targets.map((t) => ({
        node: t.node,
        op: t.op,
        kind: t.kind ?? '',
        matched: t.matched,
        rank: t.spec?.rank ?? null,
        kq: t.spec?.kq ?? null,
        dq: t.spec?.dq ?? null,
        params: t.spec?.params.reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0) ?? 0,
        reason: why(t),
        ...(scores?.has(t.node)
          ? { score: scores.get(t.node)!.score, scorePerFlop: scores.get(t.node)!.perFlop }
          : {}),
      }));
      let files: string[] = [];
      // A dry run builds the terms too (without writing them), so it reports the same totals.
      const built = !o.dryRun
        ? res.graph
        : res.targets.some((t) => t.matched)
          ? quadratize(src.graph, qopts).graph
          : undefined;
      let overhead:
        | {
            baseParams: number;
            quadParams: number;
            baseFlops: number;
            quadFlops: number;
            inputShape: number[];
            inputShapeSource: string;
          }
        | undefined;
      if (built) {
        const acc = accountLayers(built, { inputShape: size.dims });
        overhead = {
          baseParams: acc.totals.base.params,
          quadParams: acc.totals.quadratic.params,
          baseFlops: acc.totals.base.flops,
          quadFlops: acc.totals.quadratic.flops,
          inputShape: size.dims,
          inputShapeSource: size.source,
        };
      }
      if (!o.dryRun) {
        await ensureWritableDir(o.out!);
        const modelFile = join(o.out!, 'model.onnx');
        // One all-or-nothing step: a kill never leaves a new model beside an old adapter.
        await saveAdapter(o.out!, res.graph, src.sha256, {
          alongside: { 'model.onnx': encodeModel(res.graph) },
        });
        files = [
          modelFile,
          join(o.out!, 'adapter.safetensors'),
          join(o.out!, 'adapter_config.json'),
        ];
      }
      if (o.json) {
        console.log(
          JSON.stringify(
            {
              model: modelArg,
              dryRun: !!o.dryRun,
              targets: rows,
              overhead,
              ...(plan ? { budget: budgetJson(plan) } : {}),
              ...(o.data ? { scores: scores ? 'gradient' : 'none', scoreData: o.data } : {}),
              files,
            },
            null,
            2,
          ),
        );
        return;
      }
      console.log(
        table(
          [
            'layer',
            'op',
            'kind',
            'adapt',
            'rank',
            'kq',
            'dq',
            'quad params',
            ...(scores ? ['score/GFLOP'] : []),
            'why',
          ],
          rows.map((r) => [
            r.node,
            r.op,
            r.kind,
            r.matched ? 'yes' : 'no',
            r.rank ?? '',
            r.kq?.join('x') ?? '',
            r.dq?.join('x') ?? '',
            r.params,
            ...(scores
              ? [r.scorePerFlop === undefined ? '' : (r.scorePerFlop * 1e9).toPrecision(3)]
              : []),
            r.reason,
          ]),
        ),
      );
      if (plan) console.log(`\n${budgetLine(plan)}`);
      if (overhead) {
        console.log(
          `\nquadratic term: +${formatNumber(overhead.quadParams)} parameters (+${((100 * overhead.quadParams) / overhead.baseParams).toFixed(1)}% of the adapted layers), ` +
            `+${formatNumber(overhead.quadFlops)} FLOPs (+${((100 * overhead.quadFlops) / overhead.baseFlops).toFixed(1)}%) per sample at ${describeInputSize(size)}; outputs equal the original's until trained`,
        );
      }
      if (files.length > 0) {
        console.log(`wrote ${files.join(', ')}`);
      }
    },
  );
}
