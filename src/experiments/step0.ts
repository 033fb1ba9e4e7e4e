/**
 * Accuracies before any training step (the init ablation's starting point, the pretrained
 * network's validation reading for the headline study), and how a cached run gets them.
 */

import { quadratize } from '../passes/quadratize.js';
import { reinitialize } from '../passes/reinit.js';
import { classificationMetrics } from '../workflow/evaluate.js';
import type { ModelSource } from '../workflow/model-source.js';
import { imageInputShape } from '../workflow/model-source.js';
import { loadRunData } from '../workflow/run.js';
import type { RunSpec } from './plan.js';
import type { ExecuteOptions, RunOutcome } from './runner.js';

/** Accuracies (and test loss) before any training step. */
const pct = (x: number | undefined) => (x === undefined ? '—' : `${(x * 100).toFixed(2)}%`);

type Step0 = {
  step0TestAccuracy?: number;
  step0TestLoss?: number;
  step0CleanTestAccuracy?: number;
  step0ValAccuracy?: number;
};

/** Which step-0 accuracies a run needs: test (init ablation), validation (adaptation in (a)). */
function step0Needs(spec: RunSpec): { test: boolean; val: boolean } {
  return {
    test: spec.study === 'ablation' && spec.ablation?.name === 'init',
    val: spec.study === 't2a' && spec.method === 'quadratic-adapt',
  };
}

/**
 * Accuracy of the model before any training step on the run's own validation and test split:
 * the quadratized pretrained network (U = 0: exactly the pretrained function), or with every
 * quadratic factor random for the random-init ablation.
 */
export async function step0Accuracies(
  spec: RunSpec,
  source: ModelSource,
  o: ExecuteOptions,
): Promise<Step0> {
  const need = step0Needs(spec);
  if (!need.test && !need.val) return {};
  const data = await loadRunData(spec.data, imageInputShape(source.graph, source.name), {
    limit: spec.limit,
    testLimit: spec.testLimit,
    valFraction: spec.valFraction,
    seed: spec.seed,
    modelName: source.name,
  });
  let g = quadratize(source.graph, { seed: spec.seed, ...spec.quad }).graph;
  if (spec.init === 'random') g = reinitialize(g, { seed: spec.seed, scope: 'quadratic-random' });
  const session = { threads: o.config.threads };
  const r: Step0 = {};
  if (need.test) {
    const m = await classificationMetrics(g, data.test, session);
    r.step0TestAccuracy = m.accuracy;
    r.step0TestLoss = m.loss;
    // The same model on the clean test split of the pretraining data, where the pretrained
    // function is good and a perturbation of it can show.
    const clean = spec.data.replace(/:shift=[^:]*$/, '');
    if (clean !== spec.data) {
      const cleanData = await loadRunData(clean, imageInputShape(source.graph, source.name), {
        limit: 1,
        testLimit: spec.testLimit,
        valFraction: 0,
        seed: spec.seed,
        modelName: source.name,
      });
      r.step0CleanTestAccuracy = (await classificationMetrics(g, cleanData.test, session)).accuracy;
    }
  }
  if (need.val && data.val)
    r.step0ValAccuracy = (await classificationMetrics(g, data.val, session)).accuracy;
  o.log(
    `    step 0 (before training): ${need.val ? `val ${pct(r.step0ValAccuracy)}` : ''}${need.test ? `test ${pct(r.step0TestAccuracy)}, loss ${r.step0TestLoss?.toFixed(4)}, clean test ${pct(r.step0CleanTestAccuracy)}` : ''}`,
  );
  return r;
}

/** Fills in missing step-0 accuracies of a reused outcome. */
export async function addStep0(
  outcome: RunOutcome,
  source: ModelSource,
  o: ExecuteOptions,
): Promise<void> {
  const need = step0Needs(outcome.spec);
  if (
    (need.test &&
      (outcome.step0TestAccuracy === undefined ||
        outcome.step0TestLoss === undefined ||
        (outcome.step0CleanTestAccuracy === undefined && /:shift=/.test(outcome.spec.data)))) ||
    (need.val && outcome.step0ValAccuracy === undefined)
  ) {
    Object.assign(outcome, await step0Accuracies(outcome.spec, source, o));
  }
}
