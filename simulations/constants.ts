/** Defaults and limits of the simulator, with units in their names. */
import type { RunSettings } from './scenario/types.js'

/** Largest fleet a scenario may ask for; the target on a 2-core machine is 250. */
export const MAX_NODES = 1_000

export const DEFAULT_RUN_SETTINGS: RunSettings = {
  startBatchSize: 5,
  sampleIntervalMs: 250,
  setupTimeoutMs: 60_000,
  stopTimeoutMs: 30_000,
  minDurationMs: 0
}

/** Backlog of unsent bytes, in time at the link's bandwidth, beyond which a link applies backpressure to its writer. */
export const MAX_LINK_BACKLOG_MS = 100

/** Largest piece a link with a bandwidth limit delivers at once: a few TCP segments' worth. */
export const LINK_SEGMENT_BYTES = 16 * 1024

/** Smallest backlog in bytes that a link accepts before asking its writer to wait, so slow links still take whole chunks. */
export const MIN_LINK_BACKLOG_BYTES = 64 * 1024

/** How often a node whose tag is known but whose image is not complete yet is checked again. */
export const HOLDING_RECHECK_MS = 250

/** Time a graceful `leave` may take before the node is stopped abruptly. */
export const LEAVE_TIMEOUT_MS = 10_000

/** Name of the report folder's metrics file and HTML report. */
export const METRICS_FILE = 'metrics.json'
export const REPORT_FILE = 'report.html'

/** Note on every report: figures depend on the machine's real clock and load. */
export const TIMING_NOTE = 'Times come from the real clock of one process running every node, so they vary a little between runs of the same seed; the topology, the choices of nodes and the order of events do not.'
