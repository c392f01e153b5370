/**
 * Grants the sender of a stream more yamux credit before it starts sending.
 * Yamux starts every stream at 256 KiB of credit and raises it only as the
 * receiver reads, one window update per round trip. So a 1 MB layer stalls
 * for at least one round trip after its first 256 KiB. That was about 1 ms
 * between two processes on this machine, and is a link's whole round trip
 * on a device's radio. A window update sent with the request lets the peer
 * send the whole blob at once; the yamux spec fixes only the first 256 KiB.
 *
 * The window is not part of @libp2p/interface, so this uses the fields of
 * @libp2p/yamux 8's stream class. On a stream without them (another muxer,
 * or a yamux release that renamed them) it does nothing.
 */
import { logger } from '@libp2p/logger'
import type { Stream } from '@libp2p/interface'

const log = logger('kilomesh:receive-window')

/**
 * Largest window granted to one stream, in bytes. The peer may send this
 * much before the reader takes any, so it bounds the memory of a slow
 * reader. Yamux may still double a young stream's window, up to its own
 * limit of 16 MiB.
 */
export const MAX_RECEIVE_WINDOW_BYTES = 4 * 1024 * 1024

/** The part of @libp2p/yamux's stream class that sets the receive window. */
interface YamuxWindow {
  recvWindow: number
  maxStreamWindowSize: number
  sendWindowUpdate: () => void
}

function windowOf (stream: Stream): YamuxWindow | undefined {
  const candidate = stream as unknown as Partial<YamuxWindow>
  if (typeof candidate.recvWindow !== 'number' || typeof candidate.maxStreamWindowSize !== 'number' || typeof candidate.sendWindowUpdate !== 'function') {
    return undefined
  }
  return candidate as YamuxWindow
}

/**
 * Raises the stream's receive window to `windowBytes`, at most
 * MAX_RECEIVE_WINDOW_BYTES, and sends the update at once. Returns false
 * when the stream has no yamux window or it is already that large.
 */
export function growReceiveWindow (stream: Stream, windowBytes: number): boolean {
  const window = windowOf(stream)
  if (window == null) {
    log.trace('stream %s has no yamux receive window to grow', stream.id)
    return false
  }

  const targetBytes = Math.min(Math.ceil(windowBytes), MAX_RECEIVE_WINDOW_BYTES, window.maxStreamWindowSize)
  if (!(targetBytes > window.recvWindow)) {
    return false
  }

  window.recvWindow = targetBytes
  window.sendWindowUpdate()
  return true
}
