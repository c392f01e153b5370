#!/usr/bin/env node
// The polyfill must be evaluated before any module that loads libp2p.
import '../polyfill.js'
import { main } from './main.js'

process.exitCode = await main(process.argv.slice(2))
