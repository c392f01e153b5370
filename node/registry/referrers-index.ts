/**
 * Index of stored manifests by their subject, for the referrers API. Blobs
 * are immutable, so each stored blob is examined once per process and the
 * result cached. A listing only reads blobs it has not seen before. Pushed
 * manifests are recorded as they arrive; manifests that came through the
 * mesh are found by the next listing's scan of the store.
 */
import { open } from 'node:fs/promises'
import { logger } from '@libp2p/logger'
import { MAX_MANIFEST_BYTES } from '../../protocol/constants.js'
import { isDigest, type OciDigest } from '../../protocol/digest.js'
import { parseManifest } from '../image/manifest.js'
import type { BlobStore } from '../store/blob-store.js'
import type { AbortOptions } from '@libp2p/interface'

const log = logger('kilomesh:registry:referrers')

/** A descriptor in a referrers response, as the OCI distribution spec lays it out. */
export interface ReferrerDescriptor {
  mediaType: string
  digest: OciDigest
  size: number
  artifactType?: string
  annotations?: Record<string, string>
}

interface Referrer {
  subject: OciDigest
  descriptor: ReferrerDescriptor
}

function isStringRecord (value: unknown): value is Record<string, string> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) &&
    Object.values(value).every(entry => typeof entry === 'string')
}

/**
 * Returns the subject and descriptor of a manifest that has a subject, or
 * null for anything else (a manifest without subject, a config, a layer).
 */
export function describeReferrer (digest: OciDigest, bytes: Uint8Array): Referrer | null {
  let manifest
  let body: Record<string, unknown>
  try {
    manifest = parseManifest(bytes)
    body = JSON.parse(Buffer.from(bytes).toString('utf8')) as Record<string, unknown>
  } catch {
    return null
  }

  // parseManifest keeps the subject of an image manifest; an index may carry one too since OCI 1.1.
  const subjectDigest = manifest.kind === 'image' ? manifest.subject?.digest : (body.subject as { digest?: unknown } | undefined)?.digest
  if (!isDigest(subjectDigest)) {
    return null
  }

  const descriptor: ReferrerDescriptor = { mediaType: manifest.mediaType, digest, size: bytes.byteLength }
  // The spec falls back to the config's media type when a manifest has no artifactType.
  if (typeof body.artifactType === 'string') {
    descriptor.artifactType = body.artifactType
  } else if (manifest.kind === 'image') {
    descriptor.artifactType = manifest.config.mediaType
  }
  if (isStringRecord(body.annotations)) {
    descriptor.annotations = body.annotations
  }

  return { subject: subjectDigest, descriptor }
}

/** Referrers of stored manifests, built lazily from the content store. */
export class ReferrersIndex {
  /** Every blob examined so far: its referrer entry, or null when it refers to nothing. */
  private readonly examined = new Map<OciDigest, Referrer | null>()

  constructor (private readonly store: BlobStore) {}

  /** Records a manifest that was just stored. */
  add (digest: OciDigest, bytes: Uint8Array): void {
    this.examined.set(digest, describeReferrer(digest, bytes))
  }

  /** Lists the stored manifests whose subject is `subject`, sorted by digest. */
  async list (subject: OciDigest, options?: AbortOptions): Promise<ReferrerDescriptor[]> {
    const present = await this.scan(options)

    const referrers: ReferrerDescriptor[] = []
    for (const [digest, referrer] of this.examined) {
      if (referrer?.subject === subject && present.has(digest)) {
        referrers.push(referrer.descriptor)
      }
    }
    return referrers.sort((a, b) => a.digest.localeCompare(b.digest))
  }

  /** Examines the stored blobs not seen yet; returns the digests currently stored. */
  private async scan (options?: AbortOptions): Promise<Set<OciDigest>> {
    const present = new Set<OciDigest>()

    for (const info of await this.store.list()) {
      options?.signal?.throwIfAborted()
      present.add(info.digest)
      if (this.examined.has(info.digest)) {
        continue
      }

      if (info.sizeBytes > MAX_MANIFEST_BYTES || !await this.startsWithBrace(info.digest)) {
        this.examined.set(info.digest, null)
        continue
      }

      try {
        this.examined.set(info.digest, describeReferrer(info.digest, await this.store.read(info.digest, options)))
      } catch (err) {
        // A blob removed or found corrupt meanwhile is examined again next time, if it comes back.
        log('could not examine blob %s for referrers - %e', info.digest, err)
      }
    }

    for (const digest of this.examined.keys()) {
      if (!present.has(digest)) {
        this.examined.delete(digest)
      }
    }
    return present
  }

  /** Reads one byte: only JSON objects can be manifests, so layers are skipped without being read whole. */
  private async startsWithBrace (digest: OciDigest): Promise<boolean> {
    try {
      const handle = await open(this.store.pathOf(digest), 'r')
      try {
        const { bytesRead, buffer } = await handle.read(Buffer.alloc(1), 0, 1, 0)
        return bytesRead === 1 && buffer[0] === 0x7b
      } finally {
        await handle.close()
      }
    } catch {
      return false
    }
  }
}
