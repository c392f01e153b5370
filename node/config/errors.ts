/** Errors about the data directory, its configuration and the running agent. */

/** config.json or a flag holds a value kilomesh cannot use. */
export class InvalidConfigError extends Error {
  static override readonly name = 'InvalidConfigError'
  override readonly name = 'InvalidConfigError'
}

/** The data directory has not been initialised. */
export class NotInitializedError extends Error {
  static override readonly name = 'NotInitializedError'
  override readonly name = 'NotInitializedError'
}

/** No agent is running for the data directory, or it does not respond. */
export class AgentNotRunningError extends Error {
  static override readonly name = 'AgentNotRunningError'
  override readonly name = 'AgentNotRunningError'
}

/** Another agent already runs on the data directory. */
export class AgentAlreadyRunningError extends Error {
  static override readonly name = 'AgentAlreadyRunningError'
  override readonly name = 'AgentAlreadyRunningError'
}

/** The data directory cannot be written, for example on a read-only filesystem or with the wrong owner. */
export class DataDirNotWritableError extends Error {
  static override readonly name = 'DataDirNotWritableError'
  override readonly name = 'DataDirNotWritableError'
}
