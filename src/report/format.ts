/** Number formatting shared by the HTML, the markdown and the verdict sentences. */

/** A fraction in [0, 1] as a percentage: 0.9712 → "97.1%". */
export function fmtAcc(frac: number | null, digits = 1): string {
  return frac === null ? '—' : `${(frac * 100).toFixed(digits)}%`;
}

/** A signed number with a real minus sign: 4.25 → "+4.3", −1 → "−1.0". */
export function fmtSigned(x: number | null, digits = 1): string {
  if (x === null) return '—';
  const s = Math.abs(x).toFixed(digits);
  if (Number(s) === 0) return `±${s}`;
  return `${x < 0 ? '−' : '+'}${s}`;
}

/**
 * A percentage already in percent units, with precision that suits its size:
 * 250 → "250%", 94.25 → "94.3%", 6.04 → "6.0%", 0.456 → "0.46%".
 */
export function fmtShare(p: number | null): string {
  if (p === null) return '—';
  const a = Math.abs(p);
  if (a >= 100) return `${p.toFixed(0)}%`;
  if (a >= 1) return `${p.toFixed(1)}%`;
  if (a === 0) return '0%';
  return `${Number(p.toPrecision(2))}%`;
}

/** A signed percentage (overheads): 3.21 → "+3.2%". */
export function fmtSignedShare(p: number | null): string {
  if (p === null) return '—';
  const s = fmtShare(Math.abs(p));
  return s === '0%' ? s : `${p < 0 ? '−' : '+'}${s}`;
}

/** Seconds in the most readable unit: "42.0 s", "3.5 min", "1.25 h". */
export function fmtDuration(s: number | null): string {
  if (s === null) return '—';
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(2)} h`;
}

/** A count with thousands separators: 1234567 → "1,234,567". */
export function fmtInt(n: number | null): string {
  return n === null ? '—' : Math.round(n).toLocaleString('en-US');
}

/** A large count compactly: 1234567 → "1.23 M". */
export function fmtCompact(n: number | null): string {
  if (n === null) return '—';
  const a = Math.abs(n);
  if (a >= 1e9) return `${(n / 1e9).toFixed(2)} G`;
  if (a >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (a >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return String(Math.round(n));
}

/** US dollars; cents from one dollar up, else two significant digits: "$1.25", "$0.024", "$0.0040". */
export function fmtUsd(x: number | null): string {
  if (x === null) return '—';
  if (x === 0) return '$0';
  if (Math.abs(x) >= 1) return `$${x.toFixed(2)}`;
  return `$${x.toPrecision(2)}`;
}

/** Milliseconds: "123 ms", "12.30 ms", "0.10 ms", "0.045 ms". */
export function fmtMs(ms: number | null): string {
  if (ms === null) return '—';
  if (ms >= 100) return `${ms.toFixed(0)} ms`;
  if (ms >= 1) return `${ms.toFixed(2)} ms`;
  return `${ms.toPrecision(2)} ms`;
}

/** A ratio: 1.184 → "1.18×". */
export function fmtRatio(r: number | null): string {
  return r === null ? '—' : `${r.toFixed(2)}×`;
}

/** CPU-seconds with the unit and a readable duration: "123.4 CPU-s (2.1 min)". */
export function fmtCpu(s: number | null): string {
  if (s === null) return '—';
  return s < 60 ? `${s.toFixed(1)} CPU-s` : `${s.toFixed(0)} CPU-s (${fmtDuration(s)})`;
}
