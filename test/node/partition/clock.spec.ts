import { expect } from 'chai'
import { cleanUp, runCliOk } from '../../utils/agents.js'
import { findRef } from '../../utils/layout.js'
import { fixture } from '../../utils/paths.js'
import { catalogStats, currentRecord, expectSameRecord, startMesh, tagsOf, trustEverywhere, waitFor, type MeshAgent } from './mesh.js'
import type { RecordView } from '../../../node/control/routes/catalog.js'

const DAY_MS = 86_400_000

/** 2000-01-01T00:00:00Z: every record the agents stamp in this test is later than this. */
const YEAR_2000_MS = Date.UTC(2000, 0, 1)

describe('agents with wrong clocks', function () {
  this.timeout(180_000)
  let agents: MeshAgent[] = []
  let n1: MeshAgent
  let n2: MeshAgent
  let old: MeshAgent
  let ahead: MeshAgent
  let v1: string
  let v2: string

  before(async () => {
    // "old" believes it is 1970-01-02; "ahead" runs one day fast.
    agents = await startMesh(['n1', 'n2', 'old', 'ahead'], {
      old: { KILOMESH_CLOCK_OFFSET_MS: String(DAY_MS - Date.now()) },
      ahead: { KILOMESH_CLOCK_OFFSET_MS: String(DAY_MS) }
    })
    ;[n1, n2, old, ahead] = agents as [MeshAgent, MeshAgent, MeshAgent, MeshAgent]
    await trustEverywhere(agents, [n1, old, ahead], 'demo/*')
    v1 = (await findRef(fixture('micro-httpd'), 'v1'))?.digest ?? ''
    v2 = (await findRef(fixture('micro-httpd'), 'v2'))?.digest ?? ''
  })

  after(async () => {
    await cleanUp(agents)
  })

  it('1970 device publishes a winning version', async () => {
    await runCliOk(['publish', 'demo/clock:stable', '--from', `${fixture('micro-httpd')}:v1`, '--dir', n1.dir])
    const first = await currentRecord(n1, 'demo/clock', 'stable') as RecordView
    await waitFor('the 1970 device to accept the current record', async () => (await currentRecord(old, 'demo/clock', 'stable'))?.digest === v1)

    const clocks = await catalogStats(old)
    expect(clocks.localClockMs, 'local clock of the 1970 device').to.be.below(YEAR_2000_MS)
    expect(clocks.referenceClockMs, 'reference clock of the 1970 device').to.be.above(YEAR_2000_MS)

    await runCliOk(['publish', 'demo/clock:stable', '--from', `${fixture('micro-httpd')}:v2`, '--dir', old.dir])
    const second = await currentRecord(old, 'demo/clock', 'stable') as RecordView

    expect(second.digest).to.equal(v2)
    expect(second.hlcWallMs, 'clock of the new record').to.be.at.least(first.hlcWallMs)
    expect(second.hlcWallMs, 'clock of the new record').to.be.above(YEAR_2000_MS)
    await waitFor('every agent to take the 1970 device\'s version', async () => {
      const records = await Promise.all(agents.map(async agent => currentRecord(agent, 'demo/clock', 'stable')))
      return records.every(record => record?.digest === v2)
    })
    for (const agent of agents) {
      expectSameRecord(await currentRecord(agent, 'demo/clock', 'stable'), second, `demo/clock:stable on ${agent.name}`)
    }
  })

  it('future record is held, not applied', async () => {
    await runCliOk(['publish', 'demo/future:stable', '--from', `${fixture('micro-httpd')}:v1`, '--dir', ahead.dir])
    const future = await currentRecord(ahead, 'demo/future', 'stable') as RecordView
    expect(future.hlcWallMs - Date.now(), 'lead of the fast clock in ms').to.be.above(DAY_MS - 60_000)
    for (const agent of [n1, n2]) {
      const { referenceClockMs } = await catalogStats(agent)
      expect(referenceClockMs - Date.now(), `lead of the reference clock of ${agent.name} in ms`).to.be.below(60_000)
    }

    for (const agent of [n1, n2, old]) {
      await waitFor(`${agent.name} to hold the future record`, async () => {
        const view = (await tagsOf(agent, 'demo/future')).find(tag => tag.tag === 'stable')
        return view?.held.some(record => record.digest === v1 && record.publisher === ahead.peerId) ?? false
      })
      expect(await currentRecord(agent, 'demo/future', 'stable'), `current demo/future:stable on ${agent.name}`).to.equal(undefined)
    }

    // A version published now wins on every device with a correct reference clock, despite the held record's greater clock.
    await runCliOk(['publish', 'demo/future:stable', '--from', `${fixture('micro-httpd')}:v2`, '--dir', n1.dir])
    await waitFor('n2 and the 1970 device to take the new version', async () => {
      const records = await Promise.all([n2, old].map(async agent => currentRecord(agent, 'demo/future', 'stable')))
      return records.every(record => record?.digest === v2)
    })
    const view = (await tagsOf(n2, 'demo/future')).find(tag => tag.tag === 'stable')
    expect(view?.held.map(record => record.digest)).to.deep.equal([v1])
  })
})
