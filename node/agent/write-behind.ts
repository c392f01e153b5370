/**
 * Delays the writes of blobs that the registry fetched into memory and has
 * already sent to its client. A client pulls an image one blob after the
 * other. Each write is a temporary file, an fsync, a rename and a folder
 * fsync, and it competed for the CPU and libuv's thread pool with the fetch
 * and the response of the next blob. In the registry benchmark, a 300 ms
 * delay took 2 to 5 ms off the median cold pull of busybox's two platforms
 * through the mesh (59 ms before, in three runs on a 2-core machine). The
 * bytes stay in memory meanwhile, within the budget of fetches into memory,
 * and registry requests for the blob are served from there. A pull or a
 * peer's request for the blob starts its write at once instead.
 */
import { logger } from '@libp2p/logger'

const log = logger('kilomesh:registry:write-behind')

/**
 * Time a write of a blob fetched into memory waits before it starts, in ms:
 * longer than the gaps between a client's requests while it pulls one image,
 * short enough that the blob is on disk soon after the pull.
 */
export const WRITE_BEHIND_MS = 300

export class WriteBehind {
  /** Starts of the writes that wait, by the key each waits under. */
  private readonly waiting = new Map<string, () => void>()
  /** Set by `flushAll`: the registry is stopping, so later writes start at once. */
  private closed = false

  constructor (private readonly delayMs = WRITE_BEHIND_MS) {}

  /** Number of writes that wait. */
  get size (): number {
    return this.waiting.size
  }

  /**
   * Resolves once the delay has passed, or at once when `atOnce` is true,
   * `flush(key)` or `flushAll` runs, or `flushAll` ran before. One write
   * waits per key at a time, so a second wait under the same key starts at once.
   */
  async wait (key: string, atOnce = false): Promise<void> {
    if (atOnce || this.closed || this.delayMs <= 0 || this.waiting.has(key)) {
      return
    }

    await new Promise<void>(resolve => {
      const timer = setTimeout(() => { start() }, this.delayMs)
      const start = (): void => {
        clearTimeout(timer)
        this.waiting.delete(key)
        resolve()
      }
      this.waiting.set(key, start)
    })
  }

  /** Starts the write waiting under `key` now, if one waits. Returns true when one did. */
  flush (key: string): boolean {
    const start = this.waiting.get(key)
    start?.()
    return start != null
  }

  /** Starts every waiting write now and every later one at once, as the registry stops, so that no fetched blob is lost. */
  flushAll (): void {
    this.closed = true
    if (this.waiting.size > 0) {
      log('starting %d delayed writes now', this.waiting.size)
    }
    for (const start of [...this.waiting.values()]) {
      start()
    }
  }
}
