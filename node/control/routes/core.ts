/** Control routes of the core commands: status, peers, images, publish, pull, connect. */
import { multiaddr } from '@multiformats/multiaddr'
import { logger } from '@libp2p/logger'
import { publishImage } from '../../agent/publish.js'
import { pullImage } from '../../agent/pull.js'
import { imagesView, peersView, statusView } from '../../agent/status.js'
import { withTrustWarning } from './trust-warning.js'
import { parseBootstrapAddress } from '../../config/config.js'
import { DEFAULT_WAIT_FOR_SOURCES_MS } from '../../fetch/fetcher.js'
import { parsePlatform } from '../../image/platform.js'
import { explainDialFailure } from '../../net/swarm-key-check.js'
import { RequestError, optionalString, requireString, type ControlRoute } from '../route.js'
import { DEFAULT_PULL_TIMEOUT_SECONDS, type PullEvent } from '../protocol.js'

const log = logger('kilomesh:control')

/** Largest pull time limit, in seconds. */
const MAX_PULL_TIMEOUT_SECONDS = 24 * 3600

/** Time allowed to dial a peer named by `kilomesh connect`. */
const CONNECT_TIMEOUT_MS = 10_000

export const coreRoutes: ControlRoute[] = [
  {
    method: 'GET',
    path: '/status',
    handle: async ({ agent }) => statusView(agent.context, agent.registryAddress)
  },
  {
    method: 'GET',
    path: '/peers',
    handle: async ({ agent }) => peersView(agent.context)
  },
  {
    method: 'GET',
    path: '/images',
    handle: async ({ agent }) => imagesView(agent.context)
  },
  {
    method: 'POST',
    path: '/publish',
    handle: async ({ agent, body }) => {
      const result = await publishImage(agent.context, requireString(body, 'reference'), requireString(body, 'from'))
      return withTrustWarning(agent, result, 'published')
    }
  },
  {
    method: 'POST',
    path: '/connect',
    handle: async ({ agent, body }) => {
      const address = parseBootstrapAddress(body.multiaddr, 'peer address')
      const target = multiaddr(address)
      const peer = target.getComponents().find(component => component.name === 'p2p')?.value
      if (peer === agent.peerId) {
        throw new RequestError(400, `${address} is this agent's own address; give the address of another agent (its "kilomesh status" prints it)`)
      }

      // libp2p returns the open connection for a dial to a connected peer,
      // without trying the address. A forced dial tests the address itself,
      // because the keeper redials it after a disconnect.
      const node = agent.context.node
      const alreadyConnected = node.getPeers().some(connected => connected.toString() === peer)
      let connection
      try {
        connection = await node.dial(target, { signal: AbortSignal.timeout(CONNECT_TIMEOUT_MS), force: alreadyConnected })
      } catch (err) {
        // A peer with another swarm key fails with generic upgrade errors; name the likely cause.
        throw explainDialFailure(err, address, agent.context.swarmKeyPath != null)
      }
      if (alreadyConnected) {
        await connection.close().catch(() => {})
      }
      agent.context.connectivity.keep(address)
      return { connected: address }
    }
  },
  {
    method: 'POST',
    path: '/pull',
    // Streams progress lines while pulling, then one result or error line.
    handle: async ({ agent, body, response }) => {
      const reference = requireString(body, 'reference')
      const timeoutSeconds = body.timeoutSeconds ?? DEFAULT_PULL_TIMEOUT_SECONDS
      if (typeof timeoutSeconds !== 'number' || !(timeoutSeconds > 0) || timeoutSeconds > MAX_PULL_TIMEOUT_SECONDS) {
        throw new RequestError(400, `invalid timeout ${JSON.stringify(timeoutSeconds)}: give a number of seconds above 0 and at most ${MAX_PULL_TIMEOUT_SECONDS}`)
      }
      const waitSeconds = body.waitSeconds ?? 0
      if (typeof waitSeconds !== 'number' || !(waitSeconds >= 0) || waitSeconds > timeoutSeconds) {
        throw new RequestError(400, `invalid wait ${JSON.stringify(waitSeconds)}: give a number of seconds from 0 up to the timeout of ${timeoutSeconds} s`)
      }
      const platformText = optionalString(body, 'platform')
      const platform = platformText == null ? undefined : parsePlatform(platformText)

      response.writeHead(200, { 'content-type': 'application/x-ndjson' })
      const write = (event: PullEvent): void => { response.write(`${JSON.stringify(event)}\n`) }
      let lastProgressMs = 0

      try {
        const result = await pullImage(agent.context, reference, {
          to: optionalString(body, 'to'),
          platform,
          platformRequired: platform != null,
          signal: AbortSignal.timeout(timeoutSeconds * 1000),
          // A wait shorter than the fetcher's default would fail sooner than none.
          waitForSourcesMs: waitSeconds > 0 ? Math.max(waitSeconds * 1000, DEFAULT_WAIT_FOR_SOURCES_MS) : undefined,
          onProgress: progress => {
            // At most ten progress lines a second, plus the last one of each blob.
            const now = Date.now()
            if (now - lastProgressMs >= 100 || progress.receivedBytes === progress.totalBytes) {
              lastProgressMs = now
              write({ type: 'progress', ...progress })
            }
          }
        })
        write({ type: 'result', result })
      } catch (err: any) {
        log('pull of %s failed: %e', reference, err)
        write({ type: 'error', error: { name: err.name ?? 'Error', message: err.message ?? String(err) } })
      }
      response.end()
      return undefined
    }
  }
]
