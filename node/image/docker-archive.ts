/**
 * Conversion of a `docker save` archive into an OCI image. The archive's
 * manifest.json names a config file and one tar per layer (in older archives
 * `<id>/layer.tar`, often a symbolic link to `<digest>.tar`). The result is an
 * OCI image manifest whose config digest is the sha256 of the Docker config
 * and whose layers keep their bytes (so their digests stay those of the
 * files), with media types chosen from each layer's compression.
 *
 * @see https://github.com/moby/moby/blob/master/image/spec/v1.2.md
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { pipeline } from 'node:stream'
import { createGunzip } from 'node:zlib'
import { MAX_MANIFEST_BYTES } from '../../protocol/constants.js'
import { digestOf, isDigest, type OciDigest } from '../../protocol/digest.js'
import { DigestMismatchError } from '../../protocol/errors.js'
import { normalizeEntryName, type ArchiveTree } from './archive.js'
import { MapBlobSource, readLocation, type BlobLocation } from './blob-source.js'
import { AmbiguousImageError, InvalidImageSourceError, errorMessage } from './errors.js'
import { OCI_CONFIG, OCI_LAYER_TAR, OCI_LAYER_TAR_GZIP, OCI_MANIFEST } from './media-types.js'
import type { LayoutSelection } from './layout-source.js'
import type { Descriptor } from './manifest.js'
import type { AbortOptions } from '@libp2p/interface'

/** One image of a docker save manifest.json. */
interface DockerImageEntry {
  Config: string
  RepoTags: string[]
  Layers: string[]
}

/** The converted image: its blobs and the root descriptor, plus the repository tag it was chosen by. */
export interface DockerConversion extends LayoutSelection {
  source: MapBlobSource
}

function invalid (archive: string, problem: string): InvalidImageSourceError {
  return new InvalidImageSourceError(`invalid docker save archive ${archive}: ${problem}`)
}

function parseEntries (bytes: Uint8Array, archive: string): DockerImageEntry[] {
  let body: unknown
  try {
    body = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch (err) {
    throw invalid(archive, `manifest.json is not valid JSON (${errorMessage(err)})`)
  }

  if (!Array.isArray(body) || body.length === 0) {
    throw invalid(archive, 'manifest.json must be a non-empty array of images')
  }

  return body.map((entry: Record<string, unknown> | null, i) => {
    const where = `manifest.json[${i}]`
    if (typeof entry?.Config !== 'string') {
      throw invalid(archive, `${where}.Config must be the name of the config file`)
    }
    if (!Array.isArray(entry.Layers) || !entry.Layers.every(layer => typeof layer === 'string')) {
      throw invalid(archive, `${where}.Layers must be an array of layer file names`)
    }
    if (entry.RepoTags != null && (!Array.isArray(entry.RepoTags) || !entry.RepoTags.every(tag => typeof tag === 'string'))) {
      throw invalid(archive, `${where}.RepoTags must be an array of strings`)
    }
    return { Config: entry.Config, Layers: entry.Layers, RepoTags: entry.RepoTags ?? [] }
  })
}

/** Returns the tag part of `REPOSITORY:TAG`, or undefined when there is none. */
function tagOf (repoTag: string): string | undefined {
  const colon = repoTag.lastIndexOf(':')
  return colon > repoTag.lastIndexOf('/') ? repoTag.slice(colon + 1) : undefined
}

/** Picks the image named `reference` (a full `REPOSITORY:TAG` or just the tag), or the only image. */
function chooseEntry (entries: DockerImageEntry[], reference: string | undefined, archive: string): { entry: DockerImageEntry, refName?: string } {
  const names = entries.flatMap(entry => entry.RepoTags.length > 0 ? entry.RepoTags : [entry.Config])

  if (reference == null) {
    if (entries.length === 1 && entries[0] != null) {
      const only = entries[0]
      return { entry: only, refName: only.RepoTags.length === 1 ? only.RepoTags[0] : undefined }
    }
    throw new AmbiguousImageError(`${archive} contains ${entries.length} images: add ":REPOSITORY:TAG" to choose one of ${names.join(', ')}`, names)
  }

  const exact = entries.find(entry => entry.RepoTags.includes(reference))
  if (exact != null) {
    return { entry: exact, refName: reference }
  }

  const byTag = entries.flatMap(entry => entry.RepoTags.filter(repoTag => tagOf(repoTag) === reference).map(repoTag => ({ entry, refName: repoTag })))
  if (byTag.length === 1 && byTag[0] != null) {
    return byTag[0]
  }

  const problem = byTag.length > 1 ? `the tag ${JSON.stringify(reference)} is ambiguous` : `it has no image named ${JSON.stringify(reference)}`
  throw new InvalidImageSourceError(`${archive}: ${problem}; choose one of ${names.join(', ')}`)
}

/** Returns the digest an entry name promises (`<hex>.json`, `<hex>.tar` or `blobs/sha256/<hex>`), if any. */
function digestFromName (name: string): OciDigest | undefined {
  const match = /(?:^|\/)(?:blobs\/sha256\/)?([0-9a-f]{64})(?:\.json|\.tar)?$/.exec(name)
  return match?.[1] == null ? undefined : `sha256:${match[1]}`
}

async function locateEntry (tree: ArchiveTree, name: string, kind: string): Promise<{ path: string, resolvedName: string }> {
  const resolvedName = tree.resolveName(normalizeEntryName(name, tree.archive))
  const path = await tree.locate(resolvedName)
  if (path == null) {
    throw invalid(tree.archive, `${kind} ${JSON.stringify(name)} is missing from the archive`)
  }
  return { path, resolvedName }
}

async function hashStream (source: AsyncIterable<Uint8Array>, options?: AbortOptions): Promise<{ digest: OciDigest, sizeBytes: number, head: Uint8Array }> {
  const hash = createHash('sha256')
  let sizeBytes = 0
  let head = new Uint8Array(0)
  for await (const chunk of source) {
    options?.signal?.throwIfAborted()
    if (head.byteLength < 4) {
      head = Buffer.concat([head, chunk]).subarray(0, 4)
    }
    hash.update(chunk)
    sizeBytes += chunk.byteLength
  }
  return { digest: `sha256:${hash.digest('hex')}`, sizeBytes, head }
}

/** Hashes a layer file and, for a gzip layer, its uncompressed content, which is what the config's diff_ids name. */
async function describeLayer (path: string, options?: AbortOptions): Promise<{ descriptor: Descriptor, diffId: OciDigest }> {
  const raw = await hashStream(createReadStream(path, { signal: options?.signal }), options)
  const gzip = raw.head[0] === 0x1f && raw.head[1] === 0x8b

  if (raw.head[0] === 0x28 && raw.head[1] === 0xb5 && raw.head[2] === 0x2f && raw.head[3] === 0xfd) {
    throw new InvalidImageSourceError(`layer ${path} is zstd-compressed, which docker save archives do not use and kilomesh cannot check; export the image as an OCI archive instead`)
  }

  const descriptor: Descriptor = { mediaType: gzip ? OCI_LAYER_TAR_GZIP : OCI_LAYER_TAR, digest: raw.digest, size: raw.sizeBytes }
  if (!gzip) {
    return { descriptor, diffId: raw.digest }
  }

  const uncompressed = pipeline(createReadStream(path, { signal: options?.signal }), createGunzip(), () => {})
  return { descriptor, diffId: (await hashStream(uncompressed, options)).digest }
}

function parseDiffIds (config: Uint8Array, archive: string, configName: string): OciDigest[] {
  let body: { rootfs?: { diff_ids?: unknown } } | null
  try {
    body = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(config)) as { rootfs?: { diff_ids?: unknown } } | null
  } catch (err) {
    throw invalid(archive, `config ${configName} is not valid JSON (${errorMessage(err)})`)
  }

  const diffIds: unknown = body?.rootfs?.diff_ids
  if (!Array.isArray(diffIds) || !diffIds.every(isDigest)) {
    throw invalid(archive, `config ${configName} has no rootfs.diff_ids array of sha256 digests`)
  }
  return diffIds
}

/**
 * Converts the image named `reference` (or the only image) of an extracted
 * docker save archive, checking the config against its file name and each
 * layer against its name and the config's diff_ids.
 */
export async function convertDockerArchive (tree: ArchiveTree, reference: string | undefined, options?: AbortOptions): Promise<DockerConversion> {
  const archive = tree.archive
  const manifestFile = await locateEntry(tree, 'manifest.json', 'file')
  const { entry, refName } = chooseEntry(parseEntries(await readLocation({ path: manifestFile.path }, MAX_MANIFEST_BYTES, options), archive), reference, archive)

  const configFile = await locateEntry(tree, entry.Config, 'config')
  const configBytes = await readLocation({ path: configFile.path }, MAX_MANIFEST_BYTES, options)
  const configDigest = digestOf(configBytes)
  const namedConfig = digestFromName(configFile.resolvedName)
  if (namedConfig != null && namedConfig !== configDigest) {
    throw new DigestMismatchError(`config ${entry.Config} in ${archive} hashes to ${configDigest}, not the ${namedConfig} its name promises`)
  }

  const diffIds = parseDiffIds(configBytes, archive, entry.Config)
  if (diffIds.length !== entry.Layers.length) {
    throw invalid(archive, `config ${entry.Config} lists ${diffIds.length} rootfs.diff_ids but manifest.json lists ${entry.Layers.length} layers`)
  }

  const blobs = new Map<OciDigest, BlobLocation>([[configDigest, { bytes: configBytes }]])
  const layers: Descriptor[] = []
  for (const [i, name] of entry.Layers.entries()) {
    const layerFile = await locateEntry(tree, name, 'layer')
    const { descriptor, diffId } = await describeLayer(layerFile.path, options)

    const named = digestFromName(layerFile.resolvedName)
    if (named != null && named !== descriptor.digest && named !== diffId) {
      throw new DigestMismatchError(`layer ${name} in ${archive} hashes to ${descriptor.digest}, not the ${named} its name promises`)
    }
    if (diffId !== diffIds[i]) {
      throw new DigestMismatchError(`layer ${name} in ${archive} has content ${diffId}, but the config's rootfs.diff_ids[${i}] is ${diffIds[i]}`)
    }

    blobs.set(descriptor.digest, { path: layerFile.path })
    layers.push(descriptor)
  }

  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: configDigest, size: configBytes.byteLength },
    layers
  }
  const manifestBytes = new TextEncoder().encode(JSON.stringify(manifest))
  const descriptor: Descriptor = { mediaType: OCI_MANIFEST, digest: digestOf(manifestBytes), size: manifestBytes.byteLength }
  blobs.set(descriptor.digest, { bytes: manifestBytes })

  return { source: new MapBlobSource(archive, blobs), descriptor, refName }
}
