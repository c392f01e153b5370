/**
 * The registry API's view of the agent: the content store, the tag catalog
 * and the mesh. The agent implements it with its store, catalog and
 * fetcher, and tests implement it on a bare BlobStore.
 */
import type { OciDigest } from '../../protocol/digest.js'
import type { Descriptor } from '../image/manifest.js'
import type { BlobStore } from '../store/blob-store.js'
import type { AbortOptions } from '@libp2p/interface'

/** The agent's side of the registry API. */
export interface RegistryBackend {
  readonly store: BlobStore
  /** Current manifest descriptor of a tag: local catalog first, else asked of peers within the
   *  signal's time. Undefined when no one knows the tag (or it was deleted). */
  resolveTag (repository: string, tag: string, options?: AbortOptions): Promise<Descriptor | undefined>
  /** Makes a blob local, fetching it through the mesh; false when no source has it in time. */
  fetchBlob (digest: OciDigest, options?: AbortOptions & { sizeBytes?: number }): Promise<boolean>
  /** Signs, stores and announces a tag record for a manifest already in the store. */
  publishTag (repository: string, tag: string, descriptor: Descriptor, options?: AbortOptions): Promise<void>
  /** Publishes a tombstone for a tag; false when the tag did not exist. */
  deleteTag (repository: string, tag: string, options?: AbortOptions): Promise<boolean>
  listRepositories (options?: AbortOptions): Promise<string[]>
  listTags (repository: string, options?: AbortOptions): Promise<string[]>
}
