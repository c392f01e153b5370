import { readFile, stat } from 'node:fs/promises'
import { expect } from 'chai'
import { cleanUp, IMAGES, runYaml, type TestRun } from './helpers.js'

describe('simulation runner', function () {
  this.timeout(120_000)
  let run: TestRun | undefined

  afterEach(async () => {
    await cleanUp(run)
    run = undefined
  })

  it('interrupted run still writes its report', async () => {
    // The publish at 30 s is never reached: the run is interrupted once the
    // first event is applied, after setup.
    const interrupt = new AbortController()
    run = await runYaml(`name: interrupted
nodes: 2
${IMAGES}
events:
  - { at: 0s, subscribe: { nodes: all, ref: demo/httpd:stable } }
  - { at: 30s, publish: { node: 0, image: httpd-v1, ref: demo/httpd:stable } }
expect:
  - { by: 40s, all: { ref: demo/httpd:stable, image: httpd-v1 } }
`, {
      signal: interrupt.signal,
      onLine: line => {
        if (line.includes('subscribe nodes 0-1')) {
          interrupt.abort(new Error('interrupted by the test'))
        }
      }
    })
    const { result, metrics } = run

    expect(result.passed).to.equal(false)
    expect(result.failures.some(failure => failure.startsWith('the run was interrupted at'))).to.equal(true)
    expect(metrics.run.passed).to.equal(false)
    expect(metrics.expectations[0]?.status).to.equal('failed')
    expect((await stat(result.reportPath)).size).to.be.greaterThan(0)
  })

  it('rolls out to subscribed nodes', async () => {
    run = await runYaml(`name: rollout-small
seed: 2
nodes: 4
topology: { kind: line }
link: { latencyMs: 5, jitterMs: 2, bandwidthKbps: 20000 }
${IMAGES}
events:
  - { at: 0s, subscribe: { nodes: all, ref: demo/httpd:stable } }
  - { at: 500ms, publish: { node: 0, image: httpd-v1, ref: demo/httpd:stable } }
expect:
  - { by: 20s, all: { ref: demo/httpd:stable, image: httpd-v1, pulled: true } }
`)
    const { result, metrics, lines } = run

    expect(result.failures).to.deep.equal([])
    expect(result.passed).to.equal(true)
    expect(metrics.run.passed).to.equal(true)
    expect(metrics.expectations[0]?.status).to.equal('met')
    expect(metrics.expectations[0]?.decidedAtMs).to.be.below(20_000)
    expect(metrics.events[0]?.text).to.equal('subscribe nodes 0-3 to demo/httpd:stable')
    // The agent tops up its connections beyond the line's links, so the gossip fan-out varies.
    expect(metrics.events[1]?.text).to.match(new RegExp(`^publish httpd-v1 as demo/httpd:stable on node 0 \\(${metrics.nodes[0]?.firstHoldings[0]?.digest.slice(0, 19) ?? 'no digest'}, announced to [1-3] peer\\(s\\)\\)$`))

    // Every node pulled, the publisher first, and the others after it.
    for (const node of metrics.nodes) {
      const first = node.firstHoldings.find(holding => holding.image === 'httpd-v1')
      expect(first?.pulledAtMs, `node ${node.index}`).to.be.a('number')
      expect(first?.learnedAtMs, `node ${node.index}`).to.be.at.most(first?.pulledAtMs ?? 0)
    }
    expect(metrics.events[1]?.protocolsBefore['/ipfs/id/1.0.0']?.sentBytes).to.be.greaterThan(0)
    expect(metrics.events[1]?.totalsBefore.running).to.equal(4)
    expect(metrics.nodes.map(node => node.keeps)).to.deep.equal([[], [0], [1], [2]])
    expect(metrics.nodes[0]?.byProtocol['/kilomesh/blob/1.0.0']?.sentBytes).to.be.greaterThan(0)
    expect(metrics.nodes[3]?.byProtocol['/kilomesh/blob/1.0.0']?.receivedBytes).to.be.greaterThan(0)
    expect(metrics.nodes[3]?.wireReceivedBytes).to.be.greaterThan(metrics.nodes[3]?.receivedBytes ?? Infinity)
    expect(metrics.nodes.every(node => node.status === 'stopped')).to.equal(true)

    // The plot's samples end with every running node holding the image.
    const last = metrics.samples[metrics.samples.length - 1]
    expect(last?.holdings['demo/httpd:stable = httpd-v1']).to.deep.equal({ learned: 4, pulled: 4 })

    expect(lines.some(line => line.includes('pulled demo/httpd:stable = httpd-v1'))).to.equal(true)
    expect(lines.some(line => line.includes('expectation 0 met: every running node holds demo/httpd:stable = httpd-v1'))).to.equal(true)

    const html = await readFile(result.reportPath, 'utf8')
    expect(html).to.include('<h1>rollout-small</h1>')
    expect(html.match(/<svg xmlns/g)).to.have.length(5)
    expect(metrics.samples.every(sample => sample.loopDelayMs >= 0)).to.equal(true)
    expect(html).to.include('PASSED')
  })

  it('names expectation a partition prevents', async () => {
    run = await runYaml(`name: cut-off
nodes: 4
topology: { kind: full }
${IMAGES}
events:
  - { at: 0s, subscribe: { nodes: all, ref: demo/httpd:stable } }
  - { at: 0s, partition: [[0, 1], [2, 3]] }
  - { at: 300ms, publish: { node: 0, image: httpd-v1, ref: demo/httpd:stable } }
expect:
  - { by: 10s, each: { nodes: 0-1, ref: demo/httpd:stable, image: httpd-v1 } }
  - { by: 4s, all: { ref: demo/httpd:stable, image: httpd-v1 } }
`)
    const { result, metrics } = run

    expect(result.passed).to.equal(false)
    expect(metrics.expectations.map(item => item.status)).to.deep.equal(['met', 'failed'])
    expect(result.failures).to.have.length(1)
    expect(result.failures[0]).to.match(/^expectation 1 FAILED: every running node holds demo\/httpd:stable = httpd-v1 by 4\.000s: 2 of 4 node\(s\) fall short: node 2 does not know the tag; node 3 does not know the tag$/)
    expect(metrics.expectations[1]?.decidedAtMs).to.be.at.least(4_000)
    expect(metrics.events[1]?.text).to.match(/^partition into \[0-1\] \| \[2-3\] \(\d+ connection end\(s\) reset\)$/)
  })

  it('restarted node keeps catalog and blobs', async () => {
    // Node 2 is cut off before it restarts, so it can only hold the image from its own disk and datastore.
    run = await runYaml(`name: crash-restart
nodes: 3
topology: { kind: full }
${IMAGES}
events:
  - { at: 0s, subscribe: { nodes: all, ref: demo/httpd:stable } }
  - { at: 300ms, publish: { node: 0, image: httpd-v1, ref: demo/httpd:stable } }
  - { at: 5s, crash: { nodes: [2] } }
  - { at: 5s, partition: [[0, 1], [2]] }
  - { at: 6s, restart: { nodes: [2] } }
expect:
  - { by: 5s, all: { ref: demo/httpd:stable, image: httpd-v1 } }
  - { by: 9s, each: { nodes: [2], ref: demo/httpd:stable, image: httpd-v1 } }
`)
    const { result, metrics } = run
    const restarted = metrics.nodes[2]

    expect(result.failures).to.deep.equal([])
    expect(restarted?.starts).to.equal(2)
    expect(restarted?.crashes).to.equal(1)
    expect(restarted?.startDurationsMs).to.have.length(2)
    expect(metrics.events.map(event => event.text).slice(2)).to.deep.equal([
      'crash node 2',
      'partition into [0-1] | [2] (0 connection end(s) reset)',
      'restart node 2'
    ])
  })

  it('joins and leaves nodes', async () => {
    run = await runYaml(`name: join-leave
nodes: 3
topology: { kind: ring }
${IMAGES}
events:
  - { at: 0s, subscribe: { nodes: all, ref: demo/httpd:stable } }
  - { at: 300ms, publish: { node: 0, image: httpd-v1, ref: demo/httpd:stable } }
  - { at: 1s, leave: { nodes: [1] } }
  - { at: 1s, join: { count: 2, peers: [0], subscribe: [demo/httpd:stable] } }
expect:
  - { by: 20s, all: { ref: demo/httpd:stable, image: httpd-v1 } }
`)
    const { result, metrics } = run

    expect(result.failures).to.deep.equal([])
    expect(metrics.scenario.maxNodes).to.equal(5)
    expect(metrics.nodes.map(node => node.status)).to.deep.equal(['stopped', 'left', 'stopped', 'stopped', 'stopped'])
    expect(metrics.nodes[3]?.keeps).to.deep.equal([0])
    expect(metrics.events[3]?.text).to.equal('join nodes 3-4 (3 keeps 0; 4 keeps 0), subscribed to demo/httpd:stable')
    expect(metrics.nodes[4]?.firstHoldings[0]?.pulledAtMs).to.be.a('number')
  })

  it('failed event fails the run', async () => {
    run = await runYaml(`name: bad-event
nodes: 2
${IMAGES}
events:
  - { at: 0s, crash: { nodes: [1] } }
  - { at: 100ms, publish: { node: 1, image: httpd-v1, ref: demo/httpd:stable } }
  - { at: 200ms, restart: { nodes: [0] } }
`)
    const { result, metrics } = run

    expect(result.passed).to.equal(false)
    expect(result.failures).to.deep.equal([
      'event events[1] (publish httpd-v1 as demo/httpd:stable on node 1) failed: cannot publish on node-1 (crashed): only running nodes can',
      'event events[2] (restart node 0) failed: cannot restart node-0: it is running, and only crashed nodes restart (join adds new nodes)'
    ])
    expect(metrics.events[1]?.error).to.equal('cannot publish on node-1 (crashed): only running nodes can')
  })

  it('seed repeats identities, links and picks', async () => {
    const yaml = `name: seeded
seed: 99
nodes: 6
topology: { kind: random, degree: 2 }
events:
  - { at: 0s, crash: { nodes: { random: 2 } } }
  - { at: 100ms, restart: { nodes: all } }
`
    const first = await runYaml(yaml)
    await cleanUp(first)
    run = await runYaml(yaml)

    expect(run.metrics.nodes.map(node => node.peerId)).to.deep.equal(first.metrics.nodes.map(node => node.peerId))
    expect(run.metrics.nodes.map(node => node.keeps)).to.deep.equal(first.metrics.nodes.map(node => node.keeps))
    expect(run.metrics.events.map(event => event.text)).to.deep.equal(first.metrics.events.map(event => event.text))
    expect(run.metrics.events[0]?.text).to.match(/^crash nodes \d(, \d|-\d)$/)
  })

  it('writes metrics and report files', async () => {
    run = await runYaml('name: empty\nnodes: 2\n')

    expect(run.result.passed).to.equal(true)
    expect((await stat(run.result.metricsPath)).size).to.be.greaterThan(0)
    expect(run.result.reportPath.endsWith('/report/report.html')).to.equal(true)
    expect(run.metrics.scenario.name).to.equal('empty')
    expect(run.metrics.run.timingNote).to.match(/real clock/)
    expect(run.metrics.nodes).to.have.length(2)
  })
})
