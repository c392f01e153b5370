/**
 * Safe extraction of image archives (OCI archives and `docker save` output,
 * optionally gzip-compressed) into a private staging folder. Entry names are
 * checked before anything is written: no absolute paths and no `..`
 * components. Links are never created on disk. They are recorded and
 * followed by name, and must point at entries inside the archive. So every
 * file this module writes or returns is inside the staging folder.
 */
import { createReadStream } from 'node:fs'
import { lstat, mkdir, open } from 'node:fs/promises'
import { dirname, join, posix } from 'node:path'
import { pipeline } from 'node:stream'
import { createGunzip } from 'node:zlib'
import { logger } from '@libp2p/logger'
import tar, { type Extract } from 'tar-stream'
import { InvalidImageSourceError, UnsafeArchiveEntryError, errorCode, errorMessage } from './errors.js'
import type { AbortOptions } from '@libp2p/interface'

const log = logger('kilomesh:image:archive')

/** Most links followed while resolving one name, as Linux's MAXSYMLINKS (40). */
const MAX_LINK_HOPS = 40

/** The files of an extracted archive, looked up by entry name with links followed. */
export class ArchiveTree {
  /** Link entries: normalized entry name to the normalized name it points at. */
  readonly links = new Map<string, string>()

  constructor (readonly archive: string, readonly root: string) {}

  /** Follows links in every component of `name` and returns the entry name it ends at. */
  resolveName (name: string): string {
    let parts = name.split('/').filter(part => part !== '')
    let hops = 0

    for (let i = 1; i <= parts.length; i++) {
      const target = this.links.get(parts.slice(0, i).join('/'))
      if (target == null) {
        continue
      }

      if (++hops > MAX_LINK_HOPS) {
        throw new UnsafeArchiveEntryError(`archive ${this.archive}: too many levels of links while resolving ${JSON.stringify(name)}`)
      }
      parts = [...target.split('/').filter(part => part !== ''), ...parts.slice(i)]
      i = 0
    }

    return parts.join('/')
  }

  /** Returns the staged path of the regular file named `name` (links followed), or undefined when there is none. */
  async locate (name: string): Promise<string | undefined> {
    const resolved = this.resolveName(normalizeEntryName(name, this.archive))
    if (resolved === '') {
      return undefined
    }

    const path = join(this.root, resolved)
    try {
      return (await lstat(path)).isFile() ? path : undefined
    } catch (err) {
      if (errorCode(err) === 'ENOENT' || errorCode(err) === 'ENOTDIR') {
        return undefined
      }
      throw err
    }
  }
}

/**
 * Returns an entry name without `./` and repeated slashes, or throws
 * UnsafeArchiveEntryError for an absolute name or one with a `..` component.
 */
export function normalizeEntryName (name: string, archive: string): string {
  if (name.includes('\0')) {
    throw new UnsafeArchiveEntryError(`archive ${archive} has an entry name containing a NUL byte`)
  }

  if (name.startsWith('/')) {
    throw new UnsafeArchiveEntryError(`archive ${archive} has an entry with the absolute path ${JSON.stringify(name)}; image archives only contain relative paths`)
  }

  const parts = name.split('/').filter(part => part !== '' && part !== '.')
  if (parts.includes('..')) {
    throw new UnsafeArchiveEntryError(`archive ${archive} has an entry ${JSON.stringify(name)} with a ".." component, which could write outside the extraction folder`)
  }

  return parts.join('/')
}

/** Resolves a symbolic link's target against the folder of the link, rejecting targets outside the archive. */
function symlinkTarget (name: string, target: string, archive: string): string {
  if (target === '' || target.startsWith('/')) {
    throw new UnsafeArchiveEntryError(`archive ${archive} has a symbolic link ${JSON.stringify(name)} to ${JSON.stringify(target)}; links must be relative and stay inside the archive`)
  }

  const resolved = posix.normalize(posix.join(posix.dirname(name), target))
  if (resolved === '..' || resolved.startsWith('../')) {
    throw new UnsafeArchiveEntryError(`archive ${archive} has a symbolic link ${JSON.stringify(name)} to ${JSON.stringify(target)}, which points outside the archive`)
  }

  return resolved === '.' ? '' : resolved
}

async function drain (entry: AsyncIterable<unknown>): Promise<void> {
  // Skipped entries still have to be read to reach the next header.
  for await (const chunk of entry) {
    void chunk
  }
}

async function writeEntry (entry: AsyncIterable<Uint8Array>, path: string, options?: AbortOptions): Promise<void> {
  await mkdir(dirname(path), { recursive: true })
  const handle = await open(path, 'w', 0o600)
  try {
    for await (const chunk of entry) {
      options?.signal?.throwIfAborted()
      let written = 0
      while (written < chunk.byteLength) {
        written += (await handle.write(chunk, written, chunk.byteLength - written)).bytesWritten
      }
    }
  } finally {
    await handle.close()
  }
}

/**
 * Opens the archive, transparently decompressing it when it starts with the
 * gzip magic bytes.
 * NOTE: extraction has no size limit, so a gzip bomb can fill the data directory's disk.
 */
async function openArchive (archive: string, options?: AbortOptions): Promise<AsyncIterable<Uint8Array>> {
  const handle = await open(archive, 'r')
  const magic = new Uint8Array(2)
  try {
    await handle.read(magic, 0, 2, 0)
  } finally {
    await handle.close()
  }

  const input = createReadStream(archive, { signal: options?.signal })
  if (magic[0] !== 0x1f || magic[1] !== 0x8b) {
    return input
  }

  // pipeline destroys both streams on an error, so the consumer gets the error from the gunzip stream.
  return pipeline(input, createGunzip(), () => {})
}

/** Writes the archive's bytes into the tar parser, respecting back-pressure, and destroys the parser with any read error. */
async function feed (source: AsyncIterable<Uint8Array>, extract: Extract): Promise<void> {
  try {
    for await (const chunk of source) {
      if (extract.destroyed) {
        return
      }
      if (!extract.write(chunk)) {
        await new Promise<void>(resolve => {
          const done = (): void => {
            extract.off('drain', done)
            extract.off('close', done)
            resolve()
          }
          extract.on('drain', done)
          extract.on('close', done)
        })
      }
    }
    extract.end(undefined)
  } catch (err) {
    extract.destroy(err as Error)
  }
}

/**
 * Extracts a tar (or tar.gz) archive into `destination`, a new empty folder,
 * streaming each file to disk. Throws UnsafeArchiveEntryError for an unsafe
 * entry and InvalidImageSourceError for a truncated or malformed archive.
 */
export async function extractArchive (archive: string, destination: string, options?: AbortOptions): Promise<ArchiveTree> {
  const tree = new ArchiveTree(archive, destination)
  const extract = tar.extract()
  const feeding = feed(await openArchive(archive, options), extract)
  let entryCount = 0

  try {
    for await (const entry of extract) {
      options?.signal?.throwIfAborted()
      const { header } = entry
      const name = normalizeEntryName(header.name, archive)
      entryCount++

      switch (header.type) {
        case 'file':
        case 'contiguous-file':
          if (name === '') {
            throw new UnsafeArchiveEntryError(`archive ${archive} has a file entry with an empty name`)
          }
          tree.links.delete(name)
          await writeEntry(entry as AsyncIterable<Uint8Array>, join(destination, name), options)
          break
        case 'directory':
          await drain(entry)
          break
        case 'symlink':
          tree.links.set(name, symlinkTarget(name, header.linkname ?? '', archive))
          await drain(entry)
          break
        case 'link':
          // A hard link names its target from the archive root.
          tree.links.set(name, normalizeEntryName(header.linkname ?? '', archive))
          await drain(entry)
          break
        default:
          log('skipping %s entry %s of %s', header.type, name, archive)
          await drain(entry)
      }
    }
  } catch (err) {
    extract.destroy()
    await feeding

    // Unsafe entries, aborts and file system errors (they carry a syscall) keep their own error.
    if (err instanceof UnsafeArchiveEntryError || (err instanceof Error && err.name === 'AbortError') || (err as { syscall?: unknown }).syscall != null) {
      throw err
    }
    throw new InvalidImageSourceError(`cannot read archive ${archive}: it is truncated or not a tar file (${errorMessage(err)})`)
  }

  await feeding
  log('extracted %d entries of %s', entryCount, archive)
  return tree
}
