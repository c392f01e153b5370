/**
 * Records whose HLC wall time lies too far ahead of the reference clock. They
 * are kept in memory, outside the merge, until the clock catches up, so a
 * record stamped years ahead never pins a tag. They are not persisted: after
 * a restart, sync fetches them again from the peers that hold them.
 */
import { compareSignedRecords, keyOf } from './merge.js'
import type { SignedTagRecord } from '../../protocol/tag-record.js'

/** A bounded set of held-back records. */
export class HeldRecords {
  private readonly records: SignedTagRecord[] = []
  private readonly maxRecords: number

  constructor (maxRecords: number) {
    this.maxRecords = maxRecords
  }

  get size (): number {
    return this.records.length
  }

  /** Returns true when an identical envelope is already held. */
  has (signed: SignedTagRecord): boolean {
    return this.records.some(held => compareSignedRecords(held, signed) === 0)
  }

  /**
   * Holds a record. When the set is full, the record furthest in the future
   * is dropped, which may be the new one; returns the dropped record.
   */
  hold (signed: SignedTagRecord): SignedTagRecord | undefined {
    this.records.push(signed)
    if (this.records.length <= this.maxRecords) {
      return undefined
    }

    let furthest = 0
    for (let index = 1; index < this.records.length; index++) {
      if ((this.records[index] as SignedTagRecord).record.hlc.wallMs > (this.records[furthest] as SignedTagRecord).record.hlc.wallMs) {
        furthest = index
      }
    }

    return this.records.splice(furthest, 1)[0]
  }

  /** Removes and returns the records whose wall time is at most `limitMs`, oldest first. */
  takeDue (limitMs: number): SignedTagRecord[] {
    const due: SignedTagRecord[] = []
    for (let index = this.records.length - 1; index >= 0; index--) {
      const held = this.records[index] as SignedTagRecord
      if (held.record.hlc.wallMs <= limitMs) {
        due.push(held)
        this.records.splice(index, 1)
      }
    }

    return due.sort(compareSignedRecords)
  }

  /** Returns the held records of one tag key. */
  forKey (key: string): SignedTagRecord[] {
    return this.records.filter(held => keyOf(held) === key)
  }

  /** Returns every held record. */
  all (): SignedTagRecord[] {
    return [...this.records]
  }
}
