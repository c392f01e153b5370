import { expect } from 'chai'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { RecordEnvelope } from '@libp2p/peer-record'
import { InvalidRecordError } from '../../protocol/errors.js'
import { expectRejection } from '../utils/assert.js'
import { compareHlc, nextHlc } from '../../protocol/hlc.js'
import { compareTagRecords, openTagRecord, signTagRecord, type TagRecord } from '../../protocol/tag-record.js'

const DIGEST = 'sha256:b00a22a43573e6deb217672d8fad3294e1a02e7d984c5a072d2044b18f24928c'

describe('protocol tag record', () => {
  async function record (overrides: Partial<TagRecord> = {}): Promise<{ record: TagRecord, key: Awaited<ReturnType<typeof generateKeyPair>> }> {
    const key = await generateKeyPair('Ed25519')
    return {
      key,
      record: {
        repository: 'demo/httpd',
        tag: 'v1',
        digest: DIGEST,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        sizeBytes: 346,
        hlc: { wallMs: 1_700_000_000_000, counter: 0 },
        publisher: peerIdFromPrivateKey(key).toString(),
        deleted: false,
        ...overrides
      }
    }
  }

  it('round-trips through a signed envelope', async () => {
    const { record: original, key } = await record()
    const signed = await signTagRecord(original, key)

    const opened = await openTagRecord(signed.envelope)

    expect(opened.record).to.deep.equal(original)
  })

  it('rejects an envelope whose payload was altered', async () => {
    const { record: original, key } = await record()
    const signed = await signTagRecord(original, key)
    const tampered = Uint8Array.from(signed.envelope)
    const at = Buffer.from(tampered).indexOf(Buffer.from('demo/httpd'))
    tampered[at] = 'x'.charCodeAt(0)

    await expectRejection(openTagRecord(tampered), InvalidRecordError)
  })

  it('rejects a record signed by another key than its publisher', async () => {
    const { record: original } = await record()
    const other = await generateKeyPair('Ed25519')

    await expectRejection(signTagRecord(original, other), InvalidRecordError, /does not match the signing key/)
  })

  it('rejects an envelope with a publisher forged inside', async () => {
    const { record: original } = await record()
    const attacker = await generateKeyPair('Ed25519')
    const signed = await signTagRecord({ ...original, publisher: peerIdFromPrivateKey(attacker).toString() }, attacker)
    const envelope = RecordEnvelope.createFromProtobuf(signed.envelope)
    // Re-seal the attacker's payload under the attacker's key but claim the victim's identity.
    const forged = new RecordEnvelope({ ...envelope, publicKey: (await record()).key.publicKey })

    await expectRejection(openTagRecord(forged.marshal()), InvalidRecordError)
  })

  it('rejects an oversized envelope', async () => {
    await expectRejection(openTagRecord(new Uint8Array(5000)), InvalidRecordError, /exceeds the limit/)
  })

  it('orders records by clock, then publisher', async () => {
    const { record: older } = await record({ hlc: { wallMs: 10, counter: 5 } })
    const newer = { ...older, hlc: { wallMs: 11, counter: 0 } }
    const samePublisherTie = { ...older, publisher: `${older.publisher}z` }

    expect(compareTagRecords(newer, older)).to.be.greaterThan(0)
    expect(compareTagRecords(older, newer)).to.be.lessThan(0)
    expect(compareTagRecords(samePublisherTie, older)).to.be.greaterThan(0)
    expect(compareTagRecords(older, older)).to.equal(0)
  })
})

describe('protocol hlc', () => {
  it('follows the wall clock when it is ahead', () => {
    expect(nextHlc(5000, [{ wallMs: 1000, counter: 3 }])).to.deep.equal({ wallMs: 5000, counter: 0 })
  })

  it('beats every seen timestamp when the clock reads 1970', () => {
    const seen = [{ wallMs: 1_700_000_000_000, counter: 2 }, { wallMs: 1_600_000_000_000, counter: 9 }]
    const next = nextHlc(0, seen)

    expect(next).to.deep.equal({ wallMs: 1_700_000_000_000, counter: 3 })
    for (const hlc of seen) {
      expect(compareHlc(next, hlc)).to.be.greaterThan(0)
    }
  })
})
