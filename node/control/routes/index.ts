/** Every control API route. A module that adds commands adds its route list here. */
import { catalogRoutes } from './catalog.js'
import { coreRoutes } from './core.js'
import { debugRoutes } from './debug.js'
import { subscriptionRoutes } from './subscriptions.js'
import type { ControlRoute } from '../route.js'

export const CONTROL_ROUTES: ControlRoute[] = [
  ...coreRoutes,
  ...catalogRoutes,
  ...debugRoutes,
  ...subscriptionRoutes
]
