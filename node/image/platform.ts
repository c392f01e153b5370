/**
 * Platforms (`os/architecture[/variant]`) and the choice of manifests from a
 * multi-platform index. Names follow the OCI image index spec, which uses
 * Go's GOOS and GOARCH values.
 *
 * @see https://github.com/opencontainers/image-spec/blob/main/image-index.md#platform-variants
 */
import { arch, endianness, platform as nodePlatform } from 'node:os'
import { InvalidManifestError, InvalidPlatformError, NoMatchingPlatformError } from './errors.js'
import { isIndexMediaType } from './media-types.js'
import type { Descriptor, ParsedManifest, Platform } from './manifest.js'
import type { OciDigest } from '../../protocol/digest.js'
import type { AbortOptions } from '@libp2p/interface'

/**
 * Maximum depth of image indexes nested inside an index that a platform
 * selection descends into. The OCI image spec sets no limit. This one
 * bounds the fetches that a hostile chain of indexes can cause.
 */
export const MAX_INDEX_NESTING_DEPTH = 8

const PART_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/

// Node.js names for operating systems and CPUs, mapped to Go's names.
const OS_NAMES: Record<string, string> = { win32: 'windows', sunos: 'solaris' }
const ARCHITECTURE_NAMES: Record<string, string> = { x64: 'amd64', ia32: '386', mipsel: 'mipsle' }

/** Parses `OS/ARCHITECTURE[/VARIANT]` (for example "linux/arm/v7") or the word `all`. */
export function parsePlatform (value: string): Platform | 'all' {
  if (value === 'all') {
    return 'all'
  }

  const parts = value.toLowerCase().split('/')
  if (parts.length < 2 || parts.length > 3 || !parts.every(part => PART_PATTERN.test(part))) {
    throw new InvalidPlatformError(`invalid platform ${JSON.stringify(value.slice(0, 100))}: expected OS/ARCHITECTURE[/VARIANT] such as "linux/amd64" or "linux/arm/v7", or "all"`)
  }

  const [os, architecture, variant] = parts as [string, string, string | undefined]
  return variant == null ? { os, architecture } : { os, architecture, variant }
}

/** Formats a platform as `os/architecture[/variant]`. */
export function formatPlatform (platform: Platform): string {
  const base = `${platform.os}/${platform.architecture}`
  return platform.variant == null ? base : `${base}/${platform.variant}`
}

/** Returns the platform this process runs on, in OCI terms (x64 becomes amd64, arm gets its v6/v7 variant). */
export function localPlatform (): Platform {
  const os = OS_NAMES[nodePlatform()] ?? nodePlatform()
  const cpu = arch()

  if (cpu === 'arm') {
    // Node.js records the ARM version it was built for; 32-bit ARM images are published per variant.
    const armVersion = (process.config.variables as Record<string, unknown>).arm_version
    return { os, architecture: 'arm', variant: `v${typeof armVersion === 'string' || typeof armVersion === 'number' ? armVersion : '7'}` }
  }

  if (cpu === 'ppc64') {
    return { os, architecture: endianness() === 'LE' ? 'ppc64le' : 'ppc64' }
  }

  return { os, architecture: ARCHITECTURE_NAMES[cpu] ?? cpu }
}

/**
 * Returns the variant a descriptor means when it gives none: arm64 images
 * without a variant are v8, as containerd's platform matcher also assumes.
 */
function normalizedVariant (platform: Platform): string | undefined {
  if (platform.architecture === 'arm64' && platform.variant == null) {
    return 'v8'
  }

  return platform.variant
}

/**
 * Returns true when `candidate` runs on `requested`: same os and
 * architecture, and the same variant when `requested` names one.
 * NOTE: variants match exactly, so a linux/arm/v7 request skips arm/v6
 * images that containerd would accept as compatible.
 */
export function platformMatches (candidate: Platform, requested: Platform): boolean {
  if (candidate.os !== requested.os || candidate.architecture !== requested.architecture) {
    return false
  }

  return requested.variant == null || normalizedVariant(candidate) === normalizedVariant(requested)
}

/**
 * Returns the manifests of an index for a platform (os, architecture, and
 * variant when given), or all of them for `all`. Entries without a platform
 * field, such as attestations, only match `all`, except nested image
 * indexes: an index entry without a platform is returned for the caller to
 * descend into, because the platforms are listed one level down.
 */
export function selectManifests (index: ParsedManifest & { kind: 'index' }, platform: Platform | 'all'): Descriptor[] {
  if (platform === 'all') {
    return [...index.manifests]
  }

  return index.manifests.filter(descriptor => descriptor.platform == null ? isIndexMediaType(descriptor.mediaType) : platformMatches(descriptor.platform, platform))
}

/** Manifests chosen from an index and the indexes nested in it. */
export interface PlatformSelection {
  /** Selected manifests that are not indexes, each digest once, in index order. */
  manifests: Descriptor[]
  /** Nested indexes descended into, each digest once, the root excluded. */
  indexes: Descriptor[]
  /** Every platform listed in the indexes descended into, for error messages. */
  availablePlatforms: string[]
}

/**
 * Selects manifests for a platform from `index` and from every index nested
 * in it that selectManifests returns, loading each nested index with `load`
 * (which may fetch it). Returns an empty `manifests` when nothing matches.
 * Throws InvalidManifestError when indexes nest deeper than
 * MAX_INDEX_NESTING_DEPTH or a nested index descriptor points at an image.
 */
export async function selectNestedManifests (index: ParsedManifest & { kind: 'index' }, indexDigest: OciDigest, platform: Platform | 'all', load: (descriptor: Descriptor) => Promise<ParsedManifest>, options?: AbortOptions): Promise<PlatformSelection> {
  const selection: PlatformSelection = { manifests: [], indexes: [], availablePlatforms: [] }
  const seen = new Set<OciDigest>([indexDigest])

  const visit = async (current: ParsedManifest & { kind: 'index' }, currentDigest: OciDigest, depth: number): Promise<void> => {
    for (const descriptor of current.manifests) {
      const listed = descriptor.platform == null ? undefined : formatPlatform(descriptor.platform)
      if (listed != null && !selection.availablePlatforms.includes(listed)) {
        selection.availablePlatforms.push(listed)
      }
    }

    for (const child of selectManifests(current, platform)) {
      options?.signal?.throwIfAborted()
      if (seen.has(child.digest)) {
        continue
      }
      seen.add(child.digest)

      if (!isIndexMediaType(child.mediaType)) {
        selection.manifests.push(child)
        continue
      }

      if (depth >= MAX_INDEX_NESTING_DEPTH) {
        throw new InvalidManifestError(`image index ${indexDigest} nests indexes more than ${MAX_INDEX_NESTING_DEPTH} levels deep (at ${child.digest}); flatten the index`)
      }
      const nested = await load(child)
      if (nested.kind !== 'index') {
        throw new InvalidManifestError(`image index ${currentDigest} lists ${child.digest} as an index of type ${child.mediaType}, but it is an image manifest`)
      }
      selection.indexes.push(child)
      await visit(nested, child.digest, depth + 1)
    }
  }

  await visit(index, indexDigest, 1)
  return selection
}

/** Returns the error for an index with no manifest for `platform`, listing the platforms it has. */
export function noMatchingPlatformError (indexDigest: string, platform: Platform | 'all', availablePlatforms: string[]): NoMatchingPlatformError {
  const requested = platform === 'all' ? 'all' : formatPlatform(platform)
  const choices = availablePlatforms.length === 0 ? 'it lists no platforms' : `choose one of ${availablePlatforms.join(', ')}, or "all"`
  return new NoMatchingPlatformError(`image index ${indexDigest} has no manifest for platform ${requested}: ${choices}`, availablePlatforms)
}

/** Like selectManifests, but throws NoMatchingPlatformError listing the available platforms when nothing matches. */
export function requireManifests (index: ParsedManifest & { kind: 'index' }, platform: Platform | 'all', indexDigest: string): Descriptor[] {
  const selected = selectManifests(index, platform)
  if (selected.length > 0) {
    return selected
  }

  const available = index.manifests.flatMap(descriptor => descriptor.platform == null ? [] : [formatPlatform(descriptor.platform)])
  throw noMatchingPlatformError(indexDigest, platform, available)
}
