/** Errors the agent returns to the CLI, the registry and the control API. */

/** A tag is unknown to this agent and to every connected peer, or it was deleted. */
export class TagNotFoundError extends Error {
  static override readonly name = 'TagNotFoundError'
  override readonly name = 'TagNotFoundError'
}

/** A pull did not finish within its time limit. */
export class PullTimeoutError extends Error {
  static override readonly name = 'PullTimeoutError'
  override readonly name = 'PullTimeoutError'
}

/** A tag has no older version in the catalog's history to go back to. */
export class NoPreviousVersionError extends Error {
  static override readonly name = 'NoPreviousVersionError'
  override readonly name = 'NoPreviousVersionError'
}

/** The agent could bind none of its listen addresses. */
export class ListenFailedError extends Error {
  static override readonly name = 'ListenFailedError'
  override readonly name = 'ListenFailedError'
}
