// Renders GraphiQL against this BFF, from assets the BFF serves itself.
// In --demo on a loopback address, the headers start with a fresh
// development token from /demo/token, so the first request (the schema for
// the docs pane and autocompletion) is not a 401. Elsewhere /demo/token is
// 404 and the headers hold a placeholder to replace.
(async () => {
  let headers = '{\n  "Authorization": "Bearer <paste a token>"\n}';
  try {
    const reply = await fetch("/demo/token", { headers: { accept: "application/json" } });
    if (reply.ok) {
      const { accessToken } = await reply.json();
      headers = JSON.stringify({ Authorization: `Bearer ${accessToken}` }, null, 2);
    }
  } catch (_) {
    // No demo: keep the placeholder.
  }
  const fetcher = GraphiQL.createFetcher({ url: new URL("/graphql", location.href).href });
  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, {
      fetcher,
      headers,
      shouldPersistHeaders: false,
      defaultQuery: "{\n  me {\n    name\n  }\n}\n",
    }),
  );
})();
