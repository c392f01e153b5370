import { decodeMessage, encodeMessage, MaxLengthError, message, streamMessage } from 'protons-runtime'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface ResolveRequest {
  repository: string
  tag: string
}

export namespace ResolveRequest {
  let _codec: Codec<ResolveRequest>

  export const codec = (): Codec<ResolveRequest> => {
    if (_codec == null) {
      _codec = message<ResolveRequest>((obj, w, opts = {}) => {
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

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          repository: '',
          tag: ''
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

  export interface ResolveRequestRepositoryFieldEvent {
    field: '$.repository'
    value: string
  }

  export interface ResolveRequestTagFieldEvent {
    field: '$.tag'
    value: string
  }

  export function encode (obj: Partial<ResolveRequest>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, ResolveRequest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ResolveRequest>): ResolveRequest {
    return decodeMessage(buf, ResolveRequest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ResolveRequest>): Generator<ResolveRequestRepositoryFieldEvent | ResolveRequestTagFieldEvent> {
    return streamMessage(buf, ResolveRequest.codec(), opts)
  }
}

export interface ResolveResponse {
  envelopes: Uint8Array<ArrayBuffer>[]
}

export namespace ResolveResponse {
  let _codec: Codec<ResolveResponse>

  export const codec = (): Codec<ResolveResponse> => {
    if (_codec == null) {
      _codec = message<ResolveResponse>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.envelopes != null && obj.envelopes.length > 0) {
          for (const value of obj.envelopes) {
            w.uint32(10)
            w.bytes(value)
          }
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          envelopes: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.envelopes != null && obj.envelopes.length === opts.limits.envelopes) {
                throw new MaxLengthError('Decode error - repeated field "envelopes" had too many elements')
              }

              obj.envelopes.push(reader.bytes())
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
        const obj = {
          envelopes: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.envelopes != null && obj.envelopes === opts.limits.envelopes) {
                throw new MaxLengthError('Streaming decode error - repeated field "envelopes" had too many elements')
              }

              yield {
                field: `${prefix}.envelopes[]`,
                index: obj.envelopes,
                value: reader.bytes()
              }

              obj.envelopes++

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

  export interface ResolveResponseEnvelopesFieldEvent {
    field: '$.envelopes[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<ResolveResponse>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, ResolveResponse.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ResolveResponse>): ResolveResponse {
    return decodeMessage(buf, ResolveResponse.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ResolveResponse>): Generator<ResolveResponseEnvelopesFieldEvent> {
    return streamMessage(buf, ResolveResponse.codec(), opts)
  }
}
