/** Every control API route. A module that adds commands adds its route list here. */
import { coreRoutes } from './core.js'
import type { ControlRoute } from '../route.js'

export const CONTROL_ROUTES: ControlRoute[] = [
  ...coreRoutes
]
