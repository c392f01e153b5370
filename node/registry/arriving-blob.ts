/**
 * A blob that is arriving from a peer into memory while a registry client
 * waits for it. The client is sent each part as it arrives instead of
 * after the whole transfer, so its own reading, hashing and writing overlap
 * the transfer through the mesh, as with a pull-through cache. The last
 * part is held back until the whole blob matches its digest: a client can
 * receive a wrong prefix of a blob, but never a complete wrong body.
 */
import { BlobTransferError } from './errors.js'
import type { OciDigest } from '../../protocol/digest.js'

export class ArrivingBlob {
  /** Resolves to the blob's bytes once they match the digest, or to undefined when the transfer failed. Never rejects. */
  readonly done: Promise<Uint8Array | undefined>
  private readonly buffer: Uint8Array
  private received = 0
  private state: 'arriving' | 'verified' | 'failed' = 'arriving'
  private failure?: Error
  private waiters: Array<() => void> = []
  private settle: (bytes: Uint8Array | undefined) => void = () => {}

  constructor (readonly digest: OciDigest, readonly sizeBytes: number) {
    this.buffer = new Uint8Array(sizeBytes)
    this.done = new Promise(resolve => { this.settle = resolve })
  }

  /** Bytes received so far. */
  get receivedBytes (): number {
    return this.received
  }

  /** True once the transfer failed. A caller then fetches the blob another way. */
  get failed (): boolean {
    return this.state === 'failed'
  }

  /** Copies the next bytes of the blob in, dropping any past its size. */
  append (chunk: Uint8Array): void {
    if (this.state !== 'arriving') {
      return
    }
    const copiedBytes = Math.min(chunk.byteLength, this.sizeBytes - this.received)
    this.buffer.set(chunk.subarray(0, copiedBytes), this.received)
    this.received += copiedBytes
    this.wake()
  }

  /** Marks every byte received and checked against the digest. */
  verify (): void {
    if (this.state !== 'arriving' || this.received !== this.sizeBytes) {
      this.fail(new BlobTransferError(`blob ${this.digest} was marked verified after ${this.received} of its ${this.sizeBytes} bytes`))
      return
    }
    this.state = 'verified'
    this.settle(this.buffer)
    this.wake()
  }

  /** Ends the transfer without a verified blob. */
  fail (err: Error): void {
    if (this.state !== 'arriving') {
      return
    }
    this.state = 'failed'
    this.failure = err
    this.settle(undefined)
    this.wake()
  }

  /**
   * Yields the blob from its first byte as it arrives. The bytes that
   * complete it are yielded only once the blob is verified. Throws
   * BlobTransferError when the transfer fails, and the signal's reason when
   * it aborts.
   */
  async * chunks (signal?: AbortSignal): AsyncGenerator<Uint8Array> {
    let sent = 0
    while (true) {
      signal?.throwIfAborted()
      if (this.state === 'failed') {
        throw new BlobTransferError(`the transfer of blob ${this.digest} stopped after ${this.received} of ${this.sizeBytes} bytes: ${this.failure?.message ?? 'unknown error'}`)
      }
      if (this.state === 'verified') {
        if (sent < this.sizeBytes) {
          yield this.buffer.subarray(sent)
        }
        return
      }

      // The final bytes wait for the digest check.
      if (this.received > sent && this.received < this.sizeBytes) {
        const end = this.received
        yield this.buffer.subarray(sent, end)
        sent = end
        continue
      }
      await this.next(signal)
    }
  }

  private async next (signal?: AbortSignal): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => { reject(signal?.reason instanceof Error ? signal.reason : new Error('aborted')) }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.waiters.push(() => {
        signal?.removeEventListener('abort', onAbort)
        resolve()
      })
    })
  }

  private wake (): void {
    const waiters = this.waiters
    this.waiters = []
    for (const waiter of waiters) {
      waiter()
    }
  }
}
