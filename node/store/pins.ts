/**
 * Pins of subscribed tags for A/B rollback: per tag, the version this device
 * made local last (current) and the one before it (previous). Garbage
 * collection never evicts a blob reachable from a pinned version. Pins live
 * in `pins.json` in the data directory, rewritten atomically on each change.
 */
import { readFile, rename } from 'node:fs/promises'
import { join } from 'node:path'
import { logger } from '@libp2p/logger'
import { parseDigest, type OciDigest } from '../../protocol/digest.js'
import { writeFileAtomic } from './atomic-file.js'

const log = logger('kilomesh:pins')

/** Name of the pin file inside the data directory. */
export const PIN_FILE = 'pins.json'

/** A version of a tag: the digest, media type and size of its manifest or index. */
export interface TagVersion {
  digest: OciDigest
  mediaType: string
  size: number
}

/** The pinned versions of one tag. */
export interface TagPins {
  current: TagVersion
  previous?: TagVersion
}

function parseVersion (value: any): TagVersion {
  const size = Number(value?.size)
  if (!Number.isSafeInteger(size) || size < 0 || typeof value?.mediaType !== 'string') {
    throw new Error(`invalid pinned version ${JSON.stringify(value)}: expected digest, mediaType and size`)
  }
  return { digest: parseDigest(value.digest), mediaType: value.mediaType, size }
}

function copyVersion (version: TagVersion): TagVersion {
  return { digest: version.digest, mediaType: version.mediaType, size: version.size }
}

/** The pins of every subscribed tag, keyed by "REPOSITORY:TAG". */
export class PinFile {
  readonly path: string
  private readonly pins = new Map<string, TagPins>()
  private writing: Promise<unknown> = Promise.resolve()

  constructor (root: string) {
    this.path = join(root, PIN_FILE)
  }

  /**
   * Reads pins.json. A missing file means no pins. A damaged one is moved
   * aside and the pins start empty, because the catalog's history and
   * index.json still protect the versions that matter most.
   */
  async load (): Promise<void> {
    let text: string
    try {
      text = await readFile(this.path, 'utf8')
    } catch (err: any) {
      if (err.code === 'ENOENT') {
        return
      }
      throw err
    }

    try {
      const body = JSON.parse(text) as { tags?: Record<string, { current?: unknown, previous?: unknown }> }
      for (const [key, entry] of Object.entries(body.tags ?? {})) {
        this.pins.set(key, { current: parseVersion(entry.current), ...(entry.previous != null ? { previous: parseVersion(entry.previous) } : {}) })
      }
    } catch (err: any) {
      this.pins.clear()
      const aside = `${this.path}.damaged-${Date.now()}`
      await rename(this.path, aside)
      log.error('%s is damaged (%s); moved it to %s and starting without pins', this.path, err.message, aside)
    }
  }

  /** Returns the pins of one tag. */
  get (key: string): TagPins | undefined {
    return this.pins.get(key)
  }

  /** Returns every tag's pins. */
  entries (): Array<[string, TagPins]> {
    return [...this.pins.entries()]
  }

  /**
   * Makes `version` the tag's current version. The old current becomes the
   * previous one when its digest differs, so a repeated pull of one version
   * keeps the older fallback.
   */
  async record (key: string, version: TagVersion): Promise<TagPins> {
    const old = this.pins.get(key)
    const pins: TagPins = old == null || old.current.digest === version.digest
      ? { current: copyVersion(version), ...(old?.previous != null ? { previous: old.previous } : {}) }
      : { current: copyVersion(version), previous: old.current }

    this.pins.set(key, pins)
    await this.save()
    return pins
  }

  /** Sets both versions of a tag, as a local rollback does. */
  async set (key: string, pins: TagPins): Promise<void> {
    this.pins.set(key, { current: copyVersion(pins.current), ...(pins.previous != null ? { previous: copyVersion(pins.previous) } : {}) })
    await this.save()
  }

  /** Drops the pins of tags for which `keep` returns false; returns the keys dropped. */
  async retain (keep: (key: string) => boolean): Promise<string[]> {
    const dropped = [...this.pins.keys()].filter(key => !keep(key))
    if (dropped.length === 0) {
      return dropped
    }

    dropped.forEach(key => this.pins.delete(key))
    await this.save()
    return dropped
  }

  /** Writes the pins in memory; writes run one at a time and each one writes the latest state. */
  private async save (): Promise<void> {
    const next = this.writing.catch(() => {}).then(async () => {
      const tags = Object.fromEntries([...this.pins.entries()].sort(([a], [b]) => a.localeCompare(b)))
      await writeFileAtomic(this.path, `${JSON.stringify({ tags }, null, 2)}\n`)
    })
    this.writing = next
    await next
  }
}
