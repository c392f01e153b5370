import { decodeMessage, encodeMessage, MaxLengthError, message, streamMessage } from 'protons-runtime'
import { alloc as uint8ArrayAlloc } from 'uint8arrays/alloc'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface SyncMessage {
  clockMs: bigint
  splits: NodeSplit[]
  lists: NodeItems[]
  wants: NodeItems[]
  records: Uint8Array<ArrayBuffer>[]
  done: boolean
}

export namespace SyncMessage {
  let _codec: Codec<SyncMessage>

  export const codec = (): Codec<SyncMessage> => {
    if (_codec == null) {
      _codec = message<SyncMessage>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.clockMs != null && obj.clockMs !== 0n)) {
          w.uint32(8)
          w.uint64(obj.clockMs)
        }

        if (obj.splits != null && obj.splits.length > 0) {
          for (const value of obj.splits) {
            w.uint32(18)
            NodeSplit.codec().encode(value, w)
          }
        }

        if (obj.lists != null && obj.lists.length > 0) {
          for (const value of obj.lists) {
            w.uint32(26)
            NodeItems.codec().encode(value, w)
          }
        }

        if (obj.wants != null && obj.wants.length > 0) {
          for (const value of obj.wants) {
            w.uint32(34)
            NodeItems.codec().encode(value, w)
          }
        }

        if (obj.records != null && obj.records.length > 0) {
          for (const value of obj.records) {
            w.uint32(42)
            w.bytes(value)
          }
        }

        if ((obj.done != null && obj.done !== false)) {
          w.uint32(48)
          w.bool(obj.done)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          clockMs: 0n,
          splits: [],
          lists: [],
          wants: [],
          records: [],
          done: false
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.clockMs = reader.uint64()
              break
            }
            case 2: {
              if (opts.limits?.splits != null && obj.splits.length === opts.limits.splits) {
                throw new MaxLengthError('Decode error - repeated field "splits" had too many elements')
              }

              obj.splits.push(NodeSplit.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.splits$
              }))
              break
            }
            case 3: {
              if (opts.limits?.lists != null && obj.lists.length === opts.limits.lists) {
                throw new MaxLengthError('Decode error - repeated field "lists" had too many elements')
              }

              obj.lists.push(NodeItems.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.lists$
              }))
              break
            }
            case 4: {
              if (opts.limits?.wants != null && obj.wants.length === opts.limits.wants) {
                throw new MaxLengthError('Decode error - repeated field "wants" had too many elements')
              }

              obj.wants.push(NodeItems.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.wants$
              }))
              break
            }
            case 5: {
              if (opts.limits?.records != null && obj.records.length === opts.limits.records) {
                throw new MaxLengthError('Decode error - repeated field "records" had too many elements')
              }

              obj.records.push(reader.bytes())
              break
            }
            case 6: {
              obj.done = reader.bool()
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
          splits: 0,
          lists: 0,
          wants: 0,
          records: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.clockMs`,
                value: reader.uint64()
              }
              break
            }
            case 2: {
              if (opts.limits?.splits != null && obj.splits === opts.limits.splits) {
                throw new MaxLengthError('Streaming decode error - repeated field "splits" had too many elements')
              }

              for (const evt of NodeSplit.codec().stream(reader, reader.uint32(), `${prefix}.splits[]`, {
                limits: opts.limits?.splits$
              })) {
                yield {
                  ...evt,
                  index: obj.splits
                }
              }

              obj.splits++

              break
            }
            case 3: {
              if (opts.limits?.lists != null && obj.lists === opts.limits.lists) {
                throw new MaxLengthError('Streaming decode error - repeated field "lists" had too many elements')
              }

              for (const evt of NodeItems.codec().stream(reader, reader.uint32(), `${prefix}.lists[]`, {
                limits: opts.limits?.lists$
              })) {
                yield {
                  ...evt,
                  index: obj.lists
                }
              }

              obj.lists++

              break
            }
            case 4: {
              if (opts.limits?.wants != null && obj.wants === opts.limits.wants) {
                throw new MaxLengthError('Streaming decode error - repeated field "wants" had too many elements')
              }

              for (const evt of NodeItems.codec().stream(reader, reader.uint32(), `${prefix}.wants[]`, {
                limits: opts.limits?.wants$
              })) {
                yield {
                  ...evt,
                  index: obj.wants
                }
              }

              obj.wants++

              break
            }
            case 5: {
              if (opts.limits?.records != null && obj.records === opts.limits.records) {
                throw new MaxLengthError('Streaming decode error - repeated field "records" had too many elements')
              }

              yield {
                field: `${prefix}.records[]`,
                index: obj.records,
                value: reader.bytes()
              }

              obj.records++

              break
            }
            case 6: {
              yield {
                field: `${prefix}.done`,
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

  export interface SyncMessageClockMsFieldEvent {
    field: '$.clockMs'
    value: bigint
  }

  export interface SyncMessageSplitsNodeFieldEvent {
    field: '$.splits[].node'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface SyncMessageSplitsChildrenFieldEvent {
    field: '$.splits[].children'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface SyncMessageListsNodeFieldEvent {
    field: '$.lists[].node'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface SyncMessageListsIdsFieldEvent {
    field: '$.lists[].ids'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface SyncMessageWantsNodeFieldEvent {
    field: '$.wants[].node'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface SyncMessageWantsIdsFieldEvent {
    field: '$.wants[].ids'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface SyncMessageRecordsFieldEvent {
    field: '$.records[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export interface SyncMessageDoneFieldEvent {
    field: '$.done'
    value: boolean
  }

  export function encode (obj: Partial<SyncMessage>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, SyncMessage.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<SyncMessage>): SyncMessage {
    return decodeMessage(buf, SyncMessage.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<SyncMessage>): Generator<SyncMessageClockMsFieldEvent | SyncMessageSplitsNodeFieldEvent | SyncMessageSplitsChildrenFieldEvent | SyncMessageListsNodeFieldEvent | SyncMessageListsIdsFieldEvent | SyncMessageWantsNodeFieldEvent | SyncMessageWantsIdsFieldEvent | SyncMessageRecordsFieldEvent | SyncMessageDoneFieldEvent> {
    return streamMessage(buf, SyncMessage.codec(), opts)
  }
}

export interface NodeSplit {
  node: Uint8Array<ArrayBuffer>
  children: Uint8Array<ArrayBuffer>
}

export namespace NodeSplit {
  let _codec: Codec<NodeSplit>

  export const codec = (): Codec<NodeSplit> => {
    if (_codec == null) {
      _codec = message<NodeSplit>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.node != null && obj.node.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.node)
        }

        if ((obj.children != null && obj.children.byteLength > 0)) {
          w.uint32(18)
          w.bytes(obj.children)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          node: uint8ArrayAlloc(0),
          children: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.node = reader.bytes()
              break
            }
            case 2: {
              obj.children = reader.bytes()
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
                field: `${prefix}.node`,
                value: reader.bytes()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.children`,
                value: reader.bytes()
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

  export interface NodeSplitNodeFieldEvent {
    field: '$.node'
    value: Uint8Array<ArrayBuffer>
  }

  export interface NodeSplitChildrenFieldEvent {
    field: '$.children'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<NodeSplit>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, NodeSplit.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<NodeSplit>): NodeSplit {
    return decodeMessage(buf, NodeSplit.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<NodeSplit>): Generator<NodeSplitNodeFieldEvent | NodeSplitChildrenFieldEvent> {
    return streamMessage(buf, NodeSplit.codec(), opts)
  }
}

export interface NodeItems {
  node: Uint8Array<ArrayBuffer>
  ids: Uint8Array<ArrayBuffer>
}

export namespace NodeItems {
  let _codec: Codec<NodeItems>

  export const codec = (): Codec<NodeItems> => {
    if (_codec == null) {
      _codec = message<NodeItems>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.node != null && obj.node.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.node)
        }

        if ((obj.ids != null && obj.ids.byteLength > 0)) {
          w.uint32(18)
          w.bytes(obj.ids)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          node: uint8ArrayAlloc(0),
          ids: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.node = reader.bytes()
              break
            }
            case 2: {
              obj.ids = reader.bytes()
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
                field: `${prefix}.node`,
                value: reader.bytes()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.ids`,
                value: reader.bytes()
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

  export interface NodeItemsNodeFieldEvent {
    field: '$.node'
    value: Uint8Array<ArrayBuffer>
  }

  export interface NodeItemsIdsFieldEvent {
    field: '$.ids'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<NodeItems>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, NodeItems.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<NodeItems>): NodeItems {
    return decodeMessage(buf, NodeItems.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<NodeItems>): Generator<NodeItemsNodeFieldEvent | NodeItemsIdsFieldEvent> {
    return streamMessage(buf, NodeItems.codec(), opts)
  }
}
