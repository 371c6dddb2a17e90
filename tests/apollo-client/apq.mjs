// Apollo Client's persisted-queries link, versions 3 and 4, over POST and
// GET, against a live BFF. Prints, per client and method, what each
// operation sent and got back; tests/it/apollo_client.rs judges it.
//
// Usage: node apq.mjs <graphql-url> <bearer-token>
import { createHash } from "node:crypto";

import * as apollo4 from "@apollo/client";
import { PersistedQueryLink as Link4 } from "@apollo/client/link/persisted-queries";
import * as apollo3 from "apollo-client-3/core/index.js";
import { createPersistedQueryLink as createLink3 } from "apollo-client-3/link/persisted-queries/index.js";

const [url, token] = process.argv.slice(2);
if (!url || !token) {
  console.error("usage: node apq.mjs <graphql-url> <bearer-token>");
  process.exit(2);
}

const sha256 = (text) => createHash("sha256").update(text).digest("hex");

/// A fetch that notes each request's method, whether it carried the query
/// text, and the reply's status.
function recordingFetch(log) {
  return async (input, init = {}) => {
    const method = (init.method ?? "GET").toUpperCase();
    const target = String(input);
    const hasQuery =
      method === "GET"
        ? new URL(target).searchParams.has("query")
        : JSON.parse(init.body ?? "{}").query !== undefined;
    const reply = await fetch(input, init);
    log.push({ method, hasQuery, status: reply.status });
    return reply;
  };
}

const clients = {
  3: (useGETForHashedQueries, fetch) =>
    new apollo3.ApolloClient({
      cache: new apollo3.InMemoryCache(),
      link: createLink3({ sha256, useGETForHashedQueries }).concat(
        new apollo3.HttpLink({ uri: url, fetch, headers: { authorization: `Bearer ${token}` } }),
      ),
    }),
  4: (useGETForHashedQueries, fetch) =>
    new apollo4.ApolloClient({
      cache: new apollo4.InMemoryCache(),
      link: new Link4({ sha256, useGETForHashedQueries }).concat(
        new apollo4.HttpLink({ uri: url, fetch, headers: { authorization: `Bearer ${token}` } }),
      ),
    }),
};

const results = [];
for (const version of ["3", "4"]) {
  for (const useGET of [false, true]) {
    const log = [];
    const client = clients[version](useGET, recordingFetch(log));
    const gql = version === "3" ? apollo3.gql : apollo4.gql;
    const tag = `V${version}${useGET ? "Get" : "Post"}`;
    // A new document (unknown hash), the same again, then another new one:
    // the link must still send hashes first after a miss.
    const operations = [
      ["first", gql`query Apq${tag} { me { id name } }`],
      ["again", gql`query Apq${tag} { me { id name } }`],
      ["another", gql`query Apq${tag}Other { me { id } }`],
    ];
    const run = { client: version, method: useGET ? "GET" : "POST", operations: [] };
    for (const [name, query] of operations) {
      const start = log.length;
      let data = null;
      let error = null;
      try {
        const reply = await client.query({ query, fetchPolicy: "network-only" });
        data = reply.data ?? null;
        error = reply.error ? String(reply.error) : null;
      } catch (caught) {
        error = String(caught);
      }
      run.operations.push({ name, data, error, requests: log.slice(start) });
    }
    results.push(run);
  }
}
console.log(JSON.stringify(results));
