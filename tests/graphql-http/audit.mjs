// Runs the graphql-http audit suite (the GraphQL-over-HTTP spec's
// conformance checks) against a live BFF and prints the results as JSON.
// Usage: node audit.mjs <graphql url> <bearer token>
import { auditServer } from 'graphql-http';

const [url, token] = process.argv.slice(2);
if (!url || !token) {
  console.error('usage: node audit.mjs <graphql url> <bearer token>');
  process.exit(2);
}

// Every request carries the token: the BFF's /graphql is authenticated.
const fetchFn = (input, init = {}) =>
  fetch(input, { ...init, headers: { ...(init.headers ?? {}), authorization: `Bearer ${token}` } });

const results = await auditServer({ url, fetchFn });
const summary = results.map(({ id, name, status, reason }) => ({ id, name, status, reason: reason ?? null }));
console.log(JSON.stringify(summary));
