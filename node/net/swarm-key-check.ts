/**
 * Diagnosis of swarm key mismatches. `@libp2p/pnet` cannot tell a wrong key
 * from a right one: it swaps nonces and then encrypts, so a peer with a
 * different key, or none, fails later in the upgrade with a generic error
 * ("Message length too long", a reset, or a timeout). The protector here
 * wraps pnet and turns those failures into a SwarmKeyMismatchError that
 * names the remote address, and logs it.
 *
 * - Inbound, the dialer speaks first. Its first bytes before the key
 *   exchange must not be multistream-select's plain header, which would mean
 *   that it has no key. Its first bytes after the exchange must decrypt to
 *   that header; anything else, or a hang-up before them, means another key.
 * - Outbound, the listener speaks only after the dialer, so the protector
 *   cannot wait for its bytes. It logs a mismatch when the connection
 *   closes with an error before the listener sent a byte after the key
 *   exchange.
 * - A key exchange that fails or gets no nonce in time, in either
 *   direction, most likely means that the remote has no key and rejected
 *   the nonce as a malformed handshake.
 * - Outbound, a listener without a key may instead wait for more bytes
 *   until its own timeout. When no nonce arrived after PROBE_DELAY_MS, a
 *   probe on a second connection (swarm-key-probe.ts) checks whether the
 *   listener speaks plain libp2p, and the dial fails at once when it does.
 *   A slow listener with a key still gets HANDSHAKE_STEP_TIMEOUT_MS.
 *
 * @see https://github.com/libp2p/specs/blob/master/pnet/Private-Networks-PSK-V1.md
 * @see https://github.com/multiformats/multistream-select
 */
import { logger } from '@libp2p/logger'
import { preSharedKey } from '@libp2p/pnet'
import { byteStream } from '@libp2p/utils'
import { setMostRecent } from '../util/bounded-map.js'
import { DialFailedError, SwarmKeyMismatchError, SwarmKeyProbeError } from './errors.js'
import { isKeylessListener, PROBE_MESSAGE } from './swarm-key-probe.js'
import { anySignal } from './signals.js'
import type { AbortOptions, ConnectionProtector, MessageStream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Libp2pOptions } from 'libp2p'

const log = logger('kilomesh:swarm-key')

/** The first message of a libp2p connection after the protector: multistream-select's header, prefixed with its length (19). */
const MULTISTREAM_HEADER = new TextEncoder().encode('\x13/multistream/1.0.0\n')

/**
 * Time allowed for each step of the checked handshake, in ms: the first
 * bytes, the nonce exchange and the first decrypted bytes. A peer with the
 * key sends each at once, and a peer without one may wait for bytes that
 * never come, which would otherwise hold the dial until its own timeout.
 */
const HANDSHAKE_STEP_TIMEOUT_MS = 5000

/**
 * Time an outbound key exchange waits for the listener's nonce before it
 * probes whether the listener has no key, in ms. A listener with the key
 * sends its nonce one round trip after the dialer's, so on a LAN the probe
 * runs only when that listener is slow.
 */
const PROBE_DELAY_MS = 500

/** Time between two log lines about the same remote host, in ms; the lines between are counted. */
const MISMATCH_LOG_INTERVAL_MS = 60_000

/** Remote hosts whose log lines are rate-limited; the least recent are forgotten beyond it. */
const MAX_LOGGED_HOSTS = 256

/** Fix for a mismatch, appended to every message about one. */
export const SWARM_KEY_FIX = 'give every device of the mesh the same swarm.key file ("kilomesh keygen --out swarm.key" once, then "--swarm-key FILE" or "swarmKey" in config.json on each agent); see the swarm key troubleshooting in docs/operations.md'

type ProtectorFactory = NonNullable<Libp2pOptions['connectionProtector']>

/** Returns the remote address of a raw connection, for messages. */
function remoteAddressOf (connection: MessageStream): string {
  const address = (connection as { remoteAddr?: { toString: () => string } }).remoteAddr
  return address?.toString() ?? 'an unknown address'
}

/** Returns an error's message, or the value as a string. */
function messageOf (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/** Returns the caller's signal bounded by HANDSHAKE_STEP_TIMEOUT_MS. */
function stepSignal (options?: AbortOptions): AbortSignal {
  const timeout = AbortSignal.timeout(HANDSHAKE_STEP_TIMEOUT_MS)
  return options?.signal == null ? timeout : anySignal([options.signal, timeout])
}

/** Logs mismatches at most once per MISMATCH_LOG_INTERVAL_MS per remote host, with the count of those left out. */
class MismatchLog {
  private readonly hosts = new Map<string, { loggedAtMs: number, suppressed: number }>()

  report (address: string, message: string): void {
    // The port of an inbound connection changes on every attempt, so the host is the key.
    const host = address.split('/tcp/')[0] ?? address
    const nowMs = Date.now()
    const entry = this.hosts.get(host)
    if (entry != null && nowMs - entry.loggedAtMs < MISMATCH_LOG_INTERVAL_MS) {
      entry.suppressed++
      return
    }

    const suppressed = entry?.suppressed ?? 0
    setMostRecent(this.hosts, host, { loggedAtMs: nowMs, suppressed: 0 }, MAX_LOGGED_HOSTS)
    log.error('%s%s', message, suppressed > 0 ? ` (${suppressed} more from ${host} in the last ${MISMATCH_LOG_INTERVAL_MS / 1000} s)` : '')
  }
}

class CheckedPreSharedKeyProtector implements ConnectionProtector {
  constructor (private readonly pnet: ConnectionProtector, private readonly mismatches: MismatchLog) {}

  async protect (connection: MessageStream, options?: AbortOptions): Promise<MessageStream> {
    const address = remoteAddressOf(connection)
    const inbound = connection.direction === 'inbound'

    if (inbound) {
      await this.rejectPlainHandshake(connection, address, options)
    }

    let protectedConnection: MessageStream
    try {
      protectedConnection = inbound ? await this.pnet.protect(connection, { ...options, signal: stepSignal(options) }) : await this.exchangeOutbound(connection, options)
    } catch (err) {
      if (err instanceof SwarmKeyMismatchError) {
        throw this.fail(connection, address, err.message, err, 'the peer has no swarm key')
      }
      throw this.fail(connection, address, `the nonce exchange failed (${messageOf(err)})`, err)
    }

    if (inbound) {
      return this.checkDialerHeader(connection, protectedConnection, address, options)
    }

    this.watchListenerReply(connection, address)
    return protectedConnection
  }

  /**
   * Runs pnet's nonce exchange as the dialer. When the listener's nonce has
   * not arrived after PROBE_DELAY_MS, probes the listener, and throws a
   * SwarmKeyMismatchError (with only the detail as message) as soon as the
   * probe finds that it has no key.
   */
  private async exchangeOutbound (connection: MessageStream, options?: AbortOptions): Promise<MessageStream> {
    const probeFinished = new AbortController()
    const exchange = this.pnet.protect(connection, { ...options, signal: stepSignal(options) })
    exchange.then(() => { probeFinished.abort() }, () => { probeFinished.abort() })

    const probe = (async (): Promise<never> => {
      await new Promise(resolve => setTimeout(resolve, PROBE_DELAY_MS).unref())
      const remoteAddress = (connection as { remoteAddr?: Multiaddr }).remoteAddr
      if (remoteAddress != null && !probeFinished.signal.aborted && await isKeylessListener(remoteAddress, { signal: probeFinished.signal })) {
        throw new SwarmKeyMismatchError('no nonce arrived, and a probe on a second connection got a plain libp2p reply')
      }

      // Not known to be keyless: the exchange decides.
      return new Promise<never>(() => {})
    })()

    return Promise.race([exchange, probe])
  }

  /** Reads the dialer's first bytes and puts them back unless they are a handshake without a key. */
  private async rejectPlainHandshake (connection: MessageStream, address: string, options?: AbortOptions): Promise<void> {
    const first = await this.readHeader(connection, connection, address, 'the peer sent no nonce', options)
    if (Buffer.from(first).equals(PROBE_MESSAGE.subarray(0, first.byteLength))) {
      // A keyed dialer waits for this agent's nonce and checks that it has a key.
      log('closed a swarm key probe from %s', address)
      const err = new SwarmKeyProbeError(`closed a swarm key probe from ${address}`)
      connection.abort(err)
      throw err
    }
    if (Buffer.from(first).equals(MULTISTREAM_HEADER)) {
      throw this.fail(connection, address, 'the peer sent a plain libp2p handshake with no key exchange', undefined, 'the peer has no swarm key')
    }

    // pnet reads them as the remote nonce.
    connection.unshift(first)
  }

  /** Reads the dialer's first decrypted bytes and puts them back when they are multistream-select's header. */
  private async checkDialerHeader (connection: MessageStream, protectedConnection: MessageStream, address: string, options?: AbortOptions): Promise<MessageStream> {
    const header = await this.readHeader(connection, protectedConnection, address, 'the peer sent no libp2p handshake after the key exchange', options)
    if (!Buffer.from(header).equals(MULTISTREAM_HEADER)) {
      throw this.fail(connection, address, 'the first bytes after the key exchange do not decrypt to a libp2p handshake')
    }

    // The upgrader's multistream-select reads the header again.
    protectedConnection.unshift(header)
    return protectedConnection
  }

  /** Reads as many bytes as multistream-select's header has from `stream`, leaving the rest unread. */
  private async readHeader (connection: MessageStream, stream: MessageStream, address: string, failure: string, options?: AbortOptions): Promise<Uint8Array> {
    const bytes = byteStream(stream)
    let header: Uint8Array
    try {
      header = (await bytes.read({ bytes: MULTISTREAM_HEADER.byteLength, signal: stepSignal(options) })).subarray()
    } catch (err) {
      throw this.fail(connection, address, `${failure} (${messageOf(err)})`, err)
    }

    // Returns the bytes read past the header to the stream, and stops buffering its data.
    bytes.unwrap()
    return header
  }

  /**
   * Logs a likely mismatch when an outbound connection closes before the
   * listener sent a byte after the key exchange. The listeners are removed
   * at the first byte, so they cost nothing once the connection works.
   */
  private watchListenerReply (connection: MessageStream, address: string): void {
    const stopWatching = (): void => {
      connection.removeEventListener('message', stopWatching)
      connection.removeEventListener('close', onClose)
    }
    const onClose = (event: Event): void => {
      stopWatching()

      // libp2p dials the addresses of a peer one after another, so an error
      // here is a reset by the peer or this agent's timeout, not a lost race.
      const cause = (event as Event & { error?: Error }).error
      if (cause != null) {
        this.mismatches.report(address, mismatchMessage(address, `the connection closed after the key exchange before the peer sent a byte (${cause.message})`))
      }
    }

    connection.addEventListener('message', stopWatching)
    connection.addEventListener('close', onClose)
  }

  private fail (connection: MessageStream, address: string, detail: string, cause?: unknown, likelyCause?: string): SwarmKeyMismatchError {
    const err = new SwarmKeyMismatchError(mismatchMessage(address, detail, likelyCause), { cause })
    this.mismatches.report(address, err.message)
    connection.abort(err)
    return err
  }
}

/** Returns the message of a SwarmKeyMismatchError for a connection to or from `address`. */
export function mismatchMessage (address: string, detail: string, likelyCause = 'the peer likely uses a different swarm key, or none'): string {
  return `private network handshake with ${address} failed: ${detail}; ${likelyCause}. To fix it, ${SWARM_KEY_FIX}`
}

/**
 * Returns `@libp2p/pnet`'s protector for `swarmKey`, wrapped so that a
 * connection with a peer that has another key, or none, fails with a
 * SwarmKeyMismatchError and a log line that names the remote address.
 */
export function checkedPreSharedKey (swarmKey: Uint8Array): ProtectorFactory {
  const pnet = preSharedKey({ psk: swarmKey })
  const mismatches = new MismatchLog()
  return () => new CheckedPreSharedKeyProtector(pnet(), mismatches)
}

/** Returns the messages and codes of an error, its causes and the errors of an AggregateError, for matching. */
function describeError (err: unknown, depth = 0): string {
  if (!(err instanceof Error) || depth > 8) {
    return String(err)
  }
  const code = (err as { code?: unknown }).code
  const nested = [err.cause, ...(err instanceof AggregateError ? err.errors : [])].filter(inner => inner != null)
  return [err.message, typeof code === 'string' ? code : '', ...nested.map(inner => describeError(inner, depth + 1))].join(' ')
}

/** Finds an error of `name` in an error, its causes and the errors of an AggregateError. */
function findError (err: unknown, name: string, depth = 0): Error | undefined {
  if (!(err instanceof Error) || depth > 8) {
    return undefined
  }
  if (err.name === name) {
    return err
  }

  const nested = [err.cause, ...(err instanceof AggregateError ? err.errors : [])]
  for (const inner of nested) {
    const found = findError(inner, name, depth + 1)
    if (found != null) {
      return found
    }
  }
  return undefined
}

/**
 * Explains a failed dial of `address`. A failure in the swarm key handshake
 * returns a SwarmKeyMismatchError. So does a failure before encryption was
 * agreed, for a reason other than a wrong peer ID, which is what an agent
 * without a key gets from an agent with one. `hasSwarmKey` is true when
 * this agent has a key, which decides the likely causes named. A wrong peer
 * ID and a refused connection get a DialFailedError that names the fix.
 * Returns `err` otherwise.
 */
export function explainDialFailure (err: unknown, address: string, hasSwarmKey: boolean): unknown {
  const mismatch = findError(err, SwarmKeyMismatchError.name)
  if (mismatch != null) {
    return mismatch
  }

  // libp2p wraps every failure before encryption is agreed in an
  // EncryptionFailedError. A wrong /p2p/ peer ID fails there too, but noise
  // names the identity key, and that is no key problem.
  const encryption = findError(err, 'EncryptionFailedError')
  if (encryption != null && /identity key/i.test(encryption.message)) {
    return new DialFailedError(`connection to ${address} failed: the agent there has another peer ID than the one after /p2p/; copy the address from "multiaddrs" in that agent's agent.json, or from "kilomesh status" on it`, { cause: err })
  }
  if (encryption == null) {
    return /ECONNREFUSED/.test(String(describeError(err))) ? new DialFailedError(`connection to ${address} failed: nothing listens on that address and port; check that the agent runs there and compare the port with "multiaddrs" in its agent.json`, { cause: err }) : err
  }

  const detail = `the connection failed before encryption was agreed (${encryption.message})`
  if (hasSwarmKey) {
    return new SwarmKeyMismatchError(mismatchMessage(address, detail, 'the peer likely uses a different swarm key, or none'), { cause: err })
  }
  // Without a key, this agent speaks plain libp2p, so either the address is
  // not an agent's libp2p port, or the peer is on a private network.
  return new SwarmKeyMismatchError(`connection to ${address} failed: ${detail}. Either the address is not a kilomesh agent's libp2p address (compare its port with "multiaddrs" in the peer's agent.json; the registry and control ports do not speak libp2p), or the peer is on a private network and this agent has no swarm key. To join that network, ${SWARM_KEY_FIX}`, { cause: err })
}
