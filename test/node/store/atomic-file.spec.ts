import { expect } from 'chai'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FolderSync, fsyncDirectory } from '../../../node/store/atomic-file.js'

describe('store/atomic-file FolderSync', () => {
  let root: string
  let fsyncs: number
  // The real folder fsync, counted.
  const countedSync = async (path: string): Promise<void> => {
    fsyncs++
    await fsyncDirectory(path)
  }

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'km-folder-sync-'))
    fsyncs = 0
  })

  afterEach(async () => {
    await rm(root, { recursive: true, force: true })
  })

  it('sync shares one fsync within a tick', async () => {
    const folder = new FolderSync(root, countedSync)

    await Promise.all([folder.sync(), folder.sync(), folder.sync()])

    expect(fsyncs).to.equal(1)
  })

  it('sync during an fsync waits for the next', async () => {
    const order: string[] = []
    let releaseFirst!: () => void
    const firstHeld = new Promise<void>(resolve => { releaseFirst = resolve })
    const folder = new FolderSync(root, async path => {
      const number = ++fsyncs
      order.push(`start ${number}`)
      if (number === 1) {
        await firstHeld
      }
      await fsyncDirectory(path)
      order.push(`end ${number}`)
    })

    const first = folder.sync()
    // Let the first fsync start, so that the next calls must not join it.
    await new Promise(resolve => setImmediate(resolve))
    const second = folder.sync()
    const third = folder.sync()
    releaseFirst()
    await Promise.all([first, second, third])

    expect(order).to.deep.equal(['start 1', 'end 1', 'start 2', 'end 2'])
  })

  it('sync failure rejects callers, then retries', async () => {
    const folder = new FolderSync(join(root, 'missing'), countedSync)

    const results = await Promise.allSettled([folder.sync(), folder.sync()])
    expect(results.map(result => result.status)).to.deep.equal(['rejected', 'rejected'])
    expect(fsyncs).to.equal(1)

    await Promise.allSettled([folder.sync()])
    expect(fsyncs).to.equal(2)
  })
})
