// Sends identify and track calls with the official Segment Node library (@segment/analytics-node).
// Environment: KREISLAUF_HOST, KREISLAUF_WRITE_KEY, RUN_ID. Exits non-zero on any delivery error.
import { Analytics } from '@segment/analytics-node'

const run = process.env.RUN_ID
const analytics = new Analytics({ writeKey: process.env.KREISLAUF_WRITE_KEY, host: process.env.KREISLAUF_HOST, flushAt: 4, maxRetries: 3 })
let failed = false
analytics.on('error', (err) => { failed = true; console.error('delivery error', err) })

// The web shop knows the visitor only by a cookie, then by the loyalty card the Python client's user holds.
const anonymousId = `node-anon-${run}`
analytics.track({ anonymousId, event: 'Product Viewed', properties: { sku: 'PRO-DOC-BIO-075', name: 'Prosecco DOC Bio' } })
analytics.identify({ anonymousId, traits: { loyalty_card: `PY${run}`, newsletter: true } })
analytics.track({ anonymousId, event: 'Product Added', properties: { sku: 'PRO-DOC-BIO-075', quantity: 2 } })
analytics.identify({ userId: `node-user-${run}`, traits: { email: `node.${run}@example.de` } })
analytics.track({ userId: `node-user-${run}`, event: 'Order Completed', properties: { revenue: 23.9, currency: 'EUR' } })
await analytics.closeAndFlush({ timeout: 20000 })
if (failed) process.exit(1)
console.log('node: sent 5 messages')
