/**
 * The registry API's view of the agent: the content store, the tag catalog
 * and the mesh. The agent implements it with its store, catalog and
 * fetcher, and tests implement it on a bare BlobStore.
 */
import type { ArrivingBlob } from './arriving-blob.js'
import type { OciDigest } from '../../protocol/digest.js'
import type { Descriptor } from '../image/manifest.js'
import type { BlobStore } from '../store/blob-store.js'
import type { AbortOptions } from '@libp2p/interface'

/**
 * A blob that a mesh fetch made available. A blob of up to a few MB may be
 * fetched into memory and served from there while it is still being written
 * to the store, so a client does not wait for the write and its fsyncs.
 */
export interface FetchedBlob {
  /** The blob's bytes, already checked against its digest; absent when the fetch went straight to the store. */
  bytes?: Uint8Array
  /**
   * A large blob that is still arriving from a peer, in place of `bytes`.
   * When it fails, the blob is fetched again the usual way
   * (see ensureLocal).
   */
  arriving?: ArrivingBlob
  /** Resolves to true once the blob is in the content store, or to false when storing it failed. Never rejects. */
  stored: Promise<boolean>
}

/** Options of a mesh fetch. The signal is the client's: it aborts when the client gives up. */
export interface FetchBlobOptions extends AbortOptions {
  /**
   * Time for a source to start sending the blob. A transfer that started in
   * time runs on for as long as it makes progress, so a slow link can
   * deliver a large blob.
   */
  startTimeoutMs?: number
  /** Size from the descriptor that references the blob. */
  sizeBytes?: number
  /** Largest size accepted when no descriptor gives it, such as a manifest requested by digest. A larger blob is not fetched. */
  maxSizeBytes?: number
  /** Digest of the manifest that references the blob; the peer that supplied that manifest is asked first. */
  parent?: OciDigest
  /**
   * The caller waits for `stored`, not only for the bytes, so a blob fetched
   * into memory is written without the delay that otherwise keeps writes out
   * of the client's next requests.
   */
  storeAtOnce?: boolean
}

/** The agent's side of the registry API. */
export interface RegistryBackend {
  readonly store: BlobStore
  /** Current manifest descriptor of a tag: local catalog first, else asked of peers within the
   *  signal's time. Undefined when no one knows the tag (or it was deleted). */
  resolveTag (repository: string, tag: string, options?: AbortOptions): Promise<Descriptor | undefined>
  /**
   * Makes a blob local, fetching it through the mesh; undefined when no
   * source starts sending it within `startTimeoutMs`, or the transfer
   * fails. Returned bytes must already match the digest.
   */
  fetchBlob (digest: OciDigest, options?: FetchBlobOptions): Promise<FetchedBlob | undefined>
  /**
   * Signs, stores and announces a tag record for a manifest already in the
   * store. Returns a warning for the client when other agents are expected
   * to reject the record, such as a repository that another publisher owns.
   */
  publishTag (repository: string, tag: string, descriptor: Descriptor, options?: AbortOptions): Promise<string | undefined>
  /** Publishes a tombstone for a tag; false when the tag did not exist. */
  deleteTag (repository: string, tag: string, options?: AbortOptions): Promise<boolean>
  listRepositories (options?: AbortOptions): Promise<string[]>
  listTags (repository: string, options?: AbortOptions): Promise<string[]>
}
