/**
 * Bundles the compiled CLI (dist/node/cli/bin.js) with esbuild into
 * dist/node/bundle/, the `kilomesh` bin of package.json. `npm run build` runs
 * it after `tsc`. Node then resolves and parses a few files at start instead
 * of about 570 ES modules, and the agent keeps minified source text in
 * memory. Measured on a 2-core machine, the agent command's median start
 * fell from 567 ms to 241 ms.
 *
 * Code splitting keeps each `await import()` a separate chunk, so commands
 * that only ask the agent, such as `kilomesh status`, still load no libp2p
 * code.
 */
import { rm } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

/** Repository root. This file compiles to dist/node/cli/, three levels below it. */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url))

/**
 * The bundle's folder. It sits at the same depth as dist/node/cli/, so paths
 * that the CLI resolves against `import.meta.url`, such as
 * `../../../package.json` for `--version`, name the same files.
 */
export const BUNDLE_DIR = 'dist/node/bundle'

/**
 * Packages that stay outside the bundle, loaded from node_modules at run
 * time. classic-level loads its compiled addon from a path inside its own
 * package folder, so it cannot move into the bundle.
 */
const EXTERNAL_PACKAGES = ['classic-level']

/**
 * Gives the CommonJS code inside the bundle a `require`. esbuild turns its
 * `require` calls (of Node's built-in modules and of classic-level) into
 * calls of the global `require`, which an ES module lacks.
 */
const REQUIRE_BANNER = "import { createRequire as kilomeshCreateRequire } from 'node:module'; const require = kilomeshCreateRequire(import.meta.url);"

// Chunk names carry a content hash, so a rebuild would leave stale chunks.
await rm(new URL(BUNDLE_DIR, `file://${ROOT}`), { recursive: true, force: true })

const result = await build({
  absWorkingDir: ROOT,
  // agent.js is an entry too so that the benchmark can time loading the
  // agent's code alone. The bin imports the same shared chunk.
  entryPoints: { kilomesh: 'dist/node/cli/bin.js', agent: 'dist/node/agent/agent.js' },
  outdir: BUNDLE_DIR,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: EXTERNAL_PACKAGES,
  banner: { js: REQUIRE_BANNER },
  chunkNames: '[name]-[hash]',
  minify: true,
  // Stack traces and `name` properties keep the source's function and class names.
  keepNames: true,
  sourcemap: true,
  logLevel: 'warning'
})

if (result.errors.length > 0) {
  process.exitCode = 1
}
