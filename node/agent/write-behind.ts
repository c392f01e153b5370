/**
 * Delays the writes of blobs that the registry fetched into memory and has
 * already sent to its client. A client pulls an image one blob after the
 * other. Each write is a temporary file, an fsync, a rename and a folder
 * fsync, and it competed for the CPU and libuv's thread pool with the fetch
 * and the response of the next blob. In the registry benchmark, a 300 ms
 * delay took about 3 to 5 ms off the median cold pull of busybox's two
 * platforms through the mesh. The bytes stay in memory meanwhile, within
 * the budget of fetches into memory, and requests for the blob are served
 * from there.
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
  /** Starts of the writes that wait, by an id of each. */
  private readonly waiting = new Map<number, () => void>()
  private nextId = 0

  constructor (private readonly delayMs = WRITE_BEHIND_MS) {}

  /** Number of writes that wait. */
  get size (): number {
    return this.waiting.size
  }

  /** Resolves once the delay has passed, or at once when `atOnce` is true or `flush` runs. */
  async wait (atOnce = false): Promise<void> {
    if (atOnce || this.delayMs <= 0) {
      return
    }

    const id = this.nextId++
    await new Promise<void>(resolve => {
      const timer = setTimeout(() => { start() }, this.delayMs)
      const start = (): void => {
        clearTimeout(timer)
        this.waiting.delete(id)
        resolve()
      }
      this.waiting.set(id, start)
    })
  }

  /** Starts every waiting write now, as the registry stops, so that no fetched blob is lost. */
  flush (): void {
    if (this.waiting.size > 0) {
      log('starting %d delayed writes now', this.waiting.size)
    }
    for (const start of [...this.waiting.values()]) {
      start()
    }
  }
}
