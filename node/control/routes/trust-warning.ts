/** The warning of commands that publish a tag record other agents may reject. */
import { logger } from '@libp2p/logger'
import { rejectedElsewhere } from '../../catalog/trust.js'
import type { Agent } from '../../agent/agent.js'

const log = logger('kilomesh:control')

/**
 * Returns `result` with a `warning` when other agents are expected to reject
 * the tag record this agent just published for it, such as for a repository
 * that another publisher owns, and logs the warning. `action` names what the
 * command did, for the log line.
 */
export function withTrustWarning<T extends { repository: string, tag: string }> (agent: Agent, result: T, action: string): T & { warning?: string } {
  const warning = rejectedElsewhere(agent.context.catalog.trust, agent.peerId, result.repository)
  if (warning == null) {
    return result
  }

  log('%s %s:%s, but %s', action, result.repository, result.tag, warning)
  return { ...result, warning }
}
