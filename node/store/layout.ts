/**
 * An OCI image layout folder: `oci-layout`, `index.json` and `blobs/`. The
 * agent's data directory is one, so skopeo or umoci can read it with no
 * kilomesh code, and exports are one too. Only index.json changes after
 * init; its writes are atomic and run one at a time per folder inside this
 * process, so concurrent setRef calls never lose each other's entries.
 *
 * @see https://github.com/opencontainers/image-spec/blob/main/image-layout.md
 */
import { mkdir, open, stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { logger } from '@libp2p/logger'
import { MAX_MANIFEST_BYTES } from '../../protocol/constants.js'
import { digestHex, parseDigest, type OciDigest } from '../../protocol/digest.js'
import { errorCode, errorMessage } from '../image/errors.js'
import { parseDescriptor, parseManifest, type Descriptor } from '../image/manifest.js'
import { OCI_INDEX, REF_NAME_ANNOTATION } from '../image/media-types.js'
import { writeFileAtomic } from './atomic-file.js'
import { InvalidDataDirectoryError } from './errors.js'
import type { AbortOptions } from '@libp2p/interface'

const log = logger('kilomesh:layout')

/** Name of the file that marks a folder as an OCI image layout. */
export const LAYOUT_MARKER_FILE = 'oci-layout'

/** Name of the layout's index of images. */
export const LAYOUT_INDEX_FILE = 'index.json'

/** Image layout version that kilomesh writes. */
export const IMAGE_LAYOUT_VERSION = '1.0.0'

/** The validated content of a layout's index.json. */
export interface LayoutIndex {
  schemaVersion: 2
  manifests: Descriptor[]
}

// Pending index.json writes per absolute layout path, shared by every OciLayout of this process.
const indexLocks = new Map<string, Promise<void>>()

async function withIndexLock <T> (path: string, task: () => Promise<T>): Promise<T> {
  const previous = indexLocks.get(path) ?? Promise.resolve()
  let release!: () => void
  const done = new Promise<void>(resolve => { release = resolve })
  const current = previous.then(async () => done)
  indexLocks.set(path, current)

  await previous
  try {
    return await task()
  } finally {
    release()
    if (indexLocks.get(path) === current) {
      indexLocks.delete(path)
    }
  }
}

/** Reads a file of at most MAX_MANIFEST_BYTES; returns undefined when it does not exist. */
async function readSmallFile (path: string, options?: AbortOptions): Promise<Uint8Array | undefined> {
  return (await readSmallFileWithStats(path, options))?.bytes
}

/** As readSmallFile, with the inode, size and mtime of the file the bytes came from. */
async function readSmallFileWithStats (path: string, options?: AbortOptions): Promise<{ bytes: Uint8Array, inode: number, sizeBytes: number, mtimeMs: number } | undefined> {
  let handle
  try {
    handle = await open(path, 'r')
  } catch (err) {
    if (errorCode(err) === 'ENOENT') {
      return undefined
    }
    throw err
  }

  try {
    const { ino, size, mtimeMs } = await handle.stat()
    if (size > MAX_MANIFEST_BYTES) {
      throw new InvalidDataDirectoryError(`${path} has ${size} bytes, more than the limit of ${MAX_MANIFEST_BYTES} bytes`)
    }
    return { bytes: await handle.readFile({ signal: options?.signal }), inode: ino, sizeBytes: size, mtimeMs }
  } finally {
    await handle.close()
  }
}

/** Validates the bytes of an `oci-layout` file; `path` names it in errors. */
export function parseLayoutMarker (bytes: Uint8Array, path: string): { imageLayoutVersion: string } {
  let body: unknown
  try {
    body = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch (err) {
    throw new InvalidDataDirectoryError(`${path} is not valid JSON (${errorMessage(err)}); an OCI image layout marker contains {"imageLayoutVersion":"${IMAGE_LAYOUT_VERSION}"}`)
  }

  const version = (body as { imageLayoutVersion?: unknown } | null)?.imageLayoutVersion
  if (typeof version !== 'string') {
    throw new InvalidDataDirectoryError(`${path} has no "imageLayoutVersion" string; an OCI image layout marker contains {"imageLayoutVersion":"${IMAGE_LAYOUT_VERSION}"}`)
  }

  return { imageLayoutVersion: version }
}

/** Validates the bytes of a layout's index.json; `path` names it in errors. */
export function parseLayoutIndex (bytes: Uint8Array, path: string): LayoutIndex {
  try {
    const parsed = parseManifest(bytes, OCI_INDEX)
    if (parsed.kind !== 'index') {
      throw new Error('expected an image index')
    }
    return { schemaVersion: 2, manifests: parsed.manifests }
  } catch (err) {
    throw new InvalidDataDirectoryError(`invalid OCI image layout index ${path}: ${errorMessage(err)}`)
  }
}

/** Returns the `org.opencontainers.image.ref.name` annotation of a descriptor, if any. */
export function refNameOf (descriptor: { annotations?: Record<string, string> }): string | undefined {
  return descriptor.annotations?.[REF_NAME_ANNOTATION]
}

function checkRefName (refName: string): string {
  // The name only ever lands inside JSON, so the check is for sanity, not path safety.
  if (refName === '' || refName.length > 1024 || /\p{Cc}/u.test(refName)) {
    throw new InvalidDataDirectoryError(`invalid image ref name ${JSON.stringify(refName.slice(0, 100))}: expected 1 to 1024 characters without control characters, for example "demo/httpd:v1"`)
  }

  return refName
}

/** An OCI image layout folder. */
export class OciLayout {
  readonly root: string
  readonly blobFolder: string
  readonly indexPath: string
  readonly markerPath: string
  /**
   * The bytes of index.json last read, with the inode, size and mtime they
   * were read at. Every write replaces the file through a rename, which gives
   * it a new inode, so a stat that matches all three means the bytes are
   * current and one system call replaces four.
   * NOTE: another program that rewrites the file in place, at the same size
   * and within one tick of the file system's clock, goes unnoticed.
   */
  private indexCache: { bytes: Uint8Array, inode: number, sizeBytes: number, mtimeMs: number } | undefined
  /** Counts this instance's writes of index.json, so a read that overlapped one is not cached. */
  private indexWrites = 0

  constructor (root: string) {
    this.root = resolve(root)
    this.blobFolder = join(this.root, 'blobs', 'sha256')
    this.indexPath = join(this.root, LAYOUT_INDEX_FILE)
    this.markerPath = join(this.root, LAYOUT_MARKER_FILE)
  }

  /** Returns the path of a blob inside the layout; the digest is checked first, so the path cannot leave the folder. */
  blobPath (digest: OciDigest): string {
    return join(this.blobFolder, digestHex(parseDigest(digest)))
  }

  /**
   * Creates the folder, `oci-layout` and an empty index.json where missing.
   * Existing files are validated and never rewritten, so a second init
   * changes nothing; an invalid one raises InvalidDataDirectoryError.
   */
  async init (options?: AbortOptions): Promise<void> {
    await mkdir(this.blobFolder, { recursive: true })

    const marker = await readSmallFile(this.markerPath, options)
    if (marker == null) {
      await writeFileAtomic(this.markerPath, JSON.stringify({ imageLayoutVersion: IMAGE_LAYOUT_VERSION }))
      log('created %s', this.markerPath)
    } else {
      parseLayoutMarker(marker, this.markerPath)
    }

    await withIndexLock(this.root, async () => {
      const index = await readSmallFile(this.indexPath, options)
      if (index == null) {
        await this.writeIndex(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] }))
        log('created %s', this.indexPath)
      } else {
        parseLayoutIndex(index, this.indexPath)
      }
    })
  }

  /** Reads and validates index.json. */
  async readIndex (options?: AbortOptions): Promise<LayoutIndex> {
    return (await this.readRawIndex(options)).index
  }

  /** Returns each named image of the layout, keyed by its ref name; for a repeated name the last entry wins. */
  async refs (options?: AbortOptions): Promise<Map<string, Descriptor>> {
    const refs = new Map<string, Descriptor>()
    for (const descriptor of (await this.readIndex(options)).manifests) {
      const refName = refNameOf(descriptor)
      if (refName != null) {
        refs.set(refName, descriptor)
      }
    }
    return refs
  }

  /**
   * Points `refName` at `descriptor`, replacing any entry with the same ref
   * name and keeping every other entry byte for byte (fields kilomesh does
   * not model included).
   */
  async setRef (refName: string, descriptor: Descriptor, options?: AbortOptions): Promise<void> {
    checkRefName(refName)
    const checked = parseDescriptor(descriptor, `descriptor for ${refName}`)

    const entry: Descriptor = { mediaType: checked.mediaType, digest: checked.digest, size: checked.size }
    if (checked.platform != null) {
      entry.platform = checked.platform
    }
    entry.annotations = { ...checked.annotations, [REF_NAME_ANNOTATION]: refName }

    await withIndexLock(this.root, async () => {
      const { raw } = await this.readRawIndex(options)
      raw.manifests = [...raw.manifests.filter(other => refNameOf(other) !== refName), entry]
      await this.writeIndex(JSON.stringify(raw))
    })
    log('set ref %s to %s', refName, checked.digest)
  }

  /** Removes every entry named `refName`; returns false when there was none. */
  async removeRef (refName: string, options?: AbortOptions): Promise<boolean> {
    return withIndexLock(this.root, async () => {
      const { raw } = await this.readRawIndex(options)
      const remaining = raw.manifests.filter(other => refNameOf(other) !== refName)
      if (remaining.length === raw.manifests.length) {
        return false
      }

      raw.manifests = remaining
      await this.writeIndex(JSON.stringify(raw))
      log('removed ref %s', refName)
      return true
    })
  }

  /** Reads index.json both validated and as raw JSON, so rewrites keep fields kilomesh does not model. */
  private async readRawIndex (options?: AbortOptions): Promise<{ index: LayoutIndex, raw: { manifests: Array<{ annotations?: Record<string, string> }> } }> {
    options?.signal?.throwIfAborted()

    const bytes = await this.readIndexBytes(options)
    if (bytes == null) {
      throw new InvalidDataDirectoryError(`${this.root} is not an OCI image layout: ${LAYOUT_INDEX_FILE} is missing (initialise the folder first, for example with "kilomesh init")`)
    }

    const index = parseLayoutIndex(bytes, this.indexPath)
    // parseLayoutIndex has checked that this is a JSON object whose "manifests" is an array of valid descriptors.
    const raw = JSON.parse(new TextDecoder().decode(bytes)) as { manifests: Array<{ annotations?: Record<string, string> }> }
    return { index, raw }
  }

  /** Reads index.json, or returns the bytes read before when the file has not been replaced since. */
  private async readIndexBytes (options?: AbortOptions): Promise<Uint8Array | undefined> {
    let info
    try {
      info = await stat(this.indexPath)
    } catch (err) {
      if (errorCode(err) === 'ENOENT') {
        return undefined
      }
      throw err
    }

    const cached = this.indexCache
    if (cached?.inode === info.ino && cached.sizeBytes === info.size && cached.mtimeMs === info.mtimeMs) {
      return cached.bytes
    }

    // The stats come from the handle the bytes are read through, so they
    // describe the same file even when another writer replaces it meanwhile.
    const writesBefore = this.indexWrites
    const read = await readSmallFileWithStats(this.indexPath, options)
    if (this.indexWrites === writesBefore) {
      this.indexCache = read
    }
    return read?.bytes
  }

  /** Replaces index.json. The cache is dropped, and a read that overlaps the write does not fill it. */
  private async writeIndex (json: string): Promise<void> {
    this.indexWrites++
    this.indexCache = undefined
    try {
      await writeFileAtomic(this.indexPath, json)
    } finally {
      this.indexWrites++
      this.indexCache = undefined
    }
  }
}
