import { strict as assert } from 'node:assert'
import { arch, platform } from 'node:os'
import { InvalidManifestError, InvalidPlatformError, NoMatchingPlatformError } from '../../../node/image/errors.js'
import { OCI_INDEX, OCI_MANIFEST } from '../../../node/image/media-types.js'
import { MAX_INDEX_NESTING_DEPTH, formatPlatform, localPlatform, parsePlatform, requireManifests, selectManifests, selectNestedManifests } from '../../../node/image/platform.js'
import type { Descriptor, ParsedManifest, Platform } from '../../../node/image/manifest.js'
import type { OciDigest } from '../../../protocol/digest.js'

const AMD64: OciDigest = 'sha256:15cdd45bae16e02d67b6126196337f6ac2e3fd5cb5ae43c9b5f53c2816a93d79'
const ARM64: OciDigest = 'sha256:89f5a47f98b36d5b49826fe6a45522394f15f45fd43bfc6e6d12a248f372c756'
const ARM_V6: OciDigest = `sha256:${'6'.repeat(64)}`
const ARM_V7: OciDigest = `sha256:${'7'.repeat(64)}`
const ATTESTATION: OciDigest = `sha256:${'a'.repeat(64)}`

function entry (digest: Descriptor['digest'], platform?: Platform): Descriptor {
  return platform == null ? { mediaType: OCI_MANIFEST, digest, size: 349 } : { mediaType: OCI_MANIFEST, digest, size: 349, platform }
}

// The busybox fixture's index, plus 32-bit ARM variants and an attestation without a platform.
const INDEX: ParsedManifest & { kind: 'index' } = {
  kind: 'index',
  mediaType: OCI_INDEX,
  manifests: [
    entry(AMD64, { os: 'linux', architecture: 'amd64' }),
    entry(ARM64, { os: 'linux', architecture: 'arm64' }),
    entry(ARM_V6, { os: 'linux', architecture: 'arm', variant: 'v6' }),
    entry(ARM_V7, { os: 'linux', architecture: 'arm', variant: 'v7' }),
    entry(ATTESTATION)
  ]
}

describe('image/platform', () => {
  describe('parsePlatform', () => {
    const valid: Array<[string, Platform | 'all']> = [
      ['linux/amd64', { os: 'linux', architecture: 'amd64' }],
      ['linux/arm/v7', { os: 'linux', architecture: 'arm', variant: 'v7' }],
      ['Linux/ARM64', { os: 'linux', architecture: 'arm64' }],
      ['all', 'all']
    ]
    for (const [input, expected] of valid) {
      it(`parses ${input}`, () => {
        assert.deepEqual(parsePlatform(input), expected)
      })
    }

    for (const input of ['', 'linux', 'linux/', '/amd64', 'linux/arm/v7/extra', 'linux/amd 64', '../etc/passwd', 'ALL ']) {
      it(`rejects ${JSON.stringify(input)}`, () => {
        assert.throws(() => parsePlatform(input), (err: Error) => {
          assert.ok(err instanceof InvalidPlatformError)
          assert.match(err.message, /expected OS\/ARCHITECTURE\[\/VARIANT\]/)
          return true
        })
      })
    }
  })

  it('formatPlatform round-trips parsePlatform', () => {
    for (const text of ['linux/amd64', 'linux/arm/v7', 'windows/amd64']) {
      const parsed = parsePlatform(text)
      assert.notEqual(parsed, 'all')
      assert.equal(formatPlatform(parsed as Platform), text)
    }
  })

  it('localPlatform uses OCI names', () => {
    const local = localPlatform()
    const expectedArchitecture: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386' }

    assert.equal(local.os, platform() === 'win32' ? 'windows' : platform())
    assert.equal(local.architecture, expectedArchitecture[arch()] ?? local.architecture)
    assert.equal(local.variant != null, arch() === 'arm')
  })

  describe('selectManifests', () => {
    const cases: Array<[string, string[]]> = [
      ['linux/amd64', [AMD64]],
      ['linux/arm64', [ARM64]],
      ['linux/arm64/v8', [ARM64]],
      ['linux/arm', [ARM_V6, ARM_V7]],
      ['linux/arm/v7', [ARM_V7]],
      ['linux/riscv64', []],
      ['windows/amd64', []],
      ['all', [AMD64, ARM64, ARM_V6, ARM_V7, ATTESTATION]]
    ]
    for (const [requested, expected] of cases) {
      it(`for ${requested} returns ${expected.length} manifests`, () => {
        assert.deepEqual(selectManifests(INDEX, parsePlatform(requested)).map(descriptor => descriptor.digest), expected)
      })
    }
  })

  it('requireManifests lists available platforms', () => {
    assert.throws(() => requireManifests(INDEX, { os: 'linux', architecture: 'riscv64' }, 'sha256:index'), (err: Error) => {
      assert.ok(err instanceof NoMatchingPlatformError)
      assert.deepEqual(err.availablePlatforms, ['linux/amd64', 'linux/arm64', 'linux/arm/v6', 'linux/arm/v7'])
      assert.match(err.message, /no manifest for platform linux\/riscv64: choose one of linux\/amd64, linux\/arm64, linux\/arm\/v6, linux\/arm\/v7, or "all"/)
      return true
    })
  })

  describe('selectNestedManifests', () => {
    const NESTED: OciDigest = `sha256:${'b'.repeat(64)}`
    const OUTER: OciDigest = `sha256:${'c'.repeat(64)}`
    const nestedEntry: Descriptor = { mediaType: OCI_INDEX, digest: NESTED, size: 500 }
    const outer: ParsedManifest & { kind: 'index' } = { kind: 'index', mediaType: OCI_INDEX, manifests: [nestedEntry, entry(ATTESTATION)] }

    it('descends into an index without a platform', async () => {
      const loaded: string[] = []
      const selection = await selectNestedManifests(outer, OUTER, { os: 'linux', architecture: 'arm64' }, async descriptor => {
        loaded.push(descriptor.digest)
        return INDEX
      })

      assert.deepEqual(loaded, [NESTED])
      assert.deepEqual(selection.manifests.map(descriptor => descriptor.digest), [ARM64])
      assert.deepEqual(selection.indexes.map(descriptor => descriptor.digest), [NESTED])
      assert.deepEqual(selection.availablePlatforms, ['linux/amd64', 'linux/arm64', 'linux/arm/v6', 'linux/arm/v7'])
    })

    it('skips a nested index of another platform', async () => {
      const perPlatform: ParsedManifest & { kind: 'index' } = { kind: 'index', mediaType: OCI_INDEX, manifests: [{ ...nestedEntry, platform: { os: 'windows', architecture: 'amd64' } }] }

      const selection = await selectNestedManifests(perPlatform, OUTER, { os: 'linux', architecture: 'amd64' }, async () => {
        throw new Error('an index of another platform must not be loaded')
      })

      assert.deepEqual(selection.manifests, [])
      assert.deepEqual(selection.availablePlatforms, ['windows/amd64'])
    })

    it('rejects indexes nested too deep', async () => {
      // Every level lists one more index, so the walk only stops at the limit.
      let level = 0
      const load = async (): Promise<ParsedManifest> => {
        level++
        return { kind: 'index', mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_INDEX, digest: `sha256:${level.toString(16).padStart(64, '0')}`, size: 500 }] }
      }

      await assert.rejects(selectNestedManifests(outer, OUTER, 'all', load), (err: Error) => {
        assert.ok(err instanceof InvalidManifestError)
        assert.match(err.message, new RegExp(`more than ${MAX_INDEX_NESTING_DEPTH} levels deep`))
        return true
      })
      assert.equal(level, MAX_INDEX_NESTING_DEPTH - 1)
    })

    it('rejects an index entry that is an image', async () => {
      const image: ParsedManifest = { kind: 'image', mediaType: OCI_MANIFEST, config: entry(AMD64), layers: [] }

      await assert.rejects(selectNestedManifests(outer, OUTER, 'all', async () => image), InvalidManifestError)
    })
  })
})
