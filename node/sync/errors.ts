/**
 * Errors that end a sync session. The session is aborted and logged; the
 * next connection or periodic sync tries again.
 */

/** The peer sent more messages in one session than the protocol allows. */
export class SyncRoundLimitError extends Error {
  static override readonly name = 'SyncRoundLimitError'
  override readonly name = 'SyncRoundLimitError'
}

/** The peer sent more records that failed verification or the trust policy than one session tolerates. */
export class SyncRejectedRecordsError extends Error {
  static override readonly name = 'SyncRejectedRecordsError'
  override readonly name = 'SyncRejectedRecordsError'
}

/** The peer closed the stream before the session ended. */
export class SyncIncompleteError extends Error {
  static override readonly name = 'SyncIncompleteError'
  override readonly name = 'SyncIncompleteError'
}

/** Too many sessions are running, so a new one was not started. */
export class SyncBusyError extends Error {
  static override readonly name = 'SyncBusyError'
  override readonly name = 'SyncBusyError'
}
