import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import protobuf from 'protobufjs/minimal.js';
import { differentiableOps } from '../../autodiff/registry.js';
import '../../autodiff/backward.js';
import { implicitInputs } from '../../ir/graph.js';
import { inferShapes } from '../../ir/shapes/index.js';
import { accountLayers } from '../../passes/accounting.js';
import { describeFold } from '../../passes/fold.js';
import { describeNormalize } from '../../passes/normalize-export.js';
import { describeUpgrade } from '../../passes/upgrade-opset.js';
import { readAdapterState } from '../../passes/quadratic-spec.js';
import { quadratize } from '../../passes/quadratize.js';
import { describeEnding, detectOutputEnding } from '../../passes/output-ending.js';
import type { PhaseProgress } from '../../workflow/evaluate.js';
import { inPhase, measureLatency } from '../../workflow/evaluate.js';
import {
  costInputSize,
  describeInputSize,
  imageInputShape,
  loadModelSource,
  withInputShape,
} from '../../workflow/model-source.js';
import { inputShape, positiveInt, epOption } from '../options.js';
import { budgetCandidates } from '../../passes/budget/candidates.js';
import { termFlops } from '../../passes/budget/plan.js';
import { scoringData } from '../../workflow/budget.js';
import { usefulnessScores } from '../../workflow/usefulness.js';
import { phaseReporter } from '../progress.js';
import type { ExecutionProvider } from '../../runtime/session.js';
import { formatNumber, table } from '../table.js';
import { modelLimits } from '../options.js';

/** `quadranet inspect MODEL`: what the model is, what can be adapted and why not, how fast it runs. */
export function registerInspect(program: Command): void {
  program
    .command('inspect')
    .description('layers, parameters, FLOPs, what can be adapted (and why not), baseline latency')
    .argument(
      '<model>',
      'model file (.onnx, TF.js model.json, .safetensors checkpoint) or arch:NAME',
    )
    .option('--json', 'print the result as JSON')
    .option('--batch <n>', 'batch size for FLOPs', positiveInt, 1)
    .option(
      '--latency-runs <n>',
      'timed inference runs per batch size (0 to skip)',
      (v) => Number(v),
      20,
    )
    .option('--threads <n>', 'onnxruntime threads', positiveInt, 2)
    .addOption(epOption())
    .option('--plain', 'plain progress lines even on a terminal')
    .option(
      '--data <spec>',
      'score how useful a quadratic term would be on each adaptable layer, on this data (loss gradient of its zero U, per FLOP of the term)',
    )
    .option(
      '--input-shape <dims>',
      'resolution of FLOPs and latency for a model with an open input size: dims after the batch, in the model layout (e.g. 3x512x512 or 64x64x3; default: open dims 224)',
      inputShape,
    )
    .action(
      async (
        modelArg: string,
        o: {
          json?: boolean;
          batch: number;
          latencyRuns: number;
          threads: number;
          ep?: ExecutionProvider;
          inputShape?: number[];
          plain?: boolean;
          data?: string;
        },
      ) => {
        const phases = phaseReporter({ label: 'inspect', plain: o.plain, quiet: o.json });
        const onPhase = (p: PhaseProgress) => phases.update(p);
        const src = await loadModelSource(modelArg, modelLimits(o));
        const g = src.graph;
        // Costs are computed at one resolution; the model itself keeps its open dims.
        const size = costInputSize(g, o.inputShape);
        const sized = size.source === 'model' ? g : withInputShape(g, size.dims, modelArg);
        const fileOpset = modelArg.endsWith('.onnx')
          ? declaredOpset(await readFile(modelArg))
          : undefined;
        const { shapes, account } = await inPhase(onPhase, 'inferring shapes and FLOPs', () =>
          Promise.resolve({
            shapes: inferShapes(sized),
            account: accountLayers(sized, { batchSize: o.batch }),
          }),
        );
        // An adapted model is inspected as it is; its targets come from the adapter record.
        const adapter = readAdapterState(g);
        const plan = adapter
          ? {
              targets: adapter.targets.map((t) => ({
                node: t.node,
                matched: true,
                reason: `already quadratic (${t.mode}, rank ${t.rank ?? 'full'}, ${t.phi})`,
              })),
            }
          : quadratize(g, { dryRun: true });
        const reasons = new Map(plan.targets.map((t) => [t.node, t] as const));
        const grads = new Set(differentiableOps());
        // Ops on integer paths (Shape → Gather → Reshape targets) never carry gradients.
        const isFloat = (v: string) =>
          ['float32', 'float64', 'float16'].includes(shapes.values.get(v)?.dtype ?? 'float32');
        // ...nor do ops that read no float value (ConstantOfShape, Range); an If reads its
        // branches' outer values.
        const carries = (n: (typeof g.nodes)[number]) =>
          n.outputs.some(isFloat) &&
          [...n.inputs, ...implicitInputs(n)].some((i) => i && isFloat(i));
        const noGradient = g.nodes
          .filter((n) => !grads.has(n.opType) && carries(n))
          .map((n) => ({ node: n.name, op: n.opType }));
        // Per op type: how many nodes, and whether training can go through it.
        const opTypes = [...new Set(g.nodes.map((n) => n.opType))].sort().map((op) => {
          const nodes = g.nodes.filter((n) => n.opType === op);
          return {
            op,
            nodes: nodes.length,
            gradientRule: grads.has(op),
            needsGradient: nodes.some(carries),
          };
        });
        const noShape = shapes.unsupported.map((n) => ({ node: n.name, op: n.opType }));
        let latency: { batchSize: number; p50Ms: number; p95Ms: number; perSampleMs: number }[] =
          [];
        if (o.latencyRuns > 0) {
          const shape = imageInputShape(sized, modelArg);
          try {
            [latency] = (await measureLatency([sized], shape, {
              runs: o.latencyRuns,
              session: { threads: o.threads, ep: o.ep },
              onPhase,
            })) as [typeof latency];
          } finally {
            phases.stop();
          }
        }
        // Usefulness per FLOP of each default target's term (a plain model and --data only).
        let useful: Map<string, { score: number; perFlop: number }> | undefined;
        if (o.data && !adapter && plan.targets.some((t) => t.matched)) {
          const scoring = await scoringData(g, o.data, modelArg, 0);
          const { candidates } = budgetCandidates(g, {}, size.dims);
          const s = await inPhase(onPhase, `scoring usefulness on '${o.data}'`, () =>
            usefulnessScores(scoring.graph, {}, candidates, scoring.data, {
              session: { threads: o.threads, ep: o.ep },
            }),
          );
          useful = new Map(
            candidates.map((c) => [
              c.node,
              { score: s.get(c.node)!, perFlop: s.get(c.node)! / termFlops(c, c.maxRank) },
            ]),
          );
        }
        const layers = account.layers.map((l) => {
          const t = reasons.get(l.node);
          const u = useful?.get(l.node);
          return {
            node: l.node,
            op: l.op,
            weight: l.weight,
            outputShape: l.outputShape,
            params: l.base.params,
            flops: l.base.flops,
            // An adapted model's quadratic term of this layer (absent on a plain model).
            ...(l.quadratic
              ? { quadParams: l.quadratic.params, quadFlops: l.quadratic.flops }
              : {}),
            adaptable: t?.matched ?? false,
            ...(u ? { usefulness: u.score, usefulnessPerFlop: u.perFlop } : {}),
            reason: t?.reason ?? 'not a Conv/Gemm/MatMul',
          };
        });
        // What a classification loss makes of the output (softmax-ended classifiers and others).
        const ending = detectOutputEnding(g);
        const totalParams = [...g.initializers.values()]
          .filter((t) => t.dtype === 'float32' || t.dtype === 'float64')
          .reduce((s, t) => s + t.data.length, 0);
        const result = {
          model: modelArg,
          sha256: src.sha256,
          // The file's own opset; quadranet works in (and writes) at least opsetWritten.
          opset: fileOpset ?? g.opset,
          opsetWritten: Math.max(g.opset, 17),
          inputs: g.inputs,
          outputs: g.outputs,
          outputEnding: { ...ending, summary: describeEnding(ending) },
          nodes: g.nodes.length,
          params: totalParams,
          // Everything a forward pass computes: an adapted model's quadratic terms included.
          flops: account.totals.base.flops + account.totals.quadratic.flops,
          baseFlops: account.totals.base.flops,
          quadFlops: account.totals.quadratic.flops,
          // The resolution FLOPs and latency are computed at, and where it came from.
          inputShape: size.dims,
          inputShapeSource: size.source,
          flopConvention: account.convention,
          layers,
          adaptable: layers.filter((l) => l.adaptable).length,
          opTypes,
          unsupportedForTraining: noGradient,
          unsupportedForShapes: noShape,
          // What the ONNX importer folded (Identity nodes, static shape arithmetic), if anything.
          folded: src.notes?.folded ?? null,
          // Opset upgrade and training-export normalisation on import (older files, torch exports).
          upgraded: src.notes?.upgraded ?? null,
          normalized: src.notes?.normalized ?? null,
          latency,
          threads: o.threads,
        };
        if (o.json) {
          console.log(JSON.stringify(result, null, 2));
          return;
        }
        console.log(
          `${modelArg}  (opset ${result.opset}${result.opset !== result.opsetWritten ? `, written as ${result.opsetWritten}` : ''}, ${g.nodes.length} nodes, sha256 ${src.sha256.slice(0, 12)}…)`,
        );
        console.log(
          `inputs: ${g.inputs.map((v) => `${v.name} [${v.shape.join(',')}] ${v.dtype}`).join('; ')}`,
        );
        console.log(
          `outputs: ${g.outputs.map((v) => `${v.name} [${v.shape.join(',')}]`).join('; ')}`,
        );
        console.log(`classifier: ${result.outputEnding.summary}`);
        // (An opset change alone, e.g. 17 → 18 with nothing rewritten, is not worth a line.)
        if (result.upgraded && Object.keys(result.upgraded.rewritten).length > 0)
          console.log(`on import: ${describeUpgrade(result.upgraded)}`);
        const normal = result.normalized && describeNormalize(result.normalized);
        if (normal) console.log(`on import: ${normal}`);
        const fold = result.folded && describeFold(result.folded);
        if (fold) console.log(`on import: ${fold}`);
        console.log('');
        console.log(
          table(
            [
              'layer',
              'op',
              'output',
              'params',
              `FLOPs (batch ${o.batch})`,
              'adapt?',
              ...(useful ? ['score/GFLOP'] : []),
              'why',
            ],
            layers.map((l) => [
              l.node,
              l.op,
              `[${l.outputShape.join(',')}]`,
              l.params,
              l.flops,
              l.adaptable ? 'yes' : 'no',
              ...(useful
                ? [
                    l.usefulnessPerFlop === undefined
                      ? ''
                      : (l.usefulnessPerFlop * 1e9).toPrecision(3),
                  ]
                : []),
              l.reason,
            ]),
          ),
        );
        console.log(
          `\ntotal: ${formatNumber(totalParams)} parameters, ${formatNumber(result.flops)} FLOPs per forward at batch ${o.batch}, ${describeInputSize(size)} (${account.convention})`,
        );
        if (result.quadFlops > 0)
          console.log(
            `  of which quadratic terms: ${formatNumber(result.quadFlops)} FLOPs (+${((100 * result.quadFlops) / result.baseFlops).toFixed(1)}% over the base layers)`,
          );
        console.log(`adaptable layers: ${result.adaptable} of ${layers.length}`);
        if (noGradient.length) {
          console.log(
            `cannot be trained through (no gradient rule): ${noGradient.map((n) => `${n.node} (${n.op})`).join(', ')}`,
          );
          console.log(
            '  layers after these can still be adapted; layers before them only if the path to the loss avoids them',
          );
        } else console.log('every op can be trained through');
        if (noShape.length)
          console.log(
            `no shape inference for: ${noShape.map((n) => `${n.node} (${n.op})`).join(', ')}`,
          );
        if (latency.length) {
          console.log(
            `\nbaseline inference latency (${o.threads} threads, onnxruntime CPU, input [${size.dims.join(',')}]):`,
          );
          console.log(
            table(
              ['batch', 'p50 ms', 'p95 ms', 'ms/sample'],
              latency.map((l) => [l.batchSize, l.p50Ms, l.p95Ms, l.perSampleMs]),
            ),
          );
        }
      },
    );
}

/**
 * The default-domain opset an ONNX file declares (ModelProto field 8, `opset_import`), read by
 * skipping over the graph rather than decoding it again; undefined when none is declared.
 */
export function declaredOpset(bytes: Uint8Array): number | undefined {
  const r = protobuf.Reader.create(bytes);
  type Long = { toNumber(): number };
  const toNumber = (v: number | Long) => (typeof v === 'number' ? v : v.toNumber());
  let opset: number | undefined;
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag >>> 3 !== 8 || (tag & 7) !== 2) {
      r.skipType(tag & 7);
      continue;
    }
    const end = r.uint32() + r.pos;
    let domain = '';
    let version = 0;
    while (r.pos < end) {
      const t = r.uint32();
      if (t >>> 3 === 1 && (t & 7) === 2) domain = r.string();
      else if (t >>> 3 === 2 && (t & 7) === 0)
        version = toNumber(r.int64() as unknown as number | Long);
      else r.skipType(t & 7);
    }
    if (domain === '' || domain === 'ai.onnx') opset = version;
  }
  return opset;
}
