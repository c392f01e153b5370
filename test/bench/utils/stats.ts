/** Summaries of timing samples, and the number formats the benchmark tables use. */

/** Median, 90th percentile and extremes of a set of samples, in the samples' unit. */
export interface Summary {
  count: number
  median: number
  p90: number
  min: number
  max: number
}

/**
 * Returns the `fraction` quantile of `samples` by linear interpolation between
 * the two nearest ranks (the method of numpy's default and of R's type 7).
 */
export function quantile (samples: number[], fraction: number): number {
  if (samples.length === 0) {
    throw new RangeError('cannot take a quantile of zero samples; run at least one round')
  }
  if (!(fraction >= 0 && fraction <= 1)) {
    throw new RangeError(`quantile fraction ${fraction} is outside 0..1`)
  }

  const sorted = [...samples].sort((a, b) => a - b)
  const position = (sorted.length - 1) * fraction
  const lower = Math.floor(position)
  const upper = Math.ceil(position)
  const lowerValue = sorted[lower] as number
  const upperValue = sorted[upper] as number
  return lowerValue + (upperValue - lowerValue) * (position - lower)
}

export function summarize (samples: number[]): Summary {
  return {
    count: samples.length,
    median: quantile(samples, 0.5),
    p90: quantile(samples, 0.9),
    min: Math.min(...samples),
    max: Math.max(...samples)
  }
}

/** Formats milliseconds with precision that suits their size: 0.42 ms, 3.1 ms, 215 ms. */
export function formatMs (ms: number): string {
  if (ms < 1) {
    return `${ms.toFixed(2)} ms`
  }
  if (ms < 10) {
    return `${ms.toFixed(1)} ms`
  }
  return `${Math.round(ms)} ms`
}

/** Throughput of `sizeBytes` moved in `ms`, in MB/s (10^6 bytes per second). */
export function megabytesPerSecond (sizeBytes: number, ms: number): number {
  return sizeBytes / 1e6 / (ms / 1000)
}

export function formatMegabytesPerSecond (value: number): string {
  return value < 10 ? `${value.toFixed(1)} MB/s` : `${Math.round(value)} MB/s`
}

/** Formats a byte count in MB (10^6 bytes), the unit the memory target is stated in. */
export function formatMegabytes (bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`
}

export function formatRatio (ratio: number): string {
  return ratio < 10 ? `${ratio.toFixed(2)}x` : `${Math.round(ratio)}x`
}
