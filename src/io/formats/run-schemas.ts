/**
 * The run directory's JSON files (run-format.ts) as zod schemas: what a reader requires, what it
 * tolerates (missing descriptive fields read as "unknown") and how JSON's nulls map back to
 * numbers (a non-finite loss or accuracy is null: NaN; an infinite PSNR is null: Infinity).
 * Each schema is typed against its interface in run-format.ts, so the two cannot drift apart.
 * Fields a schema does not list are dropped on reading (the report does not use them).
 */

import { z } from 'zod';
import type {
  EvalSummary,
  HistoryRecord,
  LatencySummary,
  RegressionSummary,
  RunInfo,
  RunMethod,
} from './run-format.js';

/** Every method the run format defines, in the order the report lists them. */
export const RUN_METHODS = [
  'quadratic-adapt',
  'linear-adapter',
  'fine-tune',
  'head-only',
  'scratch-quadratic',
  'scratch',
] as const satisfies readonly RunMethod[];

const STATUSES = [
  'running',
  'done',
  'interrupted',
  'diverged',
] as const satisfies readonly RunInfo['status'][];

const count = z.number().min(0);
/** A descriptive string that may be missing or malformed (read as `fallback`). */
const described = (fallback: string) => z.string().catch(fallback);
/** A number that may be missing or null (read as `fallback`). */
const optional = (n: z.ZodNumber, fallback: number) => n.nullish().transform((v) => v ?? fallback);
/** A number written as null when it was not finite (read as `nullAs`). */
const nullAs = (n: z.ZodNumber, value: number) => n.nullable().transform((v) => v ?? value);

/** run.json (its `format` is checked before, so that another version gets its own message). */
export const RunInfoSchema: z.ZodType<RunInfo> = z
  .object({
    format: z.literal(1),
    method: z.enum(RUN_METHODS),
    label: z.string().refine((s) => s.trim() !== '', { error: 'is empty' }),
    model: described('unknown'),
    modelSha256: z.string().optional().catch(undefined),
    data: z.string(),
    seed: z.number(),
    command: described(''),
    params: z.object({ total: count, trainable: count, base: count }),
    flops: z.object({ model: count, base: count }),
    trainFlopsPerSample: count.nullish().transform((v) => v ?? undefined),
    started: described(''),
    finished: z.string().optional().catch(undefined),
    status: z.enum(STATUSES),
    env: z
      .object({
        quadranet: described('unknown'),
        onnxruntime: described('unknown'),
        node: described('unknown'),
        cpu: described('unknown'),
        threads: optional(count, 0),
      })
      .optional()
      .transform(
        (e) =>
          e ?? {
            quadranet: 'unknown',
            onnxruntime: 'unknown',
            node: 'unknown',
            cpu: 'unknown',
            threads: 0,
          },
      ),
  })
  .transform(dropUndefined);

const accuracy = z.number().min(0).max(1);
/** A PSNR: infinite (outputs equal to the targets) is written as null. */
const psnr = z
  .number()
  .nullable()
  .optional()
  .transform((v) => (v === null ? Infinity : v));

/** One line of history.jsonl (the counters' order across lines is the reader's to check). */
export const HistoryRecordSchema: z.ZodType<HistoryRecord> = z
  .object({
    step: count,
    epoch: count,
    // A diverged run may record a non-finite loss as null; the report does not use the loss.
    loss: nullAs(z.number(), Number.NaN),
    wallSeconds: optional(count, 0),
    cpuSeconds: count,
    samples: count,
    samplesPerSecond: optional(count, 0),
    lr: optional(z.number(), 0),
    trainAccuracy: accuracy.nullish().transform((v) => v ?? undefined),
    valAccuracy: accuracy.nullish().transform((v) => v ?? undefined),
    valLoss: z
      .number()
      .nullish()
      .transform((v) => v ?? undefined),
    valMse: count.nullish().transform((v) => v ?? undefined),
    valPsnr: psnr,
  })
  .transform(dropUndefined);

const LatencySchema: z.ZodType<LatencySummary> = z
  .object({
    batchSize: z.number().min(1),
    p50Ms: count,
    p95Ms: count,
    perSampleMs: count,
    timesMs: z.array(count).optional(),
    setSizes: z.array(z.number().int().min(1)).optional(),
  })
  .transform(dropUndefined);

const RegressionSchema: z.ZodType<RegressionSummary> = z
  .object({ mse: count, rmse: count, mae: count, psnr, meanPsnr: psnr })
  .transform(dropUndefined);

/**
 * The accuracy, loss and latency of a model in eval.json: accuracy is null (NaN) on regression
 * data, which has `regression` metrics instead.
 */
const measured = {
  accuracy: accuracy.nullable(),
  loss: nullAs(z.number(), Number.NaN),
  latency: z
    .array(LatencySchema)
    .optional()
    .transform((l) => l ?? []),
  regression: RegressionSchema.nullish().transform((v) => v ?? undefined),
};
type Measured = { accuracy: number | null; regression?: RegressionSummary | undefined };
/** A null accuracy is allowed only beside regression metrics. */
const accuracyFits = (m: Measured) => m.accuracy !== null || m.regression !== undefined;
const accuracyRule = { error: 'must be a number', path: ['accuracy'] };

/** eval.json. */
export const EvalSummarySchema: z.ZodType<EvalSummary> = z
  .object({
    n: count,
    ...measured,
    perClassAccuracy: z
      .unknown()
      .optional()
      .transform((v) =>
        Array.isArray(v) ? v.filter((x): x is number => typeof x === 'number') : [],
      ),
    confusion: z
      .unknown()
      .optional()
      .transform((v) => (Array.isArray(v) ? (v as number[][]) : [])),
    base: z
      .object(measured)
      .refine(accuracyFits, accuracyRule)
      .nullish()
      .transform((b) =>
        b ? dropUndefined({ ...b, accuracy: b.accuracy ?? Number.NaN }) : undefined,
      ),
  })
  .refine(accuracyFits, accuracyRule)
  .transform((e) => dropUndefined({ ...e, accuracy: e.accuracy ?? Number.NaN }));

/** The object without its undefined-valued keys (optional fields stay absent, as written). */
function dropUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
