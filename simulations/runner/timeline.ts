/**
 * The run's timeline: events as they are applied, the moments nodes first
 * learn a tag or complete its image, notes and expectation results. Lines
 * are printed as they happen. Changes of many nodes that arrive between two
 * flushes are merged into one line per tag, image and kind, so a rollout to
 * a hundred nodes reads as a few lines rather than a hundred.
 */
import { formatNodes, formatSeconds } from './format.js'
import { imageLabel, type ImageInfo } from './images.js'
import type { HoldingChange } from './holdings.js'

export type TimelineKind = 'setup' | 'event' | 'learned' | 'pulled' | 'note' | 'expectation' | 'error'

export interface TimelineEntry {
  /** Time after the timeline's start; negative during setup. */
  atMs: number
  kind: TimelineKind
  text: string
  /** Nodes the entry is about, for learned and pulled entries. */
  nodes?: number[]
}

export class Timeline {
  readonly entries: TimelineEntry[] = []
  private pending: HoldingChange[] = []

  /**
   * @param startMs - The timeline's zero, as `performance.now()`.
   * @param print - Receives each line; the CLI passes console.log, or nothing with --json.
   */
  constructor (private startMs: number, private readonly print: (line: string) => void, private readonly images: Map<string, ImageInfo>) {}

  /** Moves the zero to now: setup entries before it get negative times. */
  restart (startMs: number): void {
    for (const entry of this.entries) {
      entry.atMs -= startMs - this.startMs
    }
    this.startMs = startMs
  }

  now (): number {
    return performance.now() - this.startMs
  }

  /** Converts a `performance.now()` time to time after the timeline's start. */
  since (performanceMs: number): number {
    return performanceMs - this.startMs
  }

  add (kind: TimelineKind, text: string, atMs = this.now()): TimelineEntry {
    const entry: TimelineEntry = { atMs, kind, text }
    this.entries.push(entry)
    this.print(`${formatSeconds(atMs)}  ${text}`)
    return entry
  }

  /** Queues a holding change; only first times are shown. */
  holding (change: HoldingChange): void {
    if (change.first) {
      this.pending.push(change)
    }
  }

  /** Prints the queued holding changes, one line per tag, image and kind; `countHolding` adds "N of M nodes" to each. */
  flush (countHolding: (ref: string, digest: string, kind: HoldingChange['kind']) => string): void {
    const groups = new Map<string, HoldingChange[]>()
    for (const change of this.pending) {
      const key = `${change.kind} ${change.ref} ${change.digest}`
      groups.set(key, [...(groups.get(key) ?? []), change])
    }
    this.pending = []

    for (const changes of groups.values()) {
      const first = changes[0] as HoldingChange
      const nodes = changes.map(change => change.node)
      const verb = first.kind === 'learned' ? 'learned' : 'pulled'
      const label = imageLabel(this.images, first.digest)
      const text = `node${nodes.length > 1 ? 's' : ''} ${formatNodes(nodes)} ${verb} ${first.ref} = ${label} (${countHolding(first.ref, first.digest, first.kind)})`
      const entry = this.add(first.kind, text, Math.min(...changes.map(change => change.atMs - this.startMs)))
      entry.nodes = nodes
    }
  }
}
