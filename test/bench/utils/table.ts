/** Rows of a benchmark result table and their Markdown rendering. */
import { formatRatio } from './stats.js'

/** One measure, side by side with its baseline. */
export interface BenchRow {
  measure: string
  /** kilomesh's figure, formatted with its unit. */
  kilomesh: string
  /** The baseline's figure, formatted with its unit, or '—' when the measure has none. */
  baseline: string
  /** kilomesh's figure divided by the baseline's; undefined when there is no baseline. */
  ratio?: number
  /** The target in words, or undefined for a row that only explains another. */
  target?: string
  met?: boolean
}

const EMPTY_CELL = '—'

function escapeCell (text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ')
}

function formatRatioCell (ratio: number | undefined): string {
  if (ratio == null || !Number.isFinite(ratio)) {
    return EMPTY_CELL
  }
  return formatRatio(ratio)
}

function formatMetCell (met: boolean | undefined): string {
  if (met == null) {
    return EMPTY_CELL
  }
  return met ? 'yes' : '**no**'
}

/** Renders rows as a Markdown table with the columns every benchmark section shares. */
export function renderTable (rows: BenchRow[]): string {
  const lines = [
    '| Measure | kilomesh | Baseline | Ratio | Target | Met |',
    '|---|---:|---:|---:|---|---|'
  ]

  for (const row of rows) {
    const cells = [
      row.measure,
      row.kilomesh,
      row.baseline,
      formatRatioCell(row.ratio),
      row.target ?? EMPTY_CELL,
      formatMetCell(row.met)
    ]
    lines.push(`| ${cells.map(escapeCell).join(' | ')} |`)
  }
  return lines.join('\n')
}

/** Returns the rows whose target was missed, for the section's summary line. */
export function missedTargets (rows: BenchRow[]): BenchRow[] {
  return rows.filter(row => row.met === false)
}
