/** Errors of the agent's networking setup. */

/** A private network (swarm) key file is missing, unreadable or not in the `/key/swarm/psk/1.0.0/` format. */
export class InvalidSwarmKeyError extends Error {
  static override readonly name = 'InvalidSwarmKeyError'
  override readonly name = 'InvalidSwarmKeyError'
}

/**
 * A connection failed in the private network (swarm key) handshake: the key
 * exchange failed, or the bytes after it were not a libp2p handshake. The
 * usual cause is a peer with a different swarm key, or with none while the
 * other side has one, because pnet's encryption then turns every byte into
 * noise for the other side.
 */
export class SwarmKeyMismatchError extends Error {
  static override readonly name = 'SwarmKeyMismatchError'
  override readonly name = 'SwarmKeyMismatchError'
}

/** An inbound connection was another agent's swarm key probe (swarm-key-probe.ts), which gets no reply. */
export class SwarmKeyProbeError extends Error {
  static override readonly name = 'SwarmKeyProbeError'
  override readonly name = 'SwarmKeyProbeError'
}

/** A dial by `kilomesh connect` failed for a reason the message names, such as a wrong port or peer ID. */
export class DialFailedError extends Error {
  static override readonly name = 'DialFailedError'
  override readonly name = 'DialFailedError'
}

/** Abort reason of a connection that failed its ping and received nothing for a liveness interval plus a ping timeout. */
export class ConnectionSilentError extends Error {
  static override readonly name = 'ConnectionSilentError'
  override readonly name = 'ConnectionSilentError'
}
