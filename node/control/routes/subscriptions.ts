/** Control routes of subscriptions, garbage collection and rollback. */
import { releaseHold, rollbackTag } from '../../agent/rollback.js'
import { parseStorageSize } from '../../agent/subscription-config.js'
import { optionalBoolean, requireString, type ControlRoute } from '../route.js'
import { withTrustWarning } from './trust-warning.js'

export const subscriptionRoutes: ControlRoute[] = [
  {
    method: 'GET',
    path: '/subscriptions',
    handle: async ({ agent }) => agent.context.subscriptions.view()
  },
  {
    method: 'POST',
    path: '/subscribe',
    handle: async ({ agent, body }) => agent.context.subscriptions.subscribe(requireString(body, 'reference'))
  },
  {
    method: 'POST',
    path: '/unsubscribe',
    handle: async ({ agent, body }) => agent.context.subscriptions.unsubscribe(requireString(body, 'reference'))
  },
  {
    method: 'POST',
    path: '/gc',
    handle: async ({ agent, body }) => {
      // The CLI sends the size as typed, so that the agent reports bad units in one place.
      const maxStorageBytes = body.maxStorage == null ? undefined : parseStorageSize(body.maxStorage, '--max-storage')
      return agent.context.subscriptions.gc.collect({ maxStorageBytes, dryRun: optionalBoolean(body, 'dryRun') })
    }
  },
  {
    method: 'POST',
    path: '/rollback',
    handle: async ({ agent, body }) => {
      const reference = requireString(body, 'reference')
      if (optionalBoolean(body, 'release') === true) {
        return releaseHold(agent.context, reference)
      }
      const result = await rollbackTag(agent.context, reference, { local: optionalBoolean(body, 'local') })
      // A fleet rollback publishes a tag record like publish does, so the
      // same trust rule decides whether other agents accept it.
      return result.scope === 'fleet' ? withTrustWarning(agent, result, 'rolled back') : result
    }
  }
]
