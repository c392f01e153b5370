/**
 * Test-only hooks of the agent, off unless its environment turns them on.
 * Tests of real agent processes use them to cut the mesh into groups and to
 * give one device a wrong clock:
 *
 * - `KILOMESH_TEST_HOOKS=1` enables the control routes `POST /v1/debug/block`
 *   and `POST /v1/debug/unblock`. A blocked peer is disconnected, and the
 *   connection gater rejects every dial to it and every connection from it,
 *   until it is unblocked.
 * - `KILOMESH_CLOCK_OFFSET_MS=N` adds N milliseconds (negative moves back)
 *   to the clock the catalog uses for new records and for judging records
 *   from the future.
 *
 * Never set them on a production device: the routes let anyone who can
 * reach the control socket isolate the agent from any peer.
 */
import { InvalidConfigError } from '../config/errors.js'
import type { ConnectionGater, PeerId } from '@libp2p/interface'

/** Environment variable that enables the test-only control routes when set to "1". */
export const TEST_HOOKS_ENV = 'KILOMESH_TEST_HOOKS'

/** Environment variable with a clock offset in milliseconds, for tests of devices with wrong clocks. */
export const CLOCK_OFFSET_ENV = 'KILOMESH_CLOCK_OFFSET_MS'

export interface TestHookSettings {
  testHooks: boolean
  clockOffsetMs?: number
}

/** Reads the test hook variables; throws InvalidConfigError naming a bad value. */
export function readTestHookEnv (env: NodeJS.ProcessEnv = process.env, nowMs = Date.now()): TestHookSettings {
  const hooks = env[TEST_HOOKS_ENV]
  if (hooks != null && hooks !== '' && hooks !== '0' && hooks !== '1') {
    throw new InvalidConfigError(`${TEST_HOOKS_ENV}=${JSON.stringify(hooks.slice(0, 40))} is invalid; set it to 1 to enable the test-only control routes, or unset it`)
  }

  const settings: TestHookSettings = { testHooks: hooks === '1' }
  const offset = env[CLOCK_OFFSET_ENV]
  if (offset == null || offset === '') {
    return settings
  }

  const offsetMs = Number(offset)
  if (!/^-?\d+$/.test(offset) || !Number.isSafeInteger(offsetMs) || nowMs + offsetMs < 0) {
    throw new InvalidConfigError(`${CLOCK_OFFSET_ENV}=${JSON.stringify(offset.slice(0, 40))} is invalid; give a whole number of milliseconds that keeps the clock at or after 1970-01-01, for example -${nowMs - 86_400_000} for 1970-01-02`)
  }

  settings.clockOffsetMs = offsetMs
  return settings
}

/** Peer IDs the agent refuses to talk to, with the connection gater that enforces it. */
export class PeerBlocklist {
  private readonly blocked = new Set<string>()

  /** Adds peers; returns the ones that were not blocked before. */
  block (peers: string[]): string[] {
    const added = peers.filter(peer => !this.blocked.has(peer))
    for (const peer of added) {
      this.blocked.add(peer)
    }
    return added
  }

  /** Removes the given peers, or every peer when `peers` is omitted; returns the ones removed. */
  unblock (peers?: string[]): string[] {
    const removed = (peers ?? [...this.blocked]).filter(peer => this.blocked.has(peer))
    for (const peer of removed) {
      this.blocked.delete(peer)
    }
    return removed
  }

  list (): string[] {
    return [...this.blocked].sort()
  }

  has (peer: PeerId | string): boolean {
    return this.blocked.has(peer.toString())
  }

  /** Returns a gater that denies blocked peers and otherwise defers to `inner`, when given. */
  gater (inner: ConnectionGater = {}): ConnectionGater {
    const denyPeer = (peer: PeerId): boolean => this.has(peer)
    return {
      ...inner,
      denyDialPeer: async (peer) => denyPeer(peer) || (await inner.denyDialPeer?.(peer) ?? false),
      denyOutboundConnection: async (peer, connection) => denyPeer(peer) || (await inner.denyOutboundConnection?.(peer, connection) ?? false),
      denyInboundEncryptedConnection: async (peer, connection) => denyPeer(peer) || (await inner.denyInboundEncryptedConnection?.(peer, connection) ?? false),
      denyOutboundEncryptedConnection: async (peer, connection) => denyPeer(peer) || (await inner.denyOutboundEncryptedConnection?.(peer, connection) ?? false),
      denyInboundUpgradedConnection: async (peer, connection) => denyPeer(peer) || (await inner.denyInboundUpgradedConnection?.(peer, connection) ?? false),
      denyOutboundUpgradedConnection: async (peer, connection) => denyPeer(peer) || (await inner.denyOutboundUpgradedConnection?.(peer, connection) ?? false)
    }
  }
}
