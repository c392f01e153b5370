import { writeFile, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'chai'
import { InvalidScenarioError } from '../../../simulations/errors.js'
import { loadScenario, parseScenario } from '../../../simulations/scenario/load.js'
import { REPOSITORY_ROOT } from '../../utils/paths.js'

/** The example of the simulator's specification, unchanged. */
const EXAMPLE = `name: split-and-heal
seed: 7
nodes: 12
topology: { kind: random, degree: 3 }        # also: full, line, ring, star, clusters
link: { latencyMs: 20, jitterMs: 5, bandwidthKbps: 20000 }
images:                                      # names for images to publish, and where they come from
  httpd-v1: test/fixtures/micro-httpd:v1
  httpd-v2: test/fixtures/micro-httpd:v2
events:
  - { at: 0s, subscribe: { nodes: all, ref: demo/httpd:stable } }
  - { at: 1s, publish: { node: 0, image: httpd-v1, ref: demo/httpd:stable } }
  - { at: 6s, partition: [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]] }
  - { at: 7s, publish: { node: 8, image: httpd-v2, ref: demo/httpd:stable } }
  - { at: 12s, crash: { nodes: [3] } }
  - { at: 16s, heal: all }
  - { at: 17s, restart: { nodes: [3] } }
expect:
  - { by: 30s, all: { ref: demo/httpd:stable, image: httpd-v2, pulled: true } }
`

const MINIMAL = `name: t
nodes: 4
images: { v1: test/fixtures/micro-httpd:v1 }
`

async function parse (text: string): Promise<Awaited<ReturnType<typeof parseScenario>>> {
  return parseScenario(text, { file: 'test.yaml', baseDirs: [REPOSITORY_ROOT] })
}

/** Parses `text` and returns the error message; fails the test when it parses. */
async function parseError (text: string): Promise<string> {
  try {
    await parse(text)
  } catch (err: any) {
    expect(err).to.be.instanceOf(InvalidScenarioError)
    return err.message
  }
  expect.fail(`scenario parsed, but an error was expected:\n${text}`)
}

describe('scenario loader', () => {
  it('parses the specification example unchanged', async () => {
    const scenario = await parse(EXAMPLE)

    expect(scenario.name).to.equal('split-and-heal')
    expect(scenario.seed).to.equal(7)
    expect(scenario.nodes).to.equal(12)
    expect(scenario.topology).to.deep.equal({ kind: 'random', degree: 3 })
    expect(scenario.link).to.deep.equal({ latencyMs: 20, jitterMs: 5, bandwidthKbps: 20000 })
    expect(scenario.images['httpd-v1']).to.equal(`${join(REPOSITORY_ROOT, 'test/fixtures/micro-httpd')}:v1`)
    expect(scenario.events.map(event => [event.atMs, event.action.kind])).to.deep.equal([
      [0, 'subscribe'], [1000, 'publish'], [6000, 'partition'], [7000, 'publish'], [12000, 'crash'], [16000, 'heal'], [17000, 'restart']
    ])
    expect(scenario.events[2]?.action).to.deep.equal({ kind: 'partition', groups: [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]] })
    expect(scenario.expectations).to.deep.equal([{ index: 0, byMs: 30000, check: { kind: 'all', ref: 'demo/httpd:stable', image: 'httpd-v2', pulled: true } }])
  })

  it('fills defaults for optional fields', async () => {
    const scenario = await parse(MINIMAL)

    expect(scenario.seed).to.equal(1)
    expect(scenario.transport).to.equal('memory')
    expect(scenario.topology).to.deep.equal({ kind: 'full' })
    expect(scenario.link).to.deep.equal({ latencyMs: 0, jitterMs: 0, bandwidthKbps: 0 })
    expect(scenario.trust).to.deep.equal({ mode: 'any', publishers: [] })
    expect(scenario.events).to.deep.equal([])
    expect(scenario.run.startBatchSize).to.equal(5)
  })

  it('sorts events stably by time', async () => {
    const scenario = await parse(`${MINIMAL}events:
  - { at: 2s, heal: all }
  - { at: 500ms, crash: { nodes: [1] } }
  - { at: 2s, restart: { nodes: [1] } }
  - { at: 0, reset: { nodes: all } }
`)

    expect(scenario.events.map(event => `${event.atMs} ${event.action.kind} ${event.source}`)).to.deep.equal([
      '0 reset events[3]', '500 crash events[1]', '2000 heal events[0]', '2000 restart events[2]'
    ])
    expect(scenario.events.map(event => event.index)).to.deep.equal([0, 1, 2, 3])
  })

  it('expands flap into cuts and heals', async () => {
    const scenario = await parse(`${MINIMAL}events:
  - { at: 1s, flap: { from: [0], to: 1-2, down: 2s, up: 500ms, times: 2 } }
`)

    expect(scenario.events.map(event => `${event.atMs} ${event.action.kind}`)).to.deep.equal(['1000 cut', '3000 heal', '3500 cut', '5500 heal'])
    expect(scenario.events[0]?.action).to.deep.equal({ kind: 'cut', from: { kind: 'list', indices: [0] }, to: { kind: 'list', indices: [1, 2] }, oneWay: false })
    expect(scenario.events[3]?.source).to.equal('events[0] (flap 2 of 2)')
  })

  it('reads ranges, random picks and all', async () => {
    const scenario = await parse(`${MINIMAL}events:
  - { at: 0s, crash: { nodes: [3, 0-1, "2"] } }
  - { at: 1s, crash: { nodes: 1-3 } }
  - { at: 2s, crash: { nodes: { random: 2, from: 0-3 } } }
  - { at: 3s, crash: { nodes: all } }
`)

    expect(scenario.events.map(event => event.action.kind === 'crash' ? event.action.nodes : undefined)).to.deep.equal([
      { kind: 'list', indices: [0, 1, 2, 3] },
      { kind: 'list', indices: [1, 2, 3] },
      { kind: 'random', count: 2, from: [0, 1, 2, 3] },
      { kind: 'all' }
    ])
  })

  it('counts nodes added by joins', async () => {
    const scenario = await parse(`${MINIMAL}events:
  - { at: 1s, join: { count: 2, subscribe: demo/httpd:stable } }
  - { at: 2s, crash: { nodes: [5] } }
`)

    expect(scenario.maxNodes).to.equal(6)
    expect(scenario.events[0]?.action).to.deep.equal({ kind: 'join', count: 2, subscribe: ['demo/httpd:stable'] })
  })

  it('resolves images from scenario folder first', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'km-sim-load-'))
    try {
      const file = join(folder, 'scenario.yaml')
      await writeFile(file, `name: t\nnodes: 2\nimages: { v1: ${join(REPOSITORY_ROOT, 'test/fixtures/micro-httpd')}:v1, v2: test/fixtures/micro-httpd:v2 }\n`)
      const scenario = await loadScenario(file, { cwd: REPOSITORY_ROOT })

      expect(scenario.file).to.equal(file)
      expect(scenario.images.v1).to.equal(`${join(REPOSITORY_ROOT, 'test/fixtures/micro-httpd')}:v1`)
      expect(scenario.images.v2).to.equal(`${join(REPOSITORY_ROOT, 'test/fixtures/micro-httpd')}:v2`)
    } finally {
      await rm(folder, { recursive: true, force: true })
    }
  })

  it('loads every shipped scenario', async () => {
    for (const name of ['split-and-heal', 'rollout-100', 'flapping-link', 'long-island', 'churn', 'concurrent-publish']) {
      const scenario = await loadScenario(join(REPOSITORY_ROOT, 'simulations', 'scenarios', `${name}.yaml`), { cwd: REPOSITORY_ROOT })
      expect(scenario.name, name).to.equal(name)
      expect(scenario.expectations.length, name).to.be.greaterThan(0)
    }
  })

  describe('rejects invalid field naming the fix', () => {
    const cases: Array<[string, string, RegExp[]]> = [
      ['missing name', 'nodes: 2\n', [/test\.yaml: name: expected a non-empty string, got nothing; write it as split-and-heal/]],
      ['a name unfit for a folder', 'name: "a/b"\nnodes: 2\n', [/name: name "a\/b"/, /use letters, digits/]],
      ['an unknown top-level field', `${MINIMAL}nodez: 3\n`, [/nodez: unknown field; use one of: name, /]],
      ['zero nodes', 'name: t\nnodes: 0\n', [/nodes: expected a whole number from 1 to 1000, got 0/]],
      ['an unknown topology', 'name: t\nnodes: 3\ntopology: { kind: mesh }\n', [/topology\.kind: unknown topology "mesh"; use one of: full, line, ring, star, random, clusters/]],
      ['a degree too high', 'name: t\nnodes: 3\ntopology: { kind: random, degree: 5 }\n', [/topology\.degree: expected a whole number from 1 to 2, got 5/]],
      ['a field the topology does not take', 'name: t\nnodes: 3\ntopology: { kind: ring, degree: 2 }\n', [/topology\.degree: topology ring takes no degree; remove it/]],
      ['a negative latency', 'name: t\nnodes: 3\nlink: { latencyMs: -1 }\n', [/link\.latencyMs: expected a whole number from 0 to 600000, got -1/]],
      ['a missing image source', 'name: t\nnodes: 3\nimages: { v1: no/such/layout:v1 }\n', [/images\.v1: image source "no\/such\/layout:v1" was not found in/, /OCI image layout folder/]],
      ['a duration without unit', `${MINIMAL}events:\n  - { at: 5, heal: all }\n`, [/events\[0\]\.at: expected a duration, got 5; write a number with a unit: ms, s, m or h/]],
      ['two actions in one event', `${MINIMAL}events:\n  - { at: 1s, heal: all, crash: { nodes: [1] } }\n`, [/events\[0\]: the event names 2 actions \(heal, crash\); give exactly one of:/]],
      ['an unknown action', `${MINIMAL}events:\n  - { at: 1s, explode: { nodes: [1] } }\n`, [/events\[0\]\.explode: unknown action; use one of: subscribe, /]],
      ['a misspelt action field', `${MINIMAL}events:\n  - { at: 1s, publish: { node: 0, imag: v1, ref: demo/a:b } }\n`, [/events\[0\]\.publish\.imag: unknown field; use one of: node, image, ref/]],
      ['an undefined image', `${MINIMAL}events:\n  - { at: 1s, publish: { node: 0, image: v9, ref: demo/a:b } }\n`, [/events\[0\]\.publish\.image: image "v9" is not defined; use one of: v1, or add it under images/]],
      ['a node that does not exist', `${MINIMAL}events:\n  - { at: 1s, crash: { nodes: [0-4] } }\n`, [/events\[0\]\.crash\.nodes: node 4 does not exist at 1000 ms, when the fleet has nodes 0 to 3; use indices from 0 to 3, or add a join event before it/]],
      ['a node used before its join', `${MINIMAL}events:\n  - { at: 1s, crash: { nodes: [4] } }\n  - { at: 2s, join: { count: 1 } }\n`, [/node 4 does not exist at 1000 ms/]],
      ['a link rule naming a missing node', `${MINIMAL}links:\n  - { from: [0], to: [9], latencyMs: 50 }\n`, [/links\[0\]\.to: node 9 does not exist after the last join, when the fleet has nodes 0 to 3/]],
      ['joins past the node limit', `${MINIMAL}events:\n  - { at: 1s, join: { count: 997 } }\n`, [/the join events grow the fleet to 1001 nodes, above the limit of 1000; join at most 996 nodes in all/]],
      ['a reference without tag', `${MINIMAL}events:\n  - { at: 1s, publish: { node: 0, image: v1, ref: demo/httpd } }\n`, [/events\[0\]\.publish\.ref: invalid reference "demo\/httpd": missing tag/, /give REPOSITORY:TAG/]],
      ['a backwards range', `${MINIMAL}events:\n  - { at: 1s, crash: { nodes: 3-1 } }\n`, [/events\[0\]\.crash\.nodes: range "3-1" runs backwards; write the lower index first, such as 1-3/]],
      ['a node in two groups', `${MINIMAL}events:\n  - { at: 1s, partition: [[0, 1], [1, 2]] }\n`, [/events\[0\]\.partition\[1\]: node 1 is also in group 0; put each node in one group only/]],
      ['a partition with one group', `${MINIMAL}events:\n  - { at: 1s, partition: [[0, 1]] }\n`, [/events\[0\]\.partition: expected two or more node groups/]],
      ['a random pick in a cut', `${MINIMAL}events:\n  - { at: 1s, cut: { from: { random: 1 }, to: [1] } }\n`, [/events\[0\]\.cut\.from: a random pick is not allowed here; list the nodes/]],
      ['a random pick larger than its pool', `${MINIMAL}events:\n  - { at: 1s, crash: { nodes: { random: 3, from: [0, 1] } } }\n`, [/crash\.nodes\.random: cannot pick 3 of the 2 nodes in "from"; pick at most 2/]],
      ['an expectation without deadline', `${MINIMAL}expect:\n  - { all: { ref: demo/a:b, image: v1 } }\n`, [/expect\[0\]\.by: expected a duration, got nothing/]],
      ['an expectation with an undefined image', `${MINIMAL}expect:\n  - { by: 5s, all: { ref: demo/a:b, image: v3 } }\n`, [/expect\[0\]\.all\.image: image "v3" is not defined; use one of: v1/]],
      ['an each expectation without nodes', `${MINIMAL}expect:\n  - { by: 5s, each: { ref: demo/a:b, image: v1 } }\n`, [/expect\[0\]\.each\.nodes: each needs the nodes it checks/]],
      ['an unknown trust mode', `${MINIMAL}trust: { mode: everyone }\n`, [/trust\.mode: unknown trust mode "everyone"; use one of: any, first-use, explicit/]],
      ['a flap that never goes down', `${MINIMAL}events:\n  - { at: 1s, flap: { from: [0], to: [1], down: 0, up: 1s, times: 2 } }\n`, [/flap\.down: a flap needs the link down for some time/]],
      ['broken YAML', 'name: [unclosed\n', [/test\.yaml: not valid YAML: [\s\S]*; fix the syntax at that line/]]
    ]

    for (const [title, text, patterns] of cases) {
      it(title, async () => {
        const message = await parseError(text)
        for (const pattern of patterns) {
          expect(message).to.match(pattern)
        }
      })
    }
  })

  it('rejects a missing scenario file', async () => {
    try {
      await loadScenario('/no/such/scenario.yaml')
      expect.fail('loaded a missing file')
    } catch (err: any) {
      expect(err).to.be.instanceOf(InvalidScenarioError)
      expect(err.message).to.equal('cannot read scenario /no/such/scenario.yaml: no such file; check the path')
    }
  })
})
