// @fcgi-sse/client: an EventSource client for fcgi_sse event streams.
// Types: ../index.d.ts. Guide: ../README.md.

export { StreamClient, createClient, CONTROL_EVENTS } from './client.js';
export { compareEventIds, isEventId } from './event-id.js';
export { backoffDelay } from './backoff.js';
