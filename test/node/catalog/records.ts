/**
 * Test helpers that make real signed tag records with fresh Ed25519 keys, and
 * catalogs over a LevelDatastore in a temporary folder.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { LevelDatastore } from 'datastore-level'
import { digestOf } from '../../../protocol/digest.js'
import { signTagRecord, type SignedTagRecord, type TagRecord } from '../../../protocol/tag-record.js'
import { Catalog, type CatalogInit } from '../../../node/catalog/catalog.js'
import type { Hlc } from '../../../protocol/hlc.js'
import type { PrivateKey } from '@libp2p/interface'

export const MANIFEST_MEDIA_TYPE = 'application/vnd.oci.image.manifest.v1+json'

/** A publisher key and its peer ID string. */
export interface Publisher {
  privateKey: PrivateKey
  peerId: string
}

export async function createPublisher (): Promise<Publisher> {
  const privateKey = await generateKeyPair('Ed25519')
  return { privateKey, peerId: peerIdFromPrivateKey(privateKey).toString() }
}

/** Signs a record pointing `repository:tag` at a manifest whose content is `content`. */
export async function signRecord (publisher: Publisher, fields: { repository: string, tag: string, hlc: Hlc, content?: string, deleted?: boolean }): Promise<SignedTagRecord> {
  const deleted = fields.deleted ?? false
  const record: TagRecord = {
    repository: fields.repository,
    tag: fields.tag,
    digest: deleted ? null : digestOf(new TextEncoder().encode(fields.content ?? `${fields.repository}:${fields.tag}@${fields.hlc.wallMs}`)),
    mediaType: deleted ? '' : MANIFEST_MEDIA_TYPE,
    sizeBytes: deleted ? 0 : 512,
    hlc: fields.hlc,
    publisher: publisher.peerId,
    deleted
  }
  return signTagRecord(record, publisher.privateKey)
}

/** A started catalog over a LevelDatastore in its own temporary folder. */
export interface TestCatalog {
  catalog: Catalog
  datastore: LevelDatastore
  folder: string
  /** Stops the catalog and closes the datastore, keeping the folder. */
  close: () => Promise<void>
  /** Closes and deletes the folder. */
  destroy: () => Promise<void>
}

export async function openCatalog (init: CatalogInit = {}, folder?: string): Promise<TestCatalog> {
  const path = folder ?? await mkdtemp(join(tmpdir(), 'kilomesh-catalog-'))
  const datastore = new LevelDatastore(join(path, 'datastore'))
  await datastore.open()
  const catalog = new Catalog({ datastore }, init)
  await catalog.start()

  const close = async (): Promise<void> => {
    await catalog.stop()
    await datastore.close()
  }
  return {
    catalog,
    datastore,
    folder: path,
    close,
    destroy: async () => {
      await close()
      await rm(path, { recursive: true, force: true })
    }
  }
}
