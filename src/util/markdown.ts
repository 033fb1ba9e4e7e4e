/** Markdown tables, one helper for the report and the experiments pages. */

/**
 * A markdown table. `align` per column (`l` / `r`); without it every column gets a plain `---`
 * rule. Cells are written as given (escape them first where they hold user text).
 */
export function mdTable(head: string[], rows: string[][], align?: Array<'l' | 'r'>): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  const rule = align ? align.map((a) => (a === 'r' ? '---:' : ':---')) : head.map(() => '---');
  return [line(head), line(rule), ...rows.map(line)].join('\n');
}
