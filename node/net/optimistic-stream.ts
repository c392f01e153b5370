/**
 * Opens a protocol stream and sends the first request in the same frame as
 * the multistream-select proposal, instead of waiting one round trip for the
 * remote to accept the protocol. multistream-select allows this, and
 * @libp2p/interface documents it as `negotiateFully: false`. libp2p 3.3.11
 * ignores that option and always negotiates in full, so this module does it
 * on the connection's stream muxer.
 */
import { TooManyOutboundProtocolStreamsError, UnsupportedProtocolError } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { lpStream, type LengthPrefixedStream } from '@libp2p/utils'
import { encode as lengthPrefixed } from 'it-length-prefixed'
import { Uint8ArrayList } from 'uint8arraylist'
import { growReceiveWindow } from './receive-window.js'
import type { KilomeshLibp2p } from './libp2p.js'
import type { AbortOptions, Connection, PeerId, Stream, StreamMuxer } from '@libp2p/interface'

const log = logger('kilomesh:optimistic-stream')

/** Protocol ID of multistream-select 1.0, sent before the proposed protocol. */
const MULTISTREAM_PROTOCOL = '/multistream/1.0.0'

/** Maximum length of a multistream-select message, MAX_PROTOCOL_LENGTH of @libp2p/multistream-select 7. */
const MAX_SELECT_MESSAGE_BYTES = 1024

export interface OptimisticStream {
  stream: Stream
  /** Length-prefixed reader of the remote's messages. Unless `confirm` read them, the multistream-select replies come first. */
  messages: LengthPrefixedStream<Stream>
  /**
   * Reads the remote's multistream-select replies and throws
   * UnsupportedProtocolError when it rejected the protocol. Call it before
   * reading the first response.
   */
  confirm: (options?: AbortOptions) => Promise<void>
}

export interface OpenWithRequestOptions extends AbortOptions {
  maxOutboundStreams: number
  maxDataLength: number
  /**
   * Bytes the remote is expected to send in response. When that is more
   * than yamux's first window, a larger window is granted with the request
   * (see receive-window.ts).
   */
  expectedResponseBytes?: number
}

/**
 * Opens a stream to `peer` for `protocol` and sends `request`, a
 * length-prefixed message, with the protocol proposal. When no open
 * connection to the peer exposes its muxer, it falls back to `dialProtocol`
 * and sends the request after the negotiation.
 */
export async function openWithRequest (node: KilomeshLibp2p, peer: PeerId, protocol: string, request: Uint8Array | Uint8ArrayList, options: OpenWithRequestOptions): Promise<OptimisticStream> {
  const connection = node.getConnections(peer).find(candidate => candidate.status === 'open' && candidate.limits == null && muxerOf(candidate)?.status === 'open')
  const muxer = connection == null ? undefined : muxerOf(connection)

  if (connection == null || muxer == null) {
    const stream = await node.dialProtocol(peer, protocol, options)
    growReceiveWindow(stream, options.expectedResponseBytes ?? 0)
    stream.send(request)
    return { stream, messages: lpStream(stream, { maxDataLength: options.maxDataLength }), confirm: async () => {} }
  }

  // connection.newStream checks this limit after negotiating. The stream gets
  // its protocol at once, so it counts against the limit while it is open.
  const open = connection.streams.filter(stream => stream.direction === 'outbound' && stream.protocol === protocol).length
  if (open >= options.maxOutboundStreams) {
    throw new TooManyOutboundProtocolStreamsError(`too many outbound ${protocol} streams to ${peer.toString()}: ${open} of at most ${options.maxOutboundStreams} are open; wait for one to finish`)
  }

  options.signal?.throwIfAborted()
  const stream = await muxer.createStream()
  stream.protocol = protocol
  // The window update opens the stream, so it reaches the remote before the
  // request does.
  growReceiveWindow(stream, options.expectedResponseBytes ?? 0)

  const encoder = new TextEncoder()
  stream.send(new Uint8ArrayList(
    lengthPrefixed.single(encoder.encode(`${MULTISTREAM_PROTOCOL}\n`)),
    lengthPrefixed.single(encoder.encode(`${protocol}\n`)),
    request
  ))

  const messages = lpStream(stream, { maxDataLength: Math.max(MAX_SELECT_MESSAGE_BYTES, options.maxDataLength) })
  const confirm = async (confirmOptions?: AbortOptions): Promise<void> => {
    const header = await readSelectMessage(messages, confirmOptions)
    const selected = await readSelectMessage(messages, confirmOptions)
    if (header !== MULTISTREAM_PROTOCOL || selected !== protocol) {
      log('%p rejected %s: it sent %j then %j', peer, protocol, header, selected)
      throw new UnsupportedProtocolError(`peer ${peer.toString()} does not support ${protocol} (multistream-select replied ${JSON.stringify(header)}, then ${JSON.stringify(selected)})`)
    }
  }
  return { stream, messages, confirm }
}

/** Returns the connection's stream muxer. The Connection interface does not list it, but libp2p 3.3's Connection class has it. */
function muxerOf (connection: Connection): StreamMuxer | undefined {
  const muxer = (connection as unknown as { muxer?: StreamMuxer }).muxer
  return typeof muxer?.createStream === 'function' ? muxer : undefined
}

async function readSelectMessage (messages: LengthPrefixedStream<Stream>, options?: AbortOptions): Promise<string> {
  const message = await messages.read(options)
  if (message.byteLength > MAX_SELECT_MESSAGE_BYTES) {
    throw new UnsupportedProtocolError(`multistream-select message of ${message.byteLength} bytes is longer than ${MAX_SELECT_MESSAGE_BYTES}`)
  }
  const text = new TextDecoder().decode(message.subarray())
  return text.endsWith('\n') ? text.slice(0, -1) : text
}
