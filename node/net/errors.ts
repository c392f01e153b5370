/** Errors of the agent's networking setup. */

/** A private network (swarm) key file is missing, unreadable or not in the `/key/swarm/psk/1.0.0/` format. */
export class InvalidSwarmKeyError extends Error {
  static override readonly name = 'InvalidSwarmKeyError'
  override readonly name = 'InvalidSwarmKeyError'
}
