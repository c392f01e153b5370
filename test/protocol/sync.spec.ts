import { strict as assert } from 'node:assert'
import fc from 'fast-check'
import {
  childNode, decodeItemKeys, decodeNode, decodeSummaries, encodeItemKeys, encodeNode, encodeSummaries, nodeRange, MAX_SYNC_DEPTH
} from '../../protocol/sync.js'

describe('sync wire encoding', () => {
  const nodeCases: Array<{ depth: number, prefix: bigint, bytes: number[] }> = [
    { depth: 0, prefix: 0n, bytes: [0] },
    { depth: 1, prefix: 0xan, bytes: [1, 0xa0] },
    { depth: 2, prefix: 0xabn, bytes: [2, 0xab] },
    { depth: 3, prefix: 0xabcn, bytes: [3, 0xab, 0xc0] },
    { depth: 16, prefix: 0xffffffffffffffffn, bytes: [16, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff] }
  ]

  for (const { depth, prefix, bytes } of nodeCases) {
    it(`encodeNode depth ${depth} prefix ${prefix.toString(16)}`, () => {
      assert.deepEqual([...encodeNode({ depth, prefix })], bytes)
      assert.deepEqual(decodeNode(Uint8Array.from(bytes)), { depth, prefix })
    })
  }

  const badNodes: Array<[string, number[]]> = [
    ['empty bytes', []],
    ['depth above 16', [17, 0, 0, 0, 0, 0, 0, 0, 0, 0]],
    ['missing prefix byte', [3, 0xab]],
    ['extra prefix byte', [1, 0xa0, 0x00]],
    ['nonzero padding nibble', [1, 0xa1]]
  ]

  for (const [name, bytes] of badNodes) {
    it(`decodeNode rejects ${name}`, () => {
      assert.throws(() => decodeNode(Uint8Array.from(bytes)), { name: 'InvalidMessageError' })
    })
  }

  it('nodeRange of children tiles the parent range', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: MAX_SYNC_DEPTH - 1 }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), (depth, key) => {
      const parent = { depth, prefix: key >> BigInt(64 - 4 * depth) }
      const { start, end } = nodeRange(parent)

      assert.equal(nodeRange(childNode(parent, 0)).start, start)
      assert.equal(nodeRange(childNode(parent, 15)).end, end)
      for (let nibble = 0; nibble < 15; nibble++) {
        assert.equal(nodeRange(childNode(parent, nibble)).end, nodeRange(childNode(parent, nibble + 1)).start)
      }
      assert.ok(key >= start && key < end)
    }), { numRuns: 200 })
  })

  it('summaries round-trip', () => {
    const summary = fc.oneof(
      fc.constant({ count: 0, sum: 0n }),
      fc.tuple(fc.integer({ min: 1, max: 0xffffffff }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })).map(([count, sum]) => ({ count, sum }))
    )
    fc.assert(fc.property(fc.array(summary, { minLength: 16, maxLength: 16 }), summaries => {
      assert.deepEqual(decodeSummaries(encodeSummaries(summaries)), summaries)
    }), { numRuns: 300 })
  })

  it('decodeSummaries rejects truncated and trailing bytes', () => {
    const encoded = encodeSummaries(Array.from({ length: 16 }, (_, index) => ({ count: index, sum: BigInt(index) })))

    assert.throws(() => decodeSummaries(encoded.subarray(0, encoded.byteLength - 1)), { name: 'InvalidMessageError', message: /truncated/ })
    assert.throws(() => decodeSummaries(Uint8Array.from([...encoded, 0])), { name: 'InvalidMessageError', message: /after the 16 summaries/ })
  })

  it('decodeSummaries rejects an overlong count', () => {
    assert.throws(() => decodeSummaries(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x01])), { name: 'InvalidMessageError', message: /overlong/ })
  })

  it('item keys round-trip', () => {
    const keys = [0n, 1n, 2n ** 64n - 1n, 0x0123456789abcdefn]

    assert.deepEqual(decodeItemKeys(encodeItemKeys(keys)), keys)
  })
})
