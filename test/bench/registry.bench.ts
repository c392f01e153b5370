/**
 * Benchmark of the registry API with the real skopeo. It times `skopeo copy`
 * of micro-httpd:v1 and of busybox:1.35 (both platforms) out of a kilomesh
 * agent that holds them. The baseline is the same copies out of the
 * reference registry (`docker-registry` from Debian's packages) on loopback.
 * A cold pull goes through agent B, a fresh agent connected to agent A,
 * which has to fetch every blob from A through the mesh. It is timed twice:
 * after B has pulled another image, as on a device whose agent has been
 * running, and as B's first pull after it started.
 */
import { execFile, spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { cpus } from 'node:os'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { cleanUp, runCli, startAgent, type TestAgent } from '../utils/agents.js'
import { fixture } from '../utils/paths.js'
import { writeRandomImage } from './utils/random-image.js'
import { formatMs, summarize } from './utils/stats.js'
import { renderTable, missedTargets, type BenchRow } from './utils/table.js'
import { WRITE_BEHIND_MS } from '../../node/agent/write-behind.js'

const run = promisify(execFile)

/** Timed copies per image and registry; rounds alternate which registry goes first. */
const WARM_ROUNDS = 10
/** Untimed copies per image and registry before the timed ones. */
const WARMUP_ROUNDS = 2
/** Cold pulls per image, each through a freshly started agent B. */
const COLD_ROUNDS = 10
/** Size of each random layer of the image agent B pulls before the timed cold pulls: that of busybox's layers. */
const WARM_UP_LAYER_BYTES = 1_000_000
/** Time for the reference registry to respond to /v2/ and for agent B to connect to agent A. */
const READY_TIMEOUT_MS = 20_000
/**
 * Pause after each cold pull through agent B, in ms. B writes the blobs it
 * sent from memory only after a delay (WRITE_BEHIND_MS), and those writes
 * must not fall into the next timed pull, above all the reference registry's.
 */
const PAUSE_AFTER_COLD_PULL_MS = 3 * WRITE_BEHIND_MS

/** Largest ratio of the warm agent's median to the reference registry's that meets the target. */
const MAX_WARM_RATIO = 1
/** Largest ratio of the cold mesh pull's median to the reference registry's that meets the target. */
const MAX_COLD_RATIO = 1.5

interface BenchImage {
  label: string
  /** Path of the OCI image layout that contains the image. */
  layout: string
  tag: string
  repository: string
  all: boolean
}

const IMAGES: BenchImage[] = [
  { label: 'micro-httpd:v1 (7 KB, 3 blobs)', layout: fixture('micro-httpd'), tag: 'v1', repository: 'bench/httpd', all: false },
  { label: 'busybox:1.35 --all (2.1 MB, 7 blobs)', layout: fixture('busybox'), tag: '1.35', repository: 'bench/busybox', all: true }
]

/**
 * Returns the image agent B pulls, untimed, before the timed cold pulls:
 * two platforms of random 1 MB layers, shaped like busybox but sharing
 * none of its blobs. Its layout goes into the benchmark's work folder.
 */
function warmUpImage (work: string): BenchImage {
  return { label: 'warm-up', layout: join(work, 'warm-up-layout'), tag: 'w', repository: 'bench/warm-up', all: true }
}

async function skopeoCopy (source: string, destination: string, all: boolean): Promise<void> {
  const args = ['--insecure-policy', 'copy', '--src-tls-verify=false', '--dest-tls-verify=false', ...(all ? ['--all'] : []), source, destination]
  await run('skopeo', args, { timeout: 120_000 })
}

/** Times one `skopeo copy` out of a registry into a fresh OCI layout, which is removed afterwards. */
async function timePull (registry: string, image: BenchImage, work: string): Promise<number> {
  const out = await mkdtemp(join(work, 'pull-'))
  const startedMs = performance.now()
  await skopeoCopy(`docker://${registry}/${image.repository}:${image.tag}`, `oci:${out}:${image.tag}`, image.all)
  const elapsedMs = performance.now() - startedMs
  await rm(out, { recursive: true, force: true })
  return elapsedMs
}

async function freeLoopbackPort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => { resolve(typeof address === 'object' && address != null ? address.port : 0) })
    })
  })
}

async function waitFor (check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS
  while (!await check().catch(() => false)) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${READY_TIMEOUT_MS} ms waiting for ${what}`)
    }
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

async function status (url: string): Promise<number> {
  return (await fetch(url)).status
}

/** Starts the reference registry with filesystem storage in `folder`; returns its HOST:PORT and a stop function. */
async function startReferenceRegistry (folder: string): Promise<{ address: string, stop: () => Promise<void> }> {
  const port = await freeLoopbackPort()
  const address = `127.0.0.1:${port}`
  const config = join(folder, 'config.yml')
  await writeFile(config, [
    'version: 0.1',
    'log:',
    '  level: error',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${join(folder, 'storage')}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: ${address}`
  ].join('\n'))

  const child = spawn('docker-registry', ['serve', config], { stdio: 'ignore' })
  const exited = new Promise(resolve => child.once('exit', resolve))
  await waitFor(async () => await status(`http://${address}/v2/`) === 200, `docker-registry on ${address}`)

  return {
    address,
    stop: async () => {
      child.kill('SIGTERM')
      await exited
    }
  }
}

/** Pushes images into a registry with skopeo. */
async function pushImages (registry: string, images: BenchImage[]): Promise<void> {
  for (const image of images) {
    await skopeoCopy(`oci:${image.layout}:${image.tag}`, `docker://${registry}/${image.repository}:${image.tag}`, image.all)
  }
}

async function measureWarm (agent: string, reference: string, work: string): Promise<Map<string, { agentMs: number[], referenceMs: number[] }>> {
  const samples = new Map(IMAGES.map(image => [image.label, { agentMs: [] as number[], referenceMs: [] as number[] }]))

  for (let round = 0; round < WARMUP_ROUNDS + WARM_ROUNDS; round++) {
    for (const image of IMAGES) {
      const entry = samples.get(image.label)
      const order = round % 2 === 0 ? ['agent', 'reference'] as const : ['reference', 'agent'] as const
      for (const target of order) {
        const elapsedMs = await timePull(target === 'agent' ? agent : reference, image, work)
        if (round >= WARMUP_ROUNDS) {
          entry?.[target === 'agent' ? 'agentMs' : 'referenceMs'].push(elapsedMs)
        }
      }
    }
  }
  return samples
}

/** Returns the number of peers an agent is connected to, as `kilomesh status --json` reports it. */
async function connectedPeers (agent: TestAgent): Promise<number> {
  const result = await runCli(['status', '--dir', agent.dir, '--json'])
  return result.code === 0 ? (JSON.parse(result.stdout) as { connectedPeers: number }).connectedPeers : 0
}

/** Returns true when a registry's `tags/list` of the image's repository includes its tag. */
async function listsTag (registry: string, image: BenchImage): Promise<boolean> {
  const response = await fetch(`http://${registry}/v2/${image.repository}/tags/list`)
  return response.ok && ((await response.json()) as { tags?: string[] }).tags?.includes(image.tag) === true
}

/**
 * Times pulls through fresh agents connected to `holder`. The fresh agent
 * has synced the tags from its peer but has none of the blobs, so each
 * pull fetches every blob through the mesh. With `warmUp`, B first pulls
 * that image, untimed. A long-running agent has run its data path before,
 * so V8 has compiled it. A just-started one runs it for the first time, and
 * its first 1 MB transfer took 20 to 36 ms instead of 5 to 10.
 * Each cold pull is paired with a pull from the reference registry in the
 * same round, alternating which goes first, so both figures see the same
 * load on the machine.
 */
async function measureCold (holder: TestAgent, reference: string, work: string, warmUp?: BenchImage): Promise<Map<string, { agentMs: number[], referenceMs: number[] }>> {
  const samples = new Map(IMAGES.map(image => [image.label, { agentMs: [] as number[], referenceMs: [] as number[] }]))

  for (let round = 0; round < COLD_ROUNDS; round++) {
    const fresh = await startAgent({ registry: '127.0.0.1:0', bootstrap: [holder.info.multiaddrs[0] ?? ''] })
    try {
      await waitFor(async () => await connectedPeers(fresh) > 0, 'agent B to connect to agent A')
      // A device that joined the mesh earlier has synced its catalog. The
      // clock starts once B lists the tags, while every blob is still on A.
      for (const image of [...IMAGES, ...(warmUp == null ? [] : [warmUp])]) {
        await waitFor(async () => await listsTag(fresh.info.registry ?? '', image), `agent B to learn ${image.repository}:${image.tag} from agent A`)
      }
      if (warmUp != null) {
        await timePull(fresh.info.registry ?? '', warmUp, work)
      }
      for (const image of IMAGES) {
        const entry = samples.get(image.label)
        const order = round % 2 === 0 ? ['agent', 'reference'] as const : ['reference', 'agent'] as const
        for (const target of order) {
          const elapsedMs = await timePull(target === 'agent' ? fresh.info.registry ?? '' : reference, image, work)
          entry?.[target === 'agent' ? 'agentMs' : 'referenceMs'].push(elapsedMs)
          if (target === 'agent') {
            await new Promise(resolve => setTimeout(resolve, PAUSE_AFTER_COLD_PULL_MS))
          }
        }
      }
    } finally {
      await cleanUp([fresh])
    }
  }
  return samples
}

function ratioRow (measure: string, kilomeshMs: number[], baselineMs: number[], maxRatio: number): BenchRow {
  const kilomesh = summarize(kilomeshMs)
  const baseline = summarize(baselineMs)
  const ratio = kilomesh.median / baseline.median
  return {
    measure,
    kilomesh: `${formatMs(kilomesh.median)} (p90 ${formatMs(kilomesh.p90)})`,
    baseline: `${formatMs(baseline.median)} (p90 ${formatMs(baseline.p90)})`,
    ratio,
    target: `≤ ${maxRatio.toFixed(2)}x`,
    met: ratio <= maxRatio
  }
}

async function versionOf (command: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await run(command, args)
    return stdout.trim().split('\n')[0] ?? 'unknown'
  } catch {
    return 'unknown'
  }
}

/** Runs the benchmark and returns its Markdown section. */
export async function bench (): Promise<string> {
  const work = await mkdtemp(join(tmpdir(), 'kilomesh-registry-bench-'))
  const agents: TestAgent[] = []
  let reference: { address: string, stop: () => Promise<void> } | undefined

  try {
    reference = await startReferenceRegistry(work)
    const holder = await startAgent({ registry: '127.0.0.1:0' })
    agents.push(holder)
    const warmUp = warmUpImage(work)
    await writeRandomImage(warmUp.layout, warmUp.tag, ['amd64', 'arm64'], WARM_UP_LAYER_BYTES)
    await pushImages(reference.address, IMAGES)
    await pushImages(holder.info.registry ?? '', [...IMAGES, warmUp])

    const warm = await measureWarm(holder.info.registry ?? '', reference.address, work)
    const cold = await measureCold(holder, reference.address, work, warmUp)
    const first = await measureCold(holder, reference.address, work)

    const rows: BenchRow[] = []
    for (const image of IMAGES) {
      const warmSamples = warm.get(image.label)
      rows.push(ratioRow(`warm pull of ${image.label} from the agent`, warmSamples?.agentMs ?? [], warmSamples?.referenceMs ?? [], MAX_WARM_RATIO))
    }
    for (const image of IMAGES) {
      const coldSamples = cold.get(image.label)
      rows.push(ratioRow(`cold pull of ${image.label} through agent B`, coldSamples?.agentMs ?? [], coldSamples?.referenceMs ?? [], MAX_COLD_RATIO))
    }
    for (const image of IMAGES) {
      const firstSamples = first.get(image.label)
      rows.push({ ...ratioRow(`cold pull of ${image.label} as B's first pull after its start`, firstSamples?.agentMs ?? [], firstSamples?.referenceMs ?? [], MAX_COLD_RATIO), target: undefined, met: undefined })
    }

    const missed = missedTargets(rows)
    return [
      '## Registry API: skopeo copy',
      '',
      `Wall time of one \`skopeo copy docker://REGISTRY/REPOSITORY:TAG oci:FRESH_FOLDER:TAG\` process, as median and 90th percentile. The baseline is the reference registry (${await versionOf('docker-registry', ['--version'])}, filesystem storage) on loopback. A warm pull reads from agent A, which holds the images in its store; ${WARM_ROUNDS} timed rounds after ${WARMUP_ROUNDS} untimed ones, alternating which registry goes first. A cold pull goes through agent B, started fresh for each of ${COLD_ROUNDS} rounds and connected to A over loopback TCP. The clock starts once B has learnt the tags from A through the catalog sync that runs on every new connection, as on a device that joined the mesh earlier. B has none of the blobs, so it fetches every one from A through the mesh before responding. Before the timed pulls, B pulls another image through its registry, untimed: two platforms of random ${WARM_UP_LAYER_BYTES / 1e6} MB layers, which share no blob with the timed images. That is the state of a device whose agent has been running, and it matches the baseline, a registry process that has served before. The last two rows time B's first pull after it started, in ${COLD_ROUNDS} more rounds. There V8 runs the agent's data path for the first time. In separate runs, that first 1 MB transfer took 20 to 36 ms instead of 5 to 10. Each cold pull's baseline is a pull from the reference registry in the same round, alternating which goes first. B writes the blobs it passed on from memory ${WRITE_BEHIND_MS} ms after the fetch, so each pull through B is followed by a pause of ${PAUSE_AFTER_COLD_PULL_MS} ms, and those writes never fall into the next timed pull. Agents run as \`kilomesh agent\` processes.`,
      '',
      renderTable(rows),
      '',
      missed.length === 0 ? 'Every target is met.' : `Missed: ${missed.map(row => row.measure).join('; ')}.`,
      '',
      `Notes: ${await versionOf('skopeo', ['--version'])}, Node.js ${process.version}, ${cpus().length} CPU cores (${cpus()[0]?.model ?? 'unknown model'}). Each time includes skopeo's own start (the same for both registries) and writing the layout. Run with \`npm run bench\`.`,
      ''
    ].join('\n')
  } finally {
    await cleanUp(agents)
    await reference?.stop()
    await rm(work, { recursive: true, force: true })
  }
}
