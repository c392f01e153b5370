/**
 * OCI digests and their CIDs. kilomesh only accepts sha256 digests, so a
 * digest maps one-to-one to a CIDv1 with the raw codec whose multihash is the
 * same sha256 value.
 */
import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { sha256 } from 'multiformats/hashes/sha2'
import { InvalidDigestError } from './errors.js'

/** Multicodec code of raw bytes. */
export const RAW_CODEC = 0x55

const DIGEST_PATTERN = /^sha256:[0-9a-f]{64}$/

/** An OCI digest string known to be `sha256:` plus 64 lowercase hex characters. */
export type OciDigest = `sha256:${string}`

/** Returns true when `value` is a well-formed sha256 OCI digest. */
export function isDigest (value: unknown): value is OciDigest {
  return typeof value === 'string' && DIGEST_PATTERN.test(value)
}

/**
 * Checks a digest read from outside and returns it typed, or throws an error
 * that names the value. Digests are later used as file names, so this check
 * is also what keeps them from leaving the blob folder.
 */
export function parseDigest (value: unknown, what = 'digest'): OciDigest {
  if (isDigest(value)) {
    return value
  }

  const shown = typeof value === 'string' ? JSON.stringify(value.slice(0, 100)) : typeof value
  throw new InvalidDigestError(`invalid ${what} ${shown}: expected "sha256:" followed by 64 lowercase hex characters`)
}

/** Returns the 64 hex characters of a digest. */
export function digestHex (digest: OciDigest): string {
  return digest.slice('sha256:'.length)
}

/** Computes the OCI digest of a byte array. */
export function digestOf (bytes: Uint8Array): OciDigest {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`
}

/** Converts an OCI digest to its CIDv1 (raw codec, sha2-256 multihash). */
export function digestToCid (digest: OciDigest): CID {
  const hash = Buffer.from(digestHex(parseDigest(digest)), 'hex')
  return CID.createV1(RAW_CODEC, Digest.create(sha256.code, hash))
}

/** Converts a CID back to an OCI digest; only CIDv1 with a sha2-256 multihash are accepted. */
export function cidToDigest (cid: CID): OciDigest {
  if (cid.version !== 1 || cid.multihash.code !== sha256.code || cid.multihash.digest.byteLength !== 32) {
    throw new InvalidDigestError(`CID ${cid.toString()} is not a CIDv1 with a sha2-256 multihash, so it names no OCI blob`)
  }

  return `sha256:${Buffer.from(cid.multihash.digest).toString('hex')}`
}
