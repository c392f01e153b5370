/**
 * The shape of `metrics.json`, written after every run. It contains the
 * scenario, the verdict, every event with the traffic totals when it
 * started, and every node with its bytes per protocol, connections and first
 * holding times. The samples behind the plots and the timeline follow.
 * docs/simulation.md describes each field.
 */
import type { AgentStats } from './runner/agent-stats.js'
import type { ExpectationStatus } from './runner/expectations.js'
import type { TimelineEntry } from './runner/timeline.js'
import type { ConnectionCounters, ProtocolCounters } from './network/traffic.js'
import type { LinkParams, Topology } from './scenario/types.js'

/** Traffic and fleet totals at one moment. */
export interface Totals {
  running: number
  /** Payload bytes all nodes sent, summed over protocols. */
  sentBytes: number
  /** Raw bytes all nodes sent: payload plus noise, yamux and multistream overhead. */
  wireSentBytes: number
  /** Connections open over all nodes, each counted at both ends. */
  connections: number
}

export interface EventRecord {
  index: number
  /** Position of the event in the file, such as `events[3]`. */
  source: string
  scheduledAtMs: number
  appliedAtMs: number
  durationMs: number
  text: string
  error?: string
  totalsBefore: Totals
  /** Payload bytes, streams and writes per protocol, summed over every node, when the event started. */
  protocolsBefore: Record<string, ProtocolCounters>
}

export interface ExpectationRecord {
  index: number
  text: string
  byMs: number
  status: ExpectationStatus
  decidedAtMs?: number
  reason?: string
}

/** When a node first resolved a tag to an image, and first held all of that image's blobs. */
export interface FirstHolding {
  ref: string
  image: string
  digest: string
  learnedAtMs?: number
  pulledAtMs?: number
}

export interface NodeRecord {
  index: number
  name: string
  peerId: string
  /** Status when the run ended: stopped (ran to the end), crashed or left. */
  status: string
  starts: number
  crashes: number
  startDurationsMs: number[]
  /** Nodes this node kept connected. */
  keeps: number[]
  sentBytes: number
  receivedBytes: number
  wireSentBytes: number
  wireReceivedBytes: number
  byProtocol: Record<string, ProtocolCounters>
  connections: ConnectionCounters
  agent: AgentStats
  firstHoldings: FirstHolding[]
}

/** One plotted line: the share of running nodes that hold `ref` = `image`. */
export interface Series {
  key: string
  ref: string
  image: string
}

export interface Sample {
  atMs: number
  running: number
  /** Per series key: running nodes that resolve the tag to the image, and those that also hold all its blobs. */
  holdings: Record<string, { learned: number, pulled: number }>
  totals: Totals
  rssBytes: number
  /** Maximum event-loop delay since the previous sample. Every node shares the loop, so high values mean late events and slow transfers. */
  loopDelayMs: number
}

export interface SimulationMetrics {
  scenario: {
    name: string
    description: string
    file: string
    seed: number
    nodes: number
    maxNodes: number
    transport: string
    topology: Topology
    link: LinkParams
  }
  run: {
    startedAt: string
    /** Time to start the initial nodes and connect the topology's links. */
    setupMs: number
    /** Time from the timeline's start to the end of the last check. */
    durationMs: number
    linksMissingAtStart: string[]
    passed: boolean
    failures: string[]
    peakRssBytes: number
    timingNote: string
  }
  expectations: ExpectationRecord[]
  events: EventRecord[]
  nodes: NodeRecord[]
  series: Series[]
  samples: Sample[]
  timeline: TimelineEntry[]
}
