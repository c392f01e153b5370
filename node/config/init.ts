/** `kilomesh init`: creates a data directory, idempotently. */
import { mkdir, stat } from 'node:fs/promises'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { BlobStore } from '../store/blob-store.js'
import { OciLayout } from '../store/layout.js'
import { defaultConfig, saveConfig } from './config.js'
import { createIdentity, loadIdentity } from './identity.js'
import { dataDirPaths } from './paths.js'

export interface InitResult {
  dir: string
  peerId: string
  /** Files created by this call; empty when the directory was already complete. */
  created: string[]
}

async function exists (path: string): Promise<boolean> {
  try {
    await stat(path)
    return true
  } catch (err: any) {
    if (err.code === 'ENOENT') {
      return false
    }
    throw err
  }
}

/**
 * Creates the data directory, its OCI image layout, the identity key (mode
 * 0600) and config.json. Running it again changes nothing that exists.
 */
export async function initDataDir (root: string): Promise<InitResult> {
  const paths = dataDirPaths(root)
  const created: string[] = []

  await mkdir(root, { recursive: true, mode: 0o700 })

  for (const file of ['oci-layout', 'index.json']) {
    if (!await exists(`${root}/${file}`)) {
      created.push(file)
    }
  }
  await new OciLayout(root).init()
  await mkdir(new BlobStore(root).blobFolder, { recursive: true })

  if (await createIdentity(paths.identity)) {
    created.push('identity.key')
  }

  if (!await exists(paths.config)) {
    await saveConfig(paths.config, defaultConfig())
    created.push('config.json')
  }

  const peerId = peerIdFromPrivateKey(await loadIdentity(paths.identity)).toString()
  return { dir: root, peerId, created }
}
