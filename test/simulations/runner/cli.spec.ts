import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { expect } from 'chai'
import { runCli } from '../../utils/agents.js'
import { IMAGES, writeScenario } from './helpers.js'

const PASSING = `name: cli-pass
nodes: 2
${IMAGES}
events:
  - { at: 0s, subscribe: { nodes: all, ref: demo/httpd:stable } }
  - { at: 200ms, publish: { node: 0, image: httpd-v1, ref: demo/httpd:stable } }
expect:
  - { by: 15s, all: { ref: demo/httpd:stable, image: httpd-v1 } }
`

describe('kilomesh sim', function () {
  this.timeout(120_000)
  const folders: string[] = []

  after(async () => {
    await Promise.all(folders.map(async folder => { await rm(folder, { recursive: true, force: true }) }))
  })

  it('run passes with exit 0', async () => {
    const { folder, file } = await writeScenario(PASSING)
    folders.push(folder)
    const report = join(folder, 'report')

    const result = await runCli(['sim', 'run', file, '--report', report])

    expect(result.code, result.stderr).to.equal(0)
    expect(result.stdout).to.match(/publish httpd-v1 as demo\/httpd:stable on node 0/)
    expect(result.stdout).to.include('PASSED: every expectation was met')
    expect(result.stdout).to.include(`report: ${join(report, 'report.html')}`)
    expect(JSON.parse(await readFile(join(report, 'metrics.json'), 'utf8')).run.passed).to.equal(true)
  })

  it('run --json prints only a summary', async () => {
    const { folder, file } = await writeScenario(PASSING)
    folders.push(folder)

    const result = await runCli(['sim', 'run', file, '--report', join(folder, 'report'), '--json'])
    const summary = JSON.parse(result.stdout)

    expect(result.code, result.stderr).to.equal(0)
    expect(summary.passed).to.equal(true)
    expect(summary.failures).to.deep.equal([])
    expect(summary.expectations[0].status).to.equal('met')
    expect(summary.reportPath).to.equal(join(folder, 'report', 'report.html'))
  })

  it('run exit 1 names the failed expectation', async () => {
    const { folder, file } = await writeScenario(`name: cli-fail
nodes: 2
${IMAGES}
events:
  - { at: 0s, partition: [[0], [1]] }
  - { at: 100ms, publish: { node: 0, image: httpd-v1, ref: demo/httpd:stable } }
expect:
  - { by: 2s, all: { ref: demo/httpd:stable, image: httpd-v1 } }
`)
    folders.push(folder)

    const result = await runCli(['sim', 'run', file, '--report', join(folder, 'report')])

    expect(result.code).to.equal(1)
    expect(result.stdout).to.include('FAILED:\n  expectation 0 FAILED: every running node holds demo/httpd:stable = httpd-v1 by 2.000s: 1 of 2 node(s) fall short: node 1 does not know the tag')
  })

  it('run prints each expectation when decided', async () => {
    const { folder, file } = await writeScenario(`name: cli-early
nodes: 2
${IMAGES}
events:
  - { at: 0s, subscribe: { nodes: all, ref: demo/httpd:stable } }
  - { at: 3s, publish: { node: 0, image: httpd-v1, ref: demo/httpd:stable } }
expect:
  - { by: 1s, all: { ref: demo/httpd:stable, image: httpd-v1 } }
  - { by: 15s, all: { ref: demo/httpd:stable, image: httpd-v1 } }
`)
    folders.push(folder)

    const result = await runCli(['sim', 'run', file, '--report', join(folder, 'report')])

    // The first expectation fails at 1 s, before the publish at 3 s is applied.
    const failedAt = result.stdout.indexOf('expectation 0 FAILED')
    const publishedAt = result.stdout.indexOf('publish httpd-v1 as demo/httpd:stable')
    expect(result.code).to.equal(1)
    expect(failedAt).to.be.greaterThan(-1)
    expect(publishedAt).to.be.greaterThan(failedAt)
    expect(result.stdout).to.include('expectation 1 met')
  })

  it('converged fails when no node knows the tag', async () => {
    const { folder, file } = await writeScenario(`name: cli-unknown
nodes: 2
${IMAGES}
expect:
  - { by: 1s, converged: { ref: demo/httpd:stable } }
`)
    folders.push(folder)

    const result = await runCli(['sim', 'run', file, '--report', join(folder, 'report')])

    expect(result.code).to.equal(1)
    expect(result.stdout).to.include('expectation 0 FAILED: every running node resolves demo/httpd:stable to the same image by 1.000s: no running node resolves demo/httpd:stable yet')
  })

  it('invalid scenario exits 2 naming the field', async () => {
    const { folder, file } = await writeScenario('name: bad\nnodes: 2\nevents:\n  - { at: 1s, crash: { nodes: [7] } }\n')
    folders.push(folder)

    const result = await runCli(['sim', 'run', file])

    expect(result.code).to.equal(2)
    expect(result.stderr).to.equal(`kilomesh sim: ${file}: events[0].crash.nodes: node 7 does not exist at 1000 ms, when the fleet has nodes 0 to 1; use indices from 0 to 1, or add a join event before it\n`)
    expect(result.stdout).to.equal('')
  })

  it('invalid scenario with --json prints a JSON error', async () => {
    const { folder, file } = await writeScenario('name: bad\nnodes: 2\nevents:\n  - { at: 1s, crash: { nodes: [7] } }\n')
    folders.push(folder)

    const result = await runCli(['sim', 'run', file, '--json'])

    expect(result.code).to.equal(2)
    const error = (JSON.parse(result.stderr) as { error: { command: string, name: string, message: string } }).error
    expect(error.command).to.equal('sim')
    expect(error.name).to.equal('InvalidScenarioError')
    expect(error.message).to.include('events[0].crash.nodes: node 7 does not exist')
    expect(result.stdout).to.equal('')
  })

  it('validate prints the sorted timeline', async () => {
    const { folder, file } = await writeScenario(PASSING)
    folders.push(folder)

    const result = await runCli(['sim', 'validate', file])

    expect(result.code, result.stderr).to.equal(0)
    expect(result.stdout.split('\n').slice(0, 4)).to.deep.equal([
      `${file}: valid; 2 nodes (2 after joins), 2 events, 1 expectations`,
      '   0.000s  subscribe all nodes to demo/httpd:stable',
      '   0.200s  publish httpd-v1 as demo/httpd:stable on node 0',
      '  by 15.000s: every running node holds demo/httpd:stable = httpd-v1'
    ])
  })

  it('unknown subcommand exits 2', async () => {
    const result = await runCli(['sim', 'start', 'x.yaml'])

    expect(result.code).to.equal(2)
    expect(result.stderr).to.include('unknown subcommand "start"; use "kilomesh sim run SCENARIO.yaml" or "kilomesh sim validate SCENARIO.yaml"')
  })
})
