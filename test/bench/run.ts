/**
 * Benchmark runner: `node dist/test/bench/run.js [FILTER...] [--out FILE]`.
 *
 * Imports every compiled `*.bench.js` module beside this file, runs their
 * `bench()` one after the other and writes one Markdown page with the
 * machine, the command and each module's section. A module that throws or
 * runs past BENCH_TIMEOUT_MS gets its error as its section, and the others
 * still run. With FILTER arguments only modules whose name contains one of
 * them run, and the page goes to stdout unless `--out` names a file, so a
 * partial run never replaces docs/benchmarks.md by accident.
 */
// The polyfill must be evaluated before any module that loads libp2p.
import '../../node/polyfill.js'
import { execFileSync } from 'node:child_process'
import { readdir, writeFile } from 'node:fs/promises'
import { cpus, loadavg, release, totalmem, type } from 'node:os'
import { basename, dirname, join, relative } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { REPOSITORY_ROOT } from '../utils/paths.js'

/** Upper bound on one module's run; a module past it is reported as failed and the next one starts. */
const BENCH_TIMEOUT_MS = 15 * 60_000

const BENCH_SUFFIX = '.bench.js'

const DEFAULT_OUTPUT = join(REPOSITORY_ROOT, 'docs', 'benchmarks.md')

interface BenchModule {
  bench: () => Promise<string>
}

interface SectionResult {
  name: string
  markdown: string
  failed: boolean
  durationMs: number
}

/** Lists the compiled benchmark modules beside this file, by name. */
async function findBenchModules (filters: string[]): Promise<string[]> {
  const folder = dirname(fileURLToPath(import.meta.url))
  const files = (await readdir(folder)).filter(file => file.endsWith(BENCH_SUFFIX)).sort()
  return files
    .filter(file => filters.length === 0 || filters.some(filter => file.slice(0, -BENCH_SUFFIX.length).includes(filter)))
    .map(file => join(folder, file))
}

async function withTimeout<T> (work: Promise<T>, timeoutMs: number, label: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => { reject(new Error(`${label} did not finish within ${timeoutMs / 60_000} minutes`)) }, timeoutMs)
  })
  try {
    return await Promise.race([work, timeout])
  } finally {
    clearTimeout(timer)
  }
}

async function runModule (path: string): Promise<SectionResult> {
  const name = basename(path, BENCH_SUFFIX)
  const startMs = performance.now()
  process.stderr.write(`bench: running ${name}\n`)

  try {
    const module = await import(pathToFileURL(path).href) as Partial<BenchModule>
    if (typeof module.bench !== 'function') {
      throw new TypeError(`${basename(path)} exports no bench() function; export "async function bench (): Promise<string>"`)
    }
    const markdown = await withTimeout(module.bench(), BENCH_TIMEOUT_MS, `${name} benchmark`)
    const durationMs = performance.now() - startMs
    process.stderr.write(`bench: ${name} finished in ${(durationMs / 1000).toFixed(1)} s\n`)
    return { name, markdown: markdown.trim(), failed: false, durationMs }
  } catch (err: any) {
    const durationMs = performance.now() - startMs
    process.stderr.write(`bench: ${name} failed after ${(durationMs / 1000).toFixed(1)} s: ${err?.stack ?? String(err)}\n`)
    const markdown = [`## ${name}`, '', 'This benchmark failed, so it has no figures:', '', '```', String(err?.stack ?? err), '```'].join('\n')
    return { name, markdown, failed: true, durationMs }
  }
}

/** Returns the short commit hash, marked when the working tree has changes, or 'unknown' outside git. */
function describeCommit (): string {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPOSITORY_ROOT, encoding: 'utf8' }).trim()
    const changes = execFileSync('git', ['status', '--porcelain'], { cwd: REPOSITORY_ROOT, encoding: 'utf8' }).trim()
    return changes === '' ? commit : `${commit}, with uncommitted changes in the working tree`
  } catch {
    return 'unknown'
  }
}

/** Describes how this run was started, so a reader can repeat it. */
function describeCommand (args: string[]): string {
  const suffix = args.length > 0 ? ` ${args.join(' ')}` : ''
  const direct = `node ${relative(REPOSITORY_ROOT, fileURLToPath(import.meta.url))}${suffix}`
  if (process.env.npm_lifecycle_event === 'bench') {
    return `\`npm run bench${suffix.length > 0 ? ` --${suffix}` : ''}\`, which builds, then runs \`${direct}\``
  }
  return `\`${direct}\` after a build (\`npm run bench\` does both)`
}

function formatLoad (load: number[]): string {
  return load.map(value => value.toFixed(2)).join(', ')
}

function renderPage (sections: SectionResult[], context: { startedAt: Date, command: string, commit: string, loadBefore: number[], loadAfter: number[] }): string {
  const processors = cpus()
  const model = processors[0]?.model.trim() ?? 'unknown'
  const memoryGiB = (totalmem() / 1024 ** 3).toFixed(1)

  return [
    '# Benchmarks',
    '',
    `Generated on ${context.startedAt.toISOString().replace(/\.\d+Z$/, 'Z')} by ${context.command}, at commit ${context.commit}.`,
    '',
    '| Machine | |',
    '|---|---|',
    `| CPU | ${model}, ${processors.length} logical CPUs |`,
    `| Memory | ${memoryGiB} GiB |`,
    `| Node.js | ${process.version} |`,
    `| OS | ${type()} ${release()} (${process.arch}) |`,
    `| Load average (1, 5, 15 min) | ${formatLoad(context.loadBefore)} at the start, ${formatLoad(context.loadAfter)} at the end |`,
    '',
    'Every figure comes from one run on a shared machine whose other work competes for the same CPUs, so figures vary from run to run. Each ratio compares figures taken in the same interleaved rounds of that run.',
    '',
    ...sections.flatMap(section => [section.markdown, '', `_${section.name}: ran in ${(section.durationMs / 1000).toFixed(1)} s${section.failed ? ', failed' : ''}._`, ''])
  ].join('\n')
}

async function main (): Promise<number> {
  const args = process.argv.slice(2)
  const { values, positionals: filters } = parseArgs({ args, options: { out: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, allowPositionals: true })
  if (values.help === true) {
    console.log('Usage: node dist/test/bench/run.js [FILTER...] [--out FILE]\n\nRuns the *.bench.js modules whose name contains a FILTER (all when none is\ngiven) and writes the Markdown page to FILE; without FILTER the page goes to\ndocs/benchmarks.md, with FILTER and no --out it goes to stdout.')
    return 0
  }

  const modules = await findBenchModules(filters)
  if (modules.length === 0) {
    const available = (await findBenchModules([])).map(path => basename(path, BENCH_SUFFIX))
    console.error(`bench: no *${BENCH_SUFFIX} module matches ${filters.map(filter => JSON.stringify(filter)).join(', ')}; available: ${available.join(', ') || 'none (run npm run build first)'}`)
    return 2
  }

  const startedAt = new Date()
  const loadBefore = loadavg()
  const sections: SectionResult[] = []
  for (const path of modules) {
    sections.push(await runModule(path))
  }

  const page = renderPage(sections, { startedAt, command: describeCommand(args), commit: describeCommit(), loadBefore, loadAfter: loadavg() })
  const output = values.out ?? (filters.length === 0 ? DEFAULT_OUTPUT : undefined)
  if (output == null) {
    process.stdout.write(page)
  } else {
    await writeFile(output, page)
    process.stderr.write(`bench: wrote ${output}\n`)
  }
  return sections.some(section => section.failed) ? 1 : 0
}

// A benchmark that timed out may still hold sockets or timers open; exit
// instead of waiting for them.
process.exit(await main())
