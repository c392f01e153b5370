/**
 * A validated scenario, as the runner consumes it. Every field of the YAML
 * file maps to one of these types; docs/simulation.md describes each field.
 */

/** Parameters of one direction of a simulated link. */
export interface LinkParams {
  /** One-way propagation delay. */
  latencyMs: number
  /** Each chunk's delay varies uniformly within latencyMs ± jitterMs, never below zero. */
  jitterMs: number
  /** Bandwidth in kilobits (1,000 bits) per second; 0 means unlimited. */
  bandwidthKbps: number
}

/**
 * Nodes an event applies to. `all` is resolved when it is used: the running
 * nodes for actions, every node for link rules. `random` picks `count` of the
 * running nodes, from `from` when given, with the scenario's seeded generator.
 */
export type NodeSelector =
  | { kind: 'all' }
  | { kind: 'list', indices: number[] }
  | { kind: 'random', count: number, from?: number[] }

export type Topology =
  | { kind: 'full' }
  | { kind: 'line' }
  | { kind: 'ring' }
  | { kind: 'star', hub: number }
  | { kind: 'random', degree: number }
  | { kind: 'clusters', count: number, degree?: number, bridges: number }

/** A link rule: traffic both ways between a node in `from` and a node in `to` uses these parameters. */
export interface LinkRule {
  from: NodeSelector
  to: NodeSelector
  params: Partial<LinkParams>
}

export type EventAction =
  | { kind: 'subscribe', nodes: NodeSelector, ref: string }
  | { kind: 'unsubscribe', nodes: NodeSelector, ref: string }
  | { kind: 'publish', node: number, image: string, ref: string }
  | { kind: 'pull', nodes: NodeSelector, ref: string }
  | { kind: 'partition', groups: number[][] }
  | { kind: 'cut', from: NodeSelector, to: NodeSelector, oneWay: boolean }
  | { kind: 'heal', from?: NodeSelector, to?: NodeSelector }
  | { kind: 'crash', nodes: NodeSelector }
  | { kind: 'restart', nodes: NodeSelector }
  | { kind: 'leave', nodes: NodeSelector }
  | { kind: 'join', count: number, peers?: NodeSelector, subscribe: string[] }
  | { kind: 'link', rule: LinkRule }
  | { kind: 'reset', nodes: NodeSelector }

export interface ScenarioEvent {
  /** Position in the sorted timeline, from 0. */
  index: number
  /** Time after the start of the timeline. */
  atMs: number
  action: EventAction
  /** Position of the event in the file, for messages: `events[3]`, or `events[3] (flap 2 of 5)`. */
  source: string
}

/** Condition that must be true by a deadline; docs/simulation.md says when an expectation counts as met. */
export type ExpectationCheck =
  | { kind: 'all', ref: string, image: string, pulled: boolean }
  | { kind: 'each', nodes: number[], ref: string, image: string, pulled: boolean }
  | { kind: 'converged', ref: string }

export interface Expectation {
  /** Position in `expect`, from 0. */
  index: number
  byMs: number
  check: ExpectationCheck
}

export type TrustMode = 'any' | 'first-use' | 'explicit'

export interface ScenarioTrust {
  mode: TrustMode
  /** Nodes whose records every node accepts for every repository. */
  publishers: number[]
}

/** Settings of the run itself, not of the simulated fleet. */
export interface RunSettings {
  /** Nodes started at once while the fleet comes up. */
  startBatchSize: number
  /** Time between two samples of the holdings plot and two checks of the expectations. */
  sampleIntervalMs: number
  /** How long the runner waits for the topology's links to connect before the timeline starts. */
  setupTimeoutMs: number
  /** Time one node may take to stop before the run moves on without it. */
  stopTimeoutMs: number
  /** Shortest timeline: the run goes on this long even when every expectation is already decided. */
  minDurationMs: number
}

/** Agent options every simulated node starts with; unset ones keep the agent's defaults. */
export interface AgentSettings {
  /** Run the Kademlia DHT. */
  dht?: boolean
  /** Connections the agent tops up to by dialling known peers. */
  minConnections?: number
}

export interface Scenario {
  name: string
  description: string
  /** Absolute path of the scenario file, or `<inline>`. */
  file: string
  seed: number
  nodes: number
  transport: 'memory' | 'tcp'
  topology: Topology
  link: LinkParams
  links: LinkRule[]
  /** Image name → source string for `publishImage`, with its path made absolute. */
  images: Record<string, string>
  trust: ScenarioTrust
  agent: AgentSettings
  events: ScenarioEvent[]
  expectations: Expectation[]
  run: RunSettings
  /** Node count after every join, for reports. */
  maxNodes: number
}
