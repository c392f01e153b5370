/**
 * Small SVG chart builders for the HTML report: a line chart with vertical
 * event markers, and a stacked bar chart. They emit plain SVG text with no
 * scripts, so the report opens from disk in any browser.
 */

/** Colours for series and protocols, picked for contrast on white. */
export const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22']

const WIDTH = 960
const MARGIN = { top: 20, right: 20, bottom: 44, left: 84 }

export function escapeXml (text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

/** Rounds `max` up to a tick step of 1, 2 or 5 times a power of ten, and returns about five ticks. */
export function niceTicks (max: number, count = 5): number[] {
  if (!(max > 0)) {
    return [0, 1]
  }
  const raw = max / count
  const power = 10 ** Math.floor(Math.log10(raw))
  const step = [1, 2, 5, 10].map(factor => factor * power).find(candidate => candidate >= raw) ?? raw
  const ticks: number[] = []
  for (let value = 0; value <= max + step * 0.999; value += step) {
    ticks.push(Number(value.toPrecision(12)))
  }
  return ticks
}

/** Ticks for a byte axis: steps of 1, 2 or 5 in the binary unit that fits `max`, so labels read 20 KiB, 40 KiB. */
export function byteTicks (max: number): number[] {
  let unit = 1
  while (max / unit >= 1024 && unit < 1024 ** 3) {
    unit *= 1024
  }
  return niceTicks(max / unit).map(tick => tick * unit)
}

/** Formats bytes with binary units for axis labels. */
export function formatBytesShort (bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB']
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`
}

export interface LineSeries {
  label: string
  color: string
  dashed?: boolean
  points: Array<{ x: number, y: number }>
}

export interface Marker {
  x: number
  label: string
}

export interface LineChartInit {
  height: number
  xMax: number
  yMax: number
  xLabel: string
  yLabel: string
  formatX: (value: number) => string
  formatY: (value: number) => string
  /** Tick values for the y axis; niceTicks when omitted. */
  yTicks?: (max: number) => number[]
  series: LineSeries[]
  markers: Marker[]
}

/** Draws a line chart with axes, gridlines, vertical event markers and a legend below. */
export function lineChart (init: LineChartInit): string {
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right
  const plotHeight = init.height - MARGIN.top - MARGIN.bottom
  const xTicks = niceTicks(init.xMax, 10)
  const yTicks = (init.yTicks ?? niceTicks)(init.yMax)
  const xEnd = xTicks[xTicks.length - 1] as number
  const yEnd = yTicks[yTicks.length - 1] as number
  const x = (value: number): number => MARGIN.left + value / xEnd * plotWidth
  const y = (value: number): number => MARGIN.top + plotHeight - value / yEnd * plotHeight

  const parts: string[] = []
  for (const tick of yTicks) {
    parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotWidth}" y1="${y(tick)}" y2="${y(tick)}" stroke="#e5e5e5"/>`)
    parts.push(`<text x="${MARGIN.left - 6}" y="${y(tick) + 4}" text-anchor="end">${escapeXml(init.formatY(tick))}</text>`)
  }
  for (const tick of xTicks) {
    parts.push(`<text x="${x(tick)}" y="${MARGIN.top + plotHeight + 16}" text-anchor="middle">${escapeXml(init.formatX(tick))}</text>`)
  }
  for (const marker of init.markers) {
    parts.push(`<line x1="${x(marker.x)}" x2="${x(marker.x)}" y1="${MARGIN.top}" y2="${MARGIN.top + plotHeight}" stroke="#999" stroke-dasharray="3,3"><title>${escapeXml(marker.label)}</title></line>`)
    parts.push(`<text x="${x(marker.x) + 2}" y="${MARGIN.top + 10}" fill="#666" font-size="10">${escapeXml(marker.label.split(' ')[0] ?? '')}</text>`)
  }
  for (const series of init.series) {
    if (series.points.length === 0) {
      continue
    }
    const path = series.points.map((point, i) => `${i === 0 ? 'M' : 'L'}${x(point.x).toFixed(1)},${y(point.y).toFixed(1)}`).join(' ')
    parts.push(`<path d="${path}" fill="none" stroke="${series.color}" stroke-width="2"${series.dashed === true ? ' stroke-dasharray="6,4"' : ''}><title>${escapeXml(series.label)}</title></path>`)
  }
  parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left}" y1="${MARGIN.top}" y2="${MARGIN.top + plotHeight}" stroke="#333"/>`)
  parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotWidth}" y1="${MARGIN.top + plotHeight}" y2="${MARGIN.top + plotHeight}" stroke="#333"/>`)
  parts.push(`<text x="${MARGIN.left + plotWidth / 2}" y="${init.height - 6}" text-anchor="middle">${escapeXml(init.xLabel)}</text>`)
  parts.push(`<text transform="translate(14 ${MARGIN.top + plotHeight / 2}) rotate(-90)" text-anchor="middle">${escapeXml(init.yLabel)}</text>`)

  return svg(init.height, parts) + legend(init.series.map(series => ({ label: series.label, color: series.color, dashed: series.dashed })))
}

export interface BarStack {
  label: string
  /** Value of each segment, in the order of `segments`. */
  values: number[]
}

/** Draws a stacked bar chart: one bar per item, one coloured segment per category. */
export function stackedBars (init: { height: number, yLabel: string, formatY: (value: number) => string, yTicks?: (max: number) => number[], segments: string[], bars: BarStack[] }): string {
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right
  const plotHeight = init.height - MARGIN.top - MARGIN.bottom
  const yTicks = (init.yTicks ?? niceTicks)(Math.max(1, ...init.bars.map(bar => bar.values.reduce((sum, value) => sum + value, 0))))
  const yEnd = yTicks[yTicks.length - 1] as number
  const y = (value: number): number => MARGIN.top + plotHeight - value / yEnd * plotHeight
  const slot = plotWidth / Math.max(1, init.bars.length)
  const barWidth = Math.max(1, slot * 0.8)
  const labelEvery = Math.ceil(init.bars.length / 40)

  const parts: string[] = []
  for (const tick of yTicks) {
    parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotWidth}" y1="${y(tick)}" y2="${y(tick)}" stroke="#e5e5e5"/>`)
    parts.push(`<text x="${MARGIN.left - 6}" y="${y(tick) + 4}" text-anchor="end">${escapeXml(init.formatY(tick))}</text>`)
  }
  init.bars.forEach((bar, i) => {
    const left = MARGIN.left + i * slot + (slot - barWidth) / 2
    let base = 0
    bar.values.forEach((value, segment) => {
      if (value <= 0) {
        return
      }
      const top = y(base + value)
      parts.push(`<rect x="${left.toFixed(1)}" y="${top.toFixed(1)}" width="${barWidth.toFixed(1)}" height="${(y(base) - top).toFixed(1)}" fill="${PALETTE[segment % PALETTE.length] ?? '#000'}"><title>${escapeXml(`${bar.label}: ${init.segments[segment] ?? ''} ${init.formatY(value)}`)}</title></rect>`)
      base += value
    })
    if (i % labelEvery === 0) {
      parts.push(`<text x="${(left + barWidth / 2).toFixed(1)}" y="${MARGIN.top + plotHeight + 14}" text-anchor="middle" font-size="10">${escapeXml(bar.label)}</text>`)
    }
  })
  parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotWidth}" y1="${MARGIN.top + plotHeight}" y2="${MARGIN.top + plotHeight}" stroke="#333"/>`)
  parts.push(`<text x="${MARGIN.left + plotWidth / 2}" y="${init.height - 6}" text-anchor="middle">node</text>`)
  parts.push(`<text transform="translate(14 ${MARGIN.top + plotHeight / 2}) rotate(-90)" text-anchor="middle">${escapeXml(init.yLabel)}</text>`)

  return svg(init.height, parts) + legend(init.segments.map((label, i) => ({ label, color: PALETTE[i % PALETTE.length] ?? '#000' })))
}

function svg (height: number, parts: string[]): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${WIDTH} ${height}" width="${WIDTH}" height="${height}" font-family="sans-serif" font-size="12">\n${parts.join('\n')}\n</svg>`
}

function legend (items: Array<{ label: string, color: string, dashed?: boolean }>): string {
  const entries = items.map(item => `<span class="legend-item"><svg width="28" height="10"><line x1="0" x2="28" y1="5" y2="5" stroke="${item.color}" stroke-width="${item.dashed === true ? 2 : 6}"${item.dashed === true ? ' stroke-dasharray="6,4"' : ''}/></svg> ${escapeXml(item.label)}</span>`)
  return `<div class="legend">${entries.join('\n')}</div>`
}
