import { expect } from 'chai'
import { runRounds } from './rounds.js'
import { formatMs, quantile, summarize } from './stats.js'
import { missedTargets, renderTable, type BenchRow } from './table.js'

describe('benchmark statistics', () => {
  it('quantile interpolates between ranks', () => {
    const cases: Array<{ samples: number[], fraction: number, expected: number }> = [
      { samples: [5], fraction: 0.5, expected: 5 },
      { samples: [3, 1, 2], fraction: 0.5, expected: 2 },
      { samples: [4, 1, 3, 2], fraction: 0.5, expected: 2.5 },
      { samples: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], fraction: 0.9, expected: 9.1 },
      { samples: [10, 20], fraction: 0, expected: 10 },
      { samples: [10, 20], fraction: 1, expected: 20 }
    ]
    for (const { samples, fraction, expected } of cases) {
      expect(quantile(samples, fraction), `quantile(${samples.join(',')}, ${fraction})`).to.be.closeTo(expected, 1e-9)
    }
  })

  it('quantile rejects empty samples and bad fractions', () => {
    expect(() => quantile([], 0.5)).to.throw(RangeError, /zero samples/)
    expect(() => quantile([1], 1.5)).to.throw(RangeError, /1.5/)
    expect(() => quantile([1], Number.NaN)).to.throw(RangeError)
  })

  it('summarize leaves its input unsorted', () => {
    const samples = [3, 1, 2]
    const summary = summarize(samples)

    expect(summary).to.deep.equal({ count: 3, median: 2, p90: 2.8, min: 1, max: 3 })
    expect(samples).to.deep.equal([3, 1, 2])
  })

  it('formatMs scales precision with size', () => {
    expect(formatMs(0.4213)).to.equal('0.42 ms')
    expect(formatMs(3.14)).to.equal('3.1 ms')
    expect(formatMs(215.4)).to.equal('215 ms')
  })
})

describe('benchmark table', () => {
  const rows: BenchRow[] = [
    { measure: 'met | piped', kilomesh: '1 ms', baseline: '2 ms', ratio: 0.5, target: '≤ 3x', met: true },
    { measure: 'missed', kilomesh: '9 ms', baseline: '2 ms', ratio: 4.5, target: '≤ 3x', met: false },
    { measure: 'explains', kilomesh: '5 ms', baseline: '—' }
  ]

  it('renderTable writes one line per row', () => {
    const lines = renderTable(rows).split('\n')

    expect(lines).to.have.length(5)
    expect(lines[0]).to.equal('| Measure | kilomesh | Baseline | Ratio | Target | Met |')
    expect(lines[2]).to.equal('| met \\| piped | 1 ms | 2 ms | 0.50x | ≤ 3x | yes |')
    expect(lines[3]).to.equal('| missed | 9 ms | 2 ms | 4.50x | ≤ 3x | **no** |')
    expect(lines[4]).to.equal('| explains | 5 ms | — | — | — | — |')
  })

  it('missedTargets lists only rows that failed', () => {
    expect(missedTargets(rows).map(row => row.measure)).to.deep.equal(['missed'])
  })
})

describe('benchmark rounds', () => {
  it('runRounds drops warm-up rounds and rotates the order', async () => {
    const calls: string[] = []
    const prepared: string[] = []
    const samples = await runRounds({
      a: { run: async () => { calls.push('a') }, prepare: async () => { prepared.push('a') } },
      b: { run: async () => { calls.push('b') } }
    }, { rounds: 3, warmupRounds: 1 })

    expect(calls).to.deep.equal(['a', 'b', 'b', 'a', 'a', 'b', 'b', 'a'])
    expect(prepared).to.have.length(4)
    expect(samples.a).to.have.length(3)
    expect(samples.b).to.have.length(3)
  })

  it('runRounds cleans up after a failing run', async () => {
    let cleanups = 0
    let error: Error | undefined
    try {
      await runRounds({
        broken: { run: async () => { throw new Error('run failed') }, cleanup: async () => { cleanups++ } }
      }, { rounds: 2, warmupRounds: 0 })
    } catch (err: any) {
      error = err
    }

    expect(error?.message).to.equal('run failed')
    expect(cleanups).to.equal(1)
  })
})
