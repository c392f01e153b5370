/**
 * Test-only control routes that cut this agent off from given peers and
 * reconnect it. They return 404 unless the agent runs with
 * KILOMESH_TEST_HOOKS=1 (node/agent/test-hooks.ts).
 */
import { logger } from '@libp2p/logger'
import { peerIdFromString } from '@libp2p/peer-id'
import { TEST_HOOKS_ENV, type PeerBlocklist } from '../../agent/test-hooks.js'
import { RequestError, type ControlRoute, type RouteRequest } from '../route.js'
import type { PeerId } from '@libp2p/interface'

const log = logger('kilomesh:control')

/** Most peer IDs in one request. */
const MAX_PEERS_PER_REQUEST = 1000

export interface BlocklistView {
  /** Peers blocked after the request, sorted. */
  blocked: string[]
}

function requireBlocklist (request: RouteRequest, path: string): PeerBlocklist {
  const blocklist = request.agent.context.blocklist
  if (blocklist == null) {
    throw new RequestError(404, `test hooks are off, so ${path} is not available; start the agent with ${TEST_HOOKS_ENV}=1 (tests only)`, 'NotFoundError')
  }
  return blocklist
}

/** Reads the `peers` field: an array of peer ID strings. */
function parsePeers (body: Record<string, unknown>, required: boolean): PeerId[] | undefined {
  const value = body.peers
  if (value == null && !required) {
    return undefined
  }

  if (!Array.isArray(value) || value.length > MAX_PEERS_PER_REQUEST || value.some(peer => typeof peer !== 'string')) {
    throw new RequestError(400, `invalid field "peers": expected an array of at most ${MAX_PEERS_PER_REQUEST} peer ID strings`)
  }

  return value.map((peer: string) => {
    try {
      return peerIdFromString(peer)
    } catch (err: any) {
      throw new RequestError(400, `invalid peer ID ${JSON.stringify(peer.slice(0, 100))} in "peers": ${err.message}`)
    }
  })
}

export const debugRoutes: ControlRoute[] = [
  {
    method: 'POST',
    path: '/debug/block',
    // Blocks first, so that a redial racing with the hang-up is already denied.
    handle: async (request): Promise<BlocklistView> => {
      const blocklist = requireBlocklist(request, 'POST /v1/debug/block')
      const peers = parsePeers(request.body, true) ?? []
      const { node } = request.agent.context

      blocklist.block(peers.map(peer => peer.toString()))
      await Promise.all(peers.map(async peer => node.hangUp(peer)))

      log('test hook: blocked %d peers: %s', peers.length, peers.map(peer => peer.toString()).join(', '))
      return { blocked: blocklist.list() }
    }
  },
  {
    method: 'POST',
    path: '/debug/unblock',
    // Without "peers", every blocked peer is unblocked. Reconnecting is left to the connectivity keeper.
    handle: async (request): Promise<BlocklistView> => {
      const blocklist = requireBlocklist(request, 'POST /v1/debug/unblock')
      const peers = parsePeers(request.body, false)

      const removed = blocklist.unblock(peers?.map(peer => peer.toString()))
      log('test hook: unblocked %d peers: %s', removed.length, removed.join(', '))
      return { blocked: blocklist.list() }
    }
  }
]
