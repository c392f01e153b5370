import { expect } from 'chai'
import { parseStorageSize } from '../../../node/agent/subscription-config.js'
import { InvalidConfigError } from '../../../node/config/errors.js'

describe('gc storage size parser', () => {
  const valid: Array<[unknown, number]> = [
    ['1048576', 1048576],
    ['0', 0],
    ['500MB', 500_000_000],
    ['500mb', 500_000_000],
    ['2GiB', 2 * 1024 ** 3],
    ['2gib', 2 * 1024 ** 3],
    ['1.5 GB', 1_500_000_000],
    ['10kB', 10_000],
    ['10KiB', 10_240],
    ['3TiB', 3 * 1024 ** 4],
    ['7B', 7],
    [' 64 MiB ', 64 * 1024 ** 2],
    ['1.0001KiB', 1024],
    [4096, 4096]
  ]

  for (const [input, bytes] of valid) {
    it(`parses ${JSON.stringify(input)}`, () => {
      expect(parseStorageSize(input)).to.equal(bytes)
    })
  }

  const invalid: unknown[] = ['', 'MB', '12XB', '500 parsecs', '-5MB', '1e6', '5 M B', '0x10', '1,5GB', '9999999999TiB', -1, 1.5, Number.NaN, null, true]

  for (const input of invalid) {
    it(`rejects ${typeof input === 'string' ? JSON.stringify(input) : String(input)}`, () => {
      expect(() => parseStorageSize(input, '--max-storage')).to.throw(InvalidConfigError, /invalid --max-storage/)
    })
  }

  it('names the units in its error', () => {
    expect(() => parseStorageSize('12XB')).to.throw(/kB, MB, GB, TB .* KiB, MiB, GiB, TiB/)
  })
})
