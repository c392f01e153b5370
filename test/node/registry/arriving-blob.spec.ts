import { strict as assert } from 'node:assert'
import { randomBytes } from 'node:crypto'
import { digestOf } from '../../../protocol/digest.js'
import { ArrivingBlob } from '../../../node/registry/arriving-blob.js'
import { BlobTransferError } from '../../../node/registry/errors.js'

/** Collects what `chunks` yields, in order, until it ends or throws. */
async function collect (blob: ArrivingBlob, yielded: Uint8Array[], signal?: AbortSignal): Promise<void> {
  for await (const chunk of blob.chunks(signal)) {
    yielded.push(Uint8Array.from(chunk))
  }
}

async function tick (): Promise<void> {
  await new Promise(resolve => setImmediate(resolve))
}

describe('registry ArrivingBlob', () => {
  const bytes = randomBytes(3000)
  const digest = digestOf(bytes)

  it('chunks holds the last part until verify', async () => {
    const blob = new ArrivingBlob(digest, bytes.byteLength)
    const yielded: Uint8Array[] = []
    const reading = collect(blob, yielded)

    blob.append(bytes.subarray(0, 1000))
    await tick()
    assert.equal(Buffer.concat(yielded).byteLength, 1000, 'the first part goes out before the rest arrives')

    blob.append(bytes.subarray(1000))
    await tick()
    assert.equal(Buffer.concat(yielded).byteLength, 1000, 'the last part waits for the digest check')

    blob.verify()
    await reading
    assert.deepEqual(Buffer.concat(yielded), bytes)
    assert.deepEqual(await blob.done, new Uint8Array(bytes))
  })

  it('chunks throws after a failed transfer', async () => {
    const blob = new ArrivingBlob(digest, bytes.byteLength)
    const yielded: Uint8Array[] = []
    const reading = collect(blob, yielded)

    blob.append(bytes)
    await tick()
    blob.fail(new Error('the peer sent bytes that hash to something else'))

    const err = await reading.then(() => undefined, (error: Error) => error)
    assert.ok(err instanceof BlobTransferError, `expected a BlobTransferError, got ${String(err)}`)
    assert.match(err.message, new RegExp(digest))
    assert.match(err.message, /3000 of 3000 bytes/)
    assert.match(err.message, /hash to something else/)
    assert.equal(yielded.length, 0, 'a blob that arrived whole in one part yields nothing before its check')
    assert.equal(blob.failed, true)
    assert.equal(await blob.done, undefined)
  })

  it('verify of a partial blob fails it', async () => {
    const blob = new ArrivingBlob(digest, bytes.byteLength)
    blob.append(bytes.subarray(0, 10))

    blob.verify()

    assert.equal(blob.failed, true)
    assert.equal(await blob.done, undefined)
  })

  it('append drops bytes past the size', async () => {
    const blob = new ArrivingBlob(digest, bytes.byteLength)

    blob.append(Buffer.concat([bytes, Buffer.from('extra')]))
    blob.verify()

    assert.equal(blob.receivedBytes, bytes.byteLength)
    assert.deepEqual(await blob.done, new Uint8Array(bytes))
  })

  it('chunks stops on an aborted signal', async () => {
    const blob = new ArrivingBlob(digest, bytes.byteLength)
    const controller = new AbortController()
    const reading = collect(blob, [], controller.signal)

    controller.abort(new Error('client went away'))

    await assert.rejects(reading, /client went away/)
    assert.equal(blob.failed, false, 'one reader giving up does not fail the transfer')
  })
})
