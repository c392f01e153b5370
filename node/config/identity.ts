/**
 * The device's persistent libp2p identity: an Ed25519 private key stored as
 * its libp2p protobuf encoding in `identity.key`, readable by the owner only.
 */
import { chmod, readFile, stat } from 'node:fs/promises'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { writeFileAtomic } from '../store/atomic-file.js'
import { InvalidConfigError, NotInitializedError } from './errors.js'
import type { PrivateKey } from '@libp2p/interface'

/** File mode of the identity key: read and write for the owner only. */
export const IDENTITY_FILE_MODE = 0o600

/** Creates the identity key unless it exists; returns true when a new key was written. */
export async function createIdentity (path: string): Promise<boolean> {
  try {
    await stat(path)
    return false
  } catch (err: any) {
    if (err.code !== 'ENOENT') {
      throw err
    }
  }

  const key = await generateKeyPair('Ed25519')
  await writeFileAtomic(path, privateKeyToProtobuf(key), { mode: IDENTITY_FILE_MODE })
  return true
}

/** Loads the identity key; tightens its mode to 0600 when it is readable by others. */
export async function loadIdentity (path: string): Promise<PrivateKey> {
  let bytes: Uint8Array
  try {
    bytes = await readFile(path)
  } catch (err: any) {
    if (err.code === 'ENOENT') {
      throw new NotInitializedError(`identity key ${path} does not exist; run "kilomesh init" first`)
    }
    throw err
  }

  const info = await stat(path)
  if ((info.mode & 0o077) !== 0) {
    await chmod(path, IDENTITY_FILE_MODE)
  }

  try {
    return privateKeyFromProtobuf(bytes)
  } catch (err: any) {
    throw new InvalidConfigError(`identity key ${path} is not a libp2p private key (${err.message}); restore it from a backup, or move it away and run "kilomesh init" to create a new identity`)
  }
}
