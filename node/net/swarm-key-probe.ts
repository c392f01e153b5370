/**
 * A probe that distinguishes a keyless libp2p listener from a slow one with a key.
 *
 * A dialer with a swarm key sends its 24-byte pnet nonce and waits for the
 * listener's. A listener without a key reads those random bytes as the
 * length prefix of a multistream-select message. When the prefix decodes
 * to a length between 24 and 1024, which happens for about four nonces in
 * ten, it waits for bytes that never come until its inbound upgrade
 * timeout (10 s in libp2p 3). The dialer would wait just as long, and so
 * cannot tell that listener from a slow peer with a key.
 *
 * The probe opens a second TCP connection to the same address and sends one
 * multistream-select line that no listener handles. A listener without a
 * key replies at once with multistream-select's "na". A listener with a key
 * reads the probe as a nonce, sends random bytes or closes, and is never
 * taken for a keyless one.
 *
 * @see https://github.com/multiformats/multistream-select
 */
import { connect } from 'node:net'
import { logger } from '@libp2p/logger'
import type { Multiaddr } from '@multiformats/multiaddr'

const log = logger('kilomesh:swarm-key')

/** Protocol named by the probe; no listener handles it, so multistream-select replies "na". */
const PROBE_PROTOCOL = '/kilomesh/swarm-key-probe/1.0.0\n'

/** The probe's bytes: PROBE_PROTOCOL with its one-byte length prefix (32). */
export const PROBE_MESSAGE = new Uint8Array([PROBE_PROTOCOL.length, ...new TextEncoder().encode(PROBE_PROTOCOL)])

/** Replies that only a plain multistream-select listener sends first: "na", or its own header. */
const PLAIN_REPLIES = [new TextEncoder().encode('\x03na\n'), new TextEncoder().encode('\x13/multistream/1.0.0\n')]

/** Maximum time the probe connection waits to connect and for a reply, in ms. */
export const PROBE_TIMEOUT_MS = 1000

/** Returns the host and port of a TCP address, or undefined for other transports (such as the simulator's memory links). */
function tcpTarget (address: Multiaddr): { host: string, port: number } | undefined {
  const components = address.getComponents()
  const host = components.find(component => component.name === 'ip4' || component.name === 'ip6')?.value
  const port = components.find(component => component.name === 'tcp')?.value
  if (host == null || port == null) {
    return undefined
  }
  return { host, port: Number(port) }
}

/** Returns true when `received` starts with one of PLAIN_REPLIES, or could still become one. */
function matchesPlainReply (received: Buffer, complete: boolean): boolean {
  return PLAIN_REPLIES.some(reply => {
    const length = Math.min(received.byteLength, reply.byteLength)
    const prefixMatches = Buffer.from(reply.subarray(0, length)).equals(received.subarray(0, length))
    return prefixMatches && (!complete || received.byteLength >= reply.byteLength)
  })
}

/**
 * Sends the probe to `address` and returns true when the listener there
 * replied as a libp2p listener without a swarm key does. Returns false for
 * any other reply, a closed or refused connection, a timeout, an abort, or
 * an address that is not TCP.
 */
export async function isKeylessListener (address: Multiaddr, options: { signal?: AbortSignal } = {}): Promise<boolean> {
  const target = tcpTarget(address)
  if (target == null || options.signal?.aborted === true) {
    return false
  }

  return new Promise<boolean>(resolve => {
    let received = Buffer.alloc(0)
    const socket = connect({ host: target.host, port: target.port })
    const timer = setTimeout(() => { finish(false) }, PROBE_TIMEOUT_MS)
    const onAbort = (): void => { finish(false) }

    let done = false
    function finish (keyless: boolean): void {
      if (done) {
        return
      }
      done = true
      clearTimeout(timer)
      options.signal?.removeEventListener('abort', onAbort)
      socket.destroy()
      log('swarm key probe of %s: %s', address.toString(), keyless ? 'the listener has no key' : 'no plain libp2p reply')
      resolve(keyless)
    }

    options.signal?.addEventListener('abort', onAbort)
    socket.on('connect', () => { socket.write(PROBE_MESSAGE) })
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk])
      if (!matchesPlainReply(received, false)) {
        finish(false)
      } else if (matchesPlainReply(received, true)) {
        finish(true)
      }
    })
    socket.on('error', () => { finish(false) })
    socket.on('close', () => { finish(false) })
  })
}
