/** Learning-rate schedule: linear warm-up, then cosine decay. */
export interface ScheduleOptions {
  /** Steps of linear warm-up from 0 to the base rate (default 0). */
  warmupSteps?: number;
  /** Total steps; cosine decay runs from the end of warm-up to here (default: constant rate). */
  totalSteps?: number;
  /** Final rate as a fraction of the base rate (default 0). */
  minFactor?: number;
}

/** The factor (0..1] multiplying every group's base learning rate at `step` (0-based). */
export function lrFactor(step: number, s: ScheduleOptions = {}): number {
  const warm = s.warmupSteps ?? 0;
  if (step < warm) return (step + 1) / (warm + 1);
  if (!s.totalSteps || s.totalSteps <= warm) return 1;
  const t = Math.min(1, (step - warm) / (s.totalSteps - warm));
  const min = s.minFactor ?? 0;
  return min + (1 - min) * 0.5 * (1 + Math.cos(Math.PI * t));
}

/**
 * The schedule every quadranet run trains with unless told otherwise (CLI, experiments and the
 * browser alike): warm-up over a tenth of the steps, at most 50, then cosine decay to
 * `minFactor` (0.05; 1 for a constant rate).
 */
export function defaultSchedule(
  totalSteps: number,
  o: { warmupSteps?: number; constant?: boolean } = {},
): ScheduleOptions {
  return {
    warmupSteps: o.warmupSteps ?? Math.min(50, Math.floor(totalSteps / 10)),
    totalSteps,
    minFactor: o.constant ? 1 : 0.05,
  };
}
