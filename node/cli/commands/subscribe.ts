/**
 * `kilomesh subscribe`, `unsubscribe` and `subscriptions`. While no agent
 * runs, subscribe and unsubscribe edit config.json directly, so a device can
 * be set up before its agent first starts.
 */
import { AgentNotRunningError } from '../../config/errors.js'
import { dataDirPaths, resolveDataDir } from '../../config/paths.js'
import { ControlClient } from '../../control/client.js'
import { COMMON_HELP, printTable, shortDigest, type Command } from '../command.js'
import type * as SubscriptionConfig from '../../agent/subscription-config.js'
import type { SubscribedTagView, SubscriptionView } from '../../agent/subscription-views.js'

/** Connects to the agent, or returns undefined when none runs for `dir`. */
/** Loads the config helpers on use, so that listing commands stay free of them. */
async function subscriptionConfig (): Promise<typeof SubscriptionConfig & { loadConfig: typeof import('../../config/config.js').loadConfig }> {
  const [helpers, config] = await Promise.all([import('../../agent/subscription-config.js'), import('../../config/config.js')])
  return { ...helpers, loadConfig: config.loadConfig }
}

async function connectIfRunning (dir: string): Promise<ControlClient | undefined> {
  try {
    return await ControlClient.connect(dir)
  } catch (err) {
    if (err instanceof AgentNotRunningError) {
      return undefined
    }
    throw err
  }
}

export const subscribeCommand: Command = {
  name: 'subscribe',
  summary: 'pull every new version of a tag, or of every tag of a repository, automatically',
  help: `Usage: kilomesh subscribe REPOSITORY[:TAG] [--dir DIR] [--json]

Stores the subscription in config.json. The agent then pulls each new
version of the tag for this machine's platform as soon as it learns of it,
retrying until a source is reachable, and keeps the current and the previous
version pinned so that "kilomesh rollback" works offline. REPOSITORY alone
subscribes to every tag of the repository. While no agent runs, only
config.json changes and the agent pulls when it starts.

Options:
${COMMON_HELP}`,
  options: {},
  positionals: [1, 1],
  async run (values, [reference]) {
    const config = await subscriptionConfig()
    const dir = resolveDataDir(values.dir)
    const subscription = config.parseSubscription(reference ?? '')
    const client = await connectIfRunning(dir)

    const result = client != null
      ? await client.post<{ subscription: string, added: boolean }>('/subscribe', { reference })
      : { subscription: config.formatSubscription(subscription), added: await config.addSubscriptionToConfig(dataDirPaths(dir).config, subscription) }

    // A tag and its whole repository may both be subscribed, and each stays
    // when the other is removed. The output names the overlap, so neither looks redundant.
    const path = dataDirPaths(dir).config
    const others = config.readSubscriptions(await config.loadConfig(path), path).filter(other => config.formatSubscription(other) !== result.subscription && other.repository === subscription.repository)
    const coveredBy = subscription.tag == null ? undefined : others.find(other => other.tag == null)
    const covers = subscription.tag == null ? others.map(config.formatSubscription) : []

    if (values.json === true) {
      const view: Record<string, unknown> = { ...result, agentRunning: client != null }
      if (coveredBy != null) {
        view.coveredBy = config.formatSubscription(coveredBy)
      }
      if (covers.length > 0) {
        view.covers = covers
      }
      console.log(JSON.stringify(view, null, 2))
      return 0
    }
    if (!result.added) {
      console.log(`already subscribed to ${result.subscription}`)
    } else {
      console.log(`subscribed to ${result.subscription}${client != null ? '' : ` in ${path}; the agent pulls it when it starts`}`)
    }
    if (coveredBy != null) {
      console.log(`the subscription to every tag of ${coveredBy.repository} pulls it too; this one keeps it after "kilomesh unsubscribe ${coveredBy.repository}"`)
    }
    if (covers.length > 0) {
      const verb = covers.length === 1 ? 'stays' : 'stay'
      console.log(`it also covers ${covers.join(', ')}, which ${verb} subscribed on their own after "kilomesh unsubscribe ${subscription.repository}"`)
    }
    return 0
  }
}

export const unsubscribeCommand: Command = {
  name: 'unsubscribe',
  summary: 'stop pulling new versions of a tag or repository',
  help: `Usage: kilomesh unsubscribe REPOSITORY[:TAG] [--dir DIR] [--json]

Removes the subscription from config.json, stops its pulls and releases the
pins of its tags, so garbage collection may evict them under the storage
quota. Give the subscription exactly as "kilomesh subscriptions" lists it.

Options:
${COMMON_HELP}`,
  options: {},
  positionals: [1, 1],
  async run (values, [reference]) {
    const config = await subscriptionConfig()
    const dir = resolveDataDir(values.dir)
    const subscription = config.parseSubscription(reference ?? '')
    const client = await connectIfRunning(dir)

    let result: { subscription: string, removed: boolean }
    if (client != null) {
      result = await client.post('/unsubscribe', { reference })
    } else {
      const path = dataDirPaths(dir).config
      const name = config.formatSubscription(subscription)
      if (!await config.removeSubscriptionFromConfig(path, subscription)) {
        throw config.notSubscribedError(name, config.readSubscriptions(await config.loadConfig(path), path))
      }
      result = { subscription: name, removed: true }
    }

    console.log(values.json === true ? JSON.stringify(result, null, 2) : `unsubscribed from ${result.subscription}`)
    return 0
  }
}

/** Formats an ISO 8601 time from the agent with its distance from now, such as "2024-05-01T10:00:00Z (42 s ago)". */
function describeTime (iso: string): string {
  const deltaSeconds = Math.round((Date.parse(iso) - Date.now()) / 1000)
  const time = iso.replace(/\.\d+Z$/, 'Z')
  return deltaSeconds >= 0 ? `${time} (in ${deltaSeconds} s)` : `${time} (${-deltaSeconds} s ago)`
}

/**
 * Describes a pull that no peer in reach sends bytes for: since when, the
 * attempts so far, the next one and the last error.
 */
function describeSourceWait (pull: SubscribedTagView['pull']): string {
  const attempt = pull.state === 'pulling'
    ? `attempt ${pull.attempts + 1} is looking for peers that have it`
    : pull.nextAttemptAt != null ? `next attempt at ${describeTime(pull.nextAttemptAt)}` : 'next attempt when a pull slot is free'
  const error = pull.error == null ? '' : `; last error: ${pull.error}`
  return `waiting for a source of ${pull.digest == null ? 'the new version' : shortDigest(pull.digest)} since ${describeTime(pull.waitingSince ?? '')}: ${pull.attempts} failed attempt(s), ${attempt}${error}`
}

/** Describes what the agent is doing for one subscribed tag, in a few words. */
function describeState (view: SubscribedTagView): string {
  const { pull } = view
  const digest = shortDigest(pull.digest ?? '')
  if (pull.waitingForSource === true && pull.waitingSince != null && pull.state !== 'failed') {
    return describeSourceWait(pull)
  }

  switch (pull.state) {
    case 'pulling':
      return `pulling ${digest}`
    case 'queued':
      return `waiting to pull ${digest}`
    case 'retrying':
      return `retrying ${digest} in ${Math.ceil((pull.retryInMs ?? 0) / 1000)} s after ${pull.attempts} failed attempt(s): ${pull.error ?? 'unknown error'}`
    case 'failed':
      return `cannot pull ${digest}: ${pull.error ?? 'unknown error'}`
    default:
      break
  }

  if (view.heldAt != null) {
    return `held at ${shortDigest(view.heldAt)} by a local rollback`
  }
  if (view.latest == null) {
    return view.current == null ? 'no version published yet' : 'tag deleted; the last version stays'
  }
  return view.current === view.latest ? 'up to date' : 'not pulled yet'
}

export const subscriptionsCommand: Command = {
  name: 'subscriptions',
  summary: 'list subscriptions and the state of each subscribed tag',
  help: `Usage: kilomesh subscriptions [--dir DIR] [--json]

Lists each subscription with, per tag, the newest published version, the
current and previous versions pinned on this device, and what the agent is
doing about it. When no peer in reach sends the new version, the state says
that the agent waits for a source, since when, how many attempts failed, when
the next one starts and the last error; the agent keeps retrying with capped
backoff, and at once when a peer connects. While no agent runs, lists the
subscriptions of config.json.

Options:
${COMMON_HELP}`,
  options: {},
  positionals: [0, 0],
  async run (values) {
    const config = await subscriptionConfig()
    const dir = resolveDataDir(values.dir)
    const client = await connectIfRunning(dir)
    if (client == null) {
      const path = dataDirPaths(dir).config
      const names = config.readSubscriptions(await config.loadConfig(path), path).map(config.formatSubscription)
      if (values.json === true) {
        console.log(JSON.stringify(names.map(subscription => ({ subscription, tags: [] })), null, 2))
      } else {
        console.log(names.length === 0 ? 'no subscriptions' : `${names.join('\n')}\n(no agent is running, so the state of each tag is unknown)`)
      }
      return 0
    }

    const views = await client.get<SubscriptionView[]>('/subscriptions')
    if (values.json === true) {
      console.log(JSON.stringify(views, null, 2))
      return 0
    }
    if (views.length === 0) {
      console.log('no subscriptions; add one with "kilomesh subscribe REPOSITORY[:TAG]"')
      return 0
    }

    const rows = views.flatMap(view => view.tags.length === 0
      ? [[view.subscription, '-', '-', '-', 'no tag published yet']]
      : view.tags.map(tag => [view.subscription, tag.tag, tag.current == null ? '-' : shortDigest(tag.current), tag.previous == null ? '-' : shortDigest(tag.previous), describeState(tag)]))
    printTable(['SUBSCRIPTION', 'TAG', 'CURRENT', 'PREVIOUS', 'STATE'], rows)
    return 0
  }
}
