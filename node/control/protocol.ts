/**
 * The control API between the CLI and its local agent: JSON over HTTP on the
 * Unix socket `control.sock` in the data directory. Only the socket's owner
 * can connect, so it needs no authentication of its own.
 */

/** Version prefix of every control path. */
export const CONTROL_PREFIX = '/v1'

/** Largest request body the control server reads. */
export const MAX_CONTROL_BODY_BYTES = 64 * 1024

/** Pull time limit when the request gives none, in seconds. */
export const DEFAULT_PULL_TIMEOUT_SECONDS = 300

/** Error body of every failed control request. */
export interface ControlErrorBody {
  error: { name: string, message: string }
}

/** One line of the newline-delimited JSON answer to a pull. */
export type PullEvent =
  | { type: 'progress', digest: string, receivedBytes: number, totalBytes: number }
  | { type: 'result', result: unknown }
  | { type: 'error', error: { name: string, message: string } }

