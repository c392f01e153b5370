/**
 * Crash-safe file replacement: write a temporary file beside the target,
 * fsync it, rename it over the target, then fsync the folder so the rename
 * itself survives a power cut. Readers see the old file or the new one,
 * never a mix.
 */
import { randomBytes } from 'node:crypto'
import { open, rename, rm } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'

/** Flushes a folder's entries to disk, so that renames and unlinks inside it are durable. */
export async function fsyncDirectory (path: string): Promise<void> {
  const handle = await open(path, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/**
 * Shares a folder's fsyncs between the renames and unlinks that finish close
 * together. An fsync that starts after a change covers it, so a caller that
 * arrives while an fsync is queued joins that one, and a caller that arrives
 * while one runs waits for the next. Blobs stored in parallel then pay for
 * one folder fsync instead of one each.
 */
export class FolderSync {
  /** The fsync that runs now, if any. */
  private running: Promise<void> | undefined
  /** The fsync that starts when the running one ends. It covers every change made before it starts. */
  private queued: Promise<void> | undefined

  /** `syncFolder` flushes the folder. Tests pass fsyncDirectory wrapped in a counter. */
  constructor (readonly path: string, private readonly syncFolder: (path: string) => Promise<void> = fsyncDirectory) {}

  /** Resolves once an fsync of the folder that started after this call has finished. */
  async sync (): Promise<void> {
    if (this.queued != null) {
      return this.queued
    }

    const previous = this.running ?? Promise.resolve()
    const next: Promise<void> = previous.catch(() => {}).then(async () => {
      // From here on this fsync may already have started, so later callers queue another.
      this.queued = undefined
      this.running = next
      try {
        await this.syncFolder(this.path)
      } finally {
        if (this.running === next) {
          this.running = undefined
        }
      }
    })
    this.queued = next
    return next
  }
}

/** Writes `data` to `path` atomically, creating the file with `mode` (default 0o644). */
export async function writeFileAtomic (path: string, data: string | Uint8Array, options: { mode?: number } = {}): Promise<void> {
  const folder = dirname(path)
  const temporary = join(folder, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`)
  const handle = await open(temporary, 'wx', options.mode ?? 0o644)

  try {
    await handle.writeFile(data)
    await handle.sync()
  } catch (err) {
    await handle.close()
    await rm(temporary, { force: true })
    throw err
  }

  await handle.close()

  try {
    await rename(temporary, path)
  } catch (err) {
    await rm(temporary, { force: true })
    throw err
  }

  await fsyncDirectory(folder)
}
