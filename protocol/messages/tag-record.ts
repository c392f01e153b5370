import { decodeMessage, encodeMessage, message, streamMessage } from 'protons-runtime'
import { alloc as uint8ArrayAlloc } from 'uint8arrays/alloc'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface TagRecord {
  repository: string
  tag: string
  digest: string
  mediaType: string
  size: bigint
  hlcWallMs: bigint
  hlcCounter: number
  publisher: Uint8Array<ArrayBuffer>
  deleted: boolean
}

export namespace TagRecord {
  let _codec: Codec<TagRecord>

  export const codec = (): Codec<TagRecord> => {
    if (_codec == null) {
      _codec = message<TagRecord>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.repository != null && obj.repository !== '')) {
          w.uint32(10)
          w.string(obj.repository)
        }

        if ((obj.tag != null && obj.tag !== '')) {
          w.uint32(18)
          w.string(obj.tag)
        }

        if ((obj.digest != null && obj.digest !== '')) {
          w.uint32(26)
          w.string(obj.digest)
        }

        if ((obj.mediaType != null && obj.mediaType !== '')) {
          w.uint32(34)
          w.string(obj.mediaType)
        }

        if ((obj.size != null && obj.size !== 0n)) {
          w.uint32(40)
          w.uint64(obj.size)
        }

        if ((obj.hlcWallMs != null && obj.hlcWallMs !== 0n)) {
          w.uint32(48)
          w.uint64(obj.hlcWallMs)
        }

        if ((obj.hlcCounter != null && obj.hlcCounter !== 0)) {
          w.uint32(56)
          w.uint32(obj.hlcCounter)
        }

        if ((obj.publisher != null && obj.publisher.byteLength > 0)) {
          w.uint32(66)
          w.bytes(obj.publisher)
        }

        if ((obj.deleted != null && obj.deleted !== false)) {
          w.uint32(72)
          w.bool(obj.deleted)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          repository: '',
          tag: '',
          digest: '',
          mediaType: '',
          size: 0n,
          hlcWallMs: 0n,
          hlcCounter: 0,
          publisher: uint8ArrayAlloc(0),
          deleted: false
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.repository = reader.string()
              break
            }
            case 2: {
              obj.tag = reader.string()
              break
            }
            case 3: {
              obj.digest = reader.string()
              break
            }
            case 4: {
              obj.mediaType = reader.string()
              break
            }
            case 5: {
              obj.size = reader.uint64()
              break
            }
            case 6: {
              obj.hlcWallMs = reader.uint64()
              break
            }
            case 7: {
              obj.hlcCounter = reader.uint32()
              break
            }
            case 8: {
              obj.publisher = reader.bytes()
              break
            }
            case 9: {
              obj.deleted = reader.bool()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.repository`,
                value: reader.string()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.tag`,
                value: reader.string()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.digest`,
                value: reader.string()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.mediaType`,
                value: reader.string()
              }
              break
            }
            case 5: {
              yield {
                field: `${prefix}.size`,
                value: reader.uint64()
              }
              break
            }
            case 6: {
              yield {
                field: `${prefix}.hlcWallMs`,
                value: reader.uint64()
              }
              break
            }
            case 7: {
              yield {
                field: `${prefix}.hlcCounter`,
                value: reader.uint32()
              }
              break
            }
            case 8: {
              yield {
                field: `${prefix}.publisher`,
                value: reader.bytes()
              }
              break
            }
            case 9: {
              yield {
                field: `${prefix}.deleted`,
                value: reader.bool()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface TagRecordRepositoryFieldEvent {
    field: '$.repository'
    value: string
  }

  export interface TagRecordTagFieldEvent {
    field: '$.tag'
    value: string
  }

  export interface TagRecordDigestFieldEvent {
    field: '$.digest'
    value: string
  }

  export interface TagRecordMediaTypeFieldEvent {
    field: '$.mediaType'
    value: string
  }

  export interface TagRecordSizeFieldEvent {
    field: '$.size'
    value: bigint
  }

  export interface TagRecordHlcWallMsFieldEvent {
    field: '$.hlcWallMs'
    value: bigint
  }

  export interface TagRecordHlcCounterFieldEvent {
    field: '$.hlcCounter'
    value: number
  }

  export interface TagRecordPublisherFieldEvent {
    field: '$.publisher'
    value: Uint8Array<ArrayBuffer>
  }

  export interface TagRecordDeletedFieldEvent {
    field: '$.deleted'
    value: boolean
  }

  export function encode (obj: Partial<TagRecord>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, TagRecord.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<TagRecord>): TagRecord {
    return decodeMessage(buf, TagRecord.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<TagRecord>): Generator<TagRecordRepositoryFieldEvent | TagRecordTagFieldEvent | TagRecordDigestFieldEvent | TagRecordMediaTypeFieldEvent | TagRecordSizeFieldEvent | TagRecordHlcWallMsFieldEvent | TagRecordHlcCounterFieldEvent | TagRecordPublisherFieldEvent | TagRecordDeletedFieldEvent> {
    return streamMessage(buf, TagRecord.codec(), opts)
  }
}
