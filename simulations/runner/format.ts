/** Text forms the timeline, the metrics and the report share. */
import type { EventAction, ExpectationCheck, LinkParams, NodeSelector } from '../scenario/types.js'

/** Formats node indices compactly: `0-5, 7, 9-10`. */
export function formatNodes (indices: number[]): string {
  const sorted = [...new Set(indices)].sort((a, b) => a - b)
  const parts: string[] = []
  for (let i = 0; i < sorted.length;) {
    let j = i
    while (j + 1 < sorted.length && (sorted[j + 1] as number) === (sorted[j] as number) + 1) {
      j++
    }
    parts.push(j > i ? `${sorted[i]}-${sorted[j]}` : `${sorted[i]}`)
    i = j + 1
  }
  return parts.join(', ')
}

export function formatSelector (selector: NodeSelector | undefined): string {
  if (selector == null || selector.kind === 'all') {
    return 'all nodes'
  }
  if (selector.kind === 'random') {
    return `${selector.count} random node(s)${selector.from != null ? ` of ${formatNodes(selector.from)}` : ''}`
  }
  return `node${selector.indices.length > 1 ? 's' : ''} ${formatNodes(selector.indices)}`
}

/** Formats seconds with millisecond precision, right-aligned for the timeline: `  12.345s`. */
export function formatSeconds (ms: number): string {
  return `${(ms / 1000).toFixed(3)}s`.padStart(9)
}

export function formatLink (params: Partial<LinkParams>): string {
  const parts: string[] = []
  if (params.latencyMs != null) {
    parts.push(`latency ${params.latencyMs} ms`)
  }
  if (params.jitterMs != null) {
    parts.push(`jitter ${params.jitterMs} ms`)
  }
  if (params.bandwidthKbps != null) {
    parts.push(params.bandwidthKbps === 0 ? 'unlimited bandwidth' : `${params.bandwidthKbps} kbit/s`)
  }
  return parts.join(', ')
}

/** Describes an action as written in the scenario, before it is resolved against the running fleet. */
export function describeAction (action: EventAction): string {
  switch (action.kind) {
    case 'subscribe':
    case 'unsubscribe':
      return `${action.kind} ${formatSelector(action.nodes)} ${action.kind === 'subscribe' ? 'to' : 'from'} ${action.ref}`
    case 'publish':
      return `publish ${action.image} as ${action.ref} on node ${action.node}`
    case 'pull':
      return `pull ${action.ref} on ${formatSelector(action.nodes)}`
    case 'partition':
      return `partition into ${action.groups.map(group => `[${formatNodes(group)}]`).join(' | ')}`
    case 'cut':
      return `cut ${formatSelector(action.from)} ${action.oneWay ? '->' : '<->'} ${formatSelector(action.to)}`
    case 'heal':
      return action.from == null ? 'heal all cuts' : `heal ${formatSelector(action.from)} <-> ${formatSelector(action.to)}`
    case 'crash':
    case 'restart':
    case 'leave':
    case 'reset':
      return `${action.kind} ${formatSelector(action.nodes)}`
    case 'join':
      return `join ${action.count} node(s)${action.subscribe.length > 0 ? ` subscribed to ${action.subscribe.join(', ')}` : ''}`
    case 'link':
      return `set ${formatLink(action.rule.params)} between ${formatSelector(action.rule.from)} and ${formatSelector(action.rule.to)}`
  }
}

export function describeCheck (check: ExpectationCheck): string {
  switch (check.kind) {
    case 'all':
      return `every running node ${check.pulled ? 'holds' : 'resolves'} ${check.ref} = ${check.image}`
    case 'each':
      return `node${check.nodes.length > 1 ? 's' : ''} ${formatNodes(check.nodes)} ${check.pulled ? 'hold' : 'resolve'} ${check.ref} = ${check.image}`
    case 'converged':
      return `every running node resolves ${check.ref} to the same image`
  }
}
