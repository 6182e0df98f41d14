// The demo's and the tests' identity provider: OpenID Connect (the `oidc-provider`
// package), for the embedded homeserver's single sign-on. Not for production: people,
// passwords and groups come from a JSON file, and everything it keeps is in memory.
//
//   IDP_PORT=8091 IDP_PEOPLE=people.json IDP_CLIENT_SECRET=... \
//   IDP_REDIRECT=http://127.0.0.1:8008/_synapse/client/oidc/callback node provider.mjs
//
// people.json: {"people": [{"id": "carol", "name": "Carol Creator",
//                           "password": "…", "groups": ["portal-administrators"]}]}
// is read at every sign-in, so a change to it counts at once.
//
// Its sign-in page asks for a username and a password; a wrong one is refused on the
// page, "Cancel" answers the homeserver `access_denied`. There is no consent page: the
// homeserver is the only client, and it is the organisation's own.

import { readFileSync } from "node:fs";
import http from "node:http";
import Provider from "oidc-provider";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const port = Number(env("IDP_PORT"));
const issuer = `http://127.0.0.1:${port}`;
// Read at each sign-in: a change to the file (someone leaves a group) counts at once.
const listing = env("IDP_PEOPLE");
const person = (id) =>
  JSON.parse(readFileSync(listing, "utf8")).people.find((p) => p.id === id);
const scopes = "openid profile groups";

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: "synapse",
      client_secret: env("IDP_CLIENT_SECRET"),
      redirect_uris: [env("IDP_REDIRECT")],
      grant_types: ["authorization_code"],
      response_types: ["code"],
    },
  ],
  claims: { openid: ["sub"], profile: ["name", "preferred_username"], groups: ["groups"] },
  scopes: scopes.split(" "),
  cookies: { keys: [env("IDP_CLIENT_SECRET")] },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, id) {
    if (!person(id)) return undefined;
    return {
      accountId: id,
      async claims() {
        const now = person(id) ?? {};
        return { sub: id, name: now.name, preferred_username: id, groups: now.groups ?? [] };
      },
    };
  },
  // The homeserver is the organisation's own client: no consent page.
  async loadExistingGrant(ctx) {
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope(scopes);
    await grant.save();
    return grant;
  },
});

const escape = (text) =>
  String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(res, uid, { username = "", error = "" } = {}) {
  res.writeHead(error ? 401 : 200, { "Content-Type": "text/html; charset=utf-8" });
  res.end(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in</title>
<style>body{font:16px system-ui,sans-serif;max-width:24rem;margin:3rem auto;padding:0 1rem}
label,input,button{display:block;width:100%;box-sizing:border-box;margin:.3rem 0}
input,button{padding:.6rem;font:inherit}.error{color:#a00}</style></head>
<body><h1>Sign in</h1><p>The organisation's sign-in, for the chat server and the room portal.</p>
${error ? `<p class="error" role="alert">${escape(error)}</p>` : ""}
<form method="post" action="/interaction/${uid}/login">
<label for="username">Username</label>
<input id="username" name="username" autocomplete="username" value="${escape(username)}" required>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button></form>
<form method="post" action="/interaction/${uid}/abort"><button type="submit">Cancel</button></form>
</body></html>`);
}

async function form(req) {
  let body = "";
  for await (const chunk of req) body += chunk;
  return new URLSearchParams(body);
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new Error("another sign-in is under way");
  if (req.method === "GET") return page(res, uid);
  if (action === "abort") {
    return provider.interactionFinished(req, res, {
      error: "access_denied",
      error_description: "The sign-in was cancelled.",
    });
  }
  const fields = await form(req);
  const username = (fields.get("username") || "").trim().toLowerCase();
  const who = person(username);
  if (!who || who.password !== fields.get("password")) {
    return page(res, uid, { username, error: "Wrong username or password." });
  }
  return provider.interactionFinished(
    req,
    res,
    { login: { accountId: username } },
    { mergeWithLastSubmission: false },
  );
}

const handler = provider.callback();
http
  .createServer(async (req, res) => {
    const match = req.url.match(/^\/interaction\/([\w-]+)(?:\/(login|abort))?$/);
    if (!match) return handler(req, res);
    try {
      await interaction(req, res, match[1], match[2]);
    } catch (error) {
      res.writeHead(400, { "Content-Type": "text/plain; charset=utf-8" });
      res.end(`This sign-in cannot go on (${error.message}); start it again.`);
    }
  })
  .listen(port, "127.0.0.1", () => console.log(`Identity provider at ${issuer}`));
