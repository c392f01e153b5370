/**
 * Every simulated agent shares one process, so an exception that escapes
 * agent code would end the whole run, every node at once. While a run
 * lasts, uncaught exceptions and unhandled rejections are caught instead,
 * recorded as failures of the run with the first lines of their stack, and
 * the run goes on. On a device the same error would crash that agent.
 */

/** Stack frames kept in the failure message. */
const STACK_LINES = 4

function describe (kind: string, error: unknown): string {
  if (error instanceof Error) {
    // Node's own frames come first for errors such as stream aborts, and the first project or package frames are more useful.
    const frames = (error.stack ?? '').split('\n').slice(1).map(line => line.trim()).filter(line => !line.includes('node:internal')).slice(0, STACK_LINES)
    return `${kind} in the agent code: ${error.name}: ${error.message}${frames.length > 0 ? ` (${frames.join('; ')})` : ''}`
  }
  return `${kind} in the agent code: ${String(error)}`
}

/** Starts catching; returns the function that stops it. */
export function catchUncaught (onError: (text: string) => void): () => void {
  const onException = (error: Error): void => { onError(describe('uncaught exception', error)) }
  const onRejection = (reason: unknown): void => { onError(describe('unhandled rejection', reason)) }
  process.on('uncaughtException', onException)
  process.on('unhandledRejection', onRejection)
  return () => {
    process.removeListener('uncaughtException', onException)
    process.removeListener('unhandledRejection', onRejection)
  }
}
