/**
 * Counters the agent keeps about its own work (blobs fetched and served,
 * gossip records received, DHT provides), summed over every start of a
 * node, because each restart begins with fresh counters.
 */
import type { Agent } from '../../node/agent/agent.js'

/** Counter groups, each a map of counter names to values. */
export type AgentStats = Record<string, Record<string, number>>

/** Reads the counters of a running agent; groups a build of the agent lacks are left out. */
export function readAgentStats (agent: Agent): AgentStats {
  const context = agent.context
  const groups: Record<string, object | undefined> = {
    fetch: context.fetcher?.stats,
    serve: context.blobServer?.stats,
    gossip: context.announcer?.stats,
    providers: context.providers?.stats
  }

  const stats: AgentStats = {}
  for (const [group, counters] of Object.entries(groups)) {
    if (counters == null) {
      continue
    }
    stats[group] = {}
    for (const [name, value] of Object.entries(counters)) {
      if (typeof value === 'number') {
        stats[group][name] = value
      }
    }
  }
  return stats
}

/** Returns the sum of two sets of counters. */
export function addAgentStats (a: AgentStats, b: AgentStats): AgentStats {
  const sum: AgentStats = {}
  for (const source of [a, b]) {
    for (const [group, counters] of Object.entries(source)) {
      sum[group] ??= {}
      for (const [name, value] of Object.entries(counters)) {
        sum[group][name] = (sum[group][name] ?? 0) + value
      }
    }
  }
  return sum
}
