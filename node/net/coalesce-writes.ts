/**
 * Merges the writes that one turn of the event loop makes to a connection's
 * TCP socket into one system call. @libp2p/noise writes each frame's 2-byte
 * length and its ciphertext as two writes. yamux sends a frame for every
 * stream open, window update and close. One blob request therefore made
 * about 24 socket writes, each a system call that wakes the remote. Corking
 * the socket until the current tick ends makes Node send them with one writev.
 *
 * The socket is reached through libp2p 3.3's Connection class, which keeps
 * the transport's connection as `maConn`, and @libp2p/tcp's, which keeps the
 * socket as `socket`. Neither is in the interfaces, so a connection that
 * does not expose a socket (the memory transport of the simulator, or a
 * later libp2p) is left as it is.
 */
import { Socket } from 'node:net'
import { logger } from '@libp2p/logger'
import type { Connection } from '@libp2p/interface'

const log = logger('kilomesh:coalesce-writes')

/**
 * Size of a write that goes out at once, with whatever the tick queued
 * before it: Node's default high-water mark for a socket. Holding a bulk
 * transfer's chunks until the tick ends delayed the 'drain' events that pace
 * it, and cut the blob protocol's throughput by a tenth.
 */
const FLUSH_AT_BYTES = 16 * 1024

/** Marks sockets already wrapped, so that a second call does not wrap twice. */
const COALESCING = Symbol('kilomesh.coalescing')

type MarkedSocket = Socket & { [COALESCING]?: true }

/**
 * Corks the socket of `connection` at its first write in each tick and
 * uncorks it when the tick's other work is done. Returns false when the
 * connection has no TCP socket to wrap.
 */
export function coalesceSocketWrites (connection: Connection): boolean {
  const socket = socketOf(connection)
  if (socket == null) {
    log.trace('connection %s to %a has no TCP socket, leaving its writes alone', connection.id, connection.remoteAddr)
    return false
  }
  if (socket[COALESCING] === true) {
    return true
  }
  socket[COALESCING] = true

  const write = socket.write.bind(socket)
  let corked = false
  const uncork = (): void => {
    corked = false
    socket.uncork()
  }

  // Writable.write has several overloads, so the arguments pass through unchanged.
  socket.write = ((...args: Parameters<Socket['write']>): boolean => {
    const chunk = args[0]
    if (typeof chunk !== 'string' && chunk.byteLength >= FLUSH_AT_BYTES) {
      const accepted = write(...args)
      if (corked) {
        uncork()
      }
      return accepted
    }

    if (!corked && !socket.destroyed) {
      corked = true
      socket.cork()
      process.nextTick(uncork)
    }
    return write(...args)
  }) as Socket['write']

  return true
}

/** Returns true when the writes of `connection` go through coalesceSocketWrites. */
export function coalescesWrites (connection: Connection): boolean {
  return socketOf(connection)?.[COALESCING] === true
}

/** Returns the TCP socket under a libp2p connection, when the connection exposes one. */
function socketOf (connection: Connection): MarkedSocket | undefined {
  const maConn = (connection as unknown as { maConn?: { socket?: unknown } }).maConn
  return maConn?.socket instanceof Socket ? maConn.socket : undefined
}
