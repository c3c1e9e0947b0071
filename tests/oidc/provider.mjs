// The OpenID Provider the tests sign in through: the OpenID-certified `oidc-provider` package, run
// as it ships, configured from a JSON file the test writes (tests/oidc_provider.py):
//   { issuer, port, jwks: {keys: [private JWKs]}, clients: [...client metadata],
//     accounts: {login: {sub, ...claims}}, id_token_ttl_seconds }
// `node provider.mjs dev.json` runs it for development (README, "Sign-in").
// A person signs in on the package's own development login form (any password; `login` names the
// account); consent is given at once for the clients the test registered (first-party clients).
// One test-only route, POST /__test/next-id-token {id_token}, replaces the ID token of the next
// token response: how the attack tests put a forged token in a real exchange.
import { readFileSync } from "node:fs";
import Provider from "oidc-provider";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const accounts = config.accounts;

const provider = new Provider(config.issuer, {
  clients: config.clients,
  jwks: config.jwks, // absent (tests/oidc/dev.json): the package's development key
  async findAccount(ctx, id) {
    const account = accounts[id];
    if (!account) return undefined;
    return { accountId: id, async claims() { return { ...account }; } };
  },
  claims: {
    openid: ["sub"],
    profile: ["name", "given_name", "family_name"],
    hetu: ["hetu"],
    groups: ["groups"],
  },
  scopes: ["openid", "profile", "hetu", "groups"],
  // Claims asked for by scope go into the ID token (as the Finnish brokers send them), not only userinfo.
  conformIdTokenClaims: false,
  async loadExistingGrant(ctx) {
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope("openid profile hetu groups");
    grant.addOIDCClaims(["name", "given_name", "family_name", "hetu", "groups"]);
    await grant.save();
    return grant;
  },
  features: {
    devInteractions: { enabled: true },
    encryption: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  enabledJWA: {
    idTokenSigningAlgValues: ["RS256", "ES256", "PS256"],
    clientAuthSigningAlgValues: ["RS256", "ES256", "PS256"],
  },
  pkce: { required: () => true },
  ttl: { IdToken: config.id_token_ttl_seconds || 3600 },
  cookies: { keys: ["wallet-test-provider-cookie-key"] },
});
provider.proxy = false;

let nextIdToken = null;
provider.use(async (ctx, next) => {
  if (ctx.path === "/__test/next-id-token" && ctx.method === "POST") {
    const chunks = [];
    for await (const chunk of ctx.req) chunks.push(chunk);
    nextIdToken = JSON.parse(Buffer.concat(chunks).toString()).id_token;
    ctx.status = 204;
    return;
  }
  await next();
  if (ctx.path === "/token" && nextIdToken !== null && ctx.status === 200 && ctx.body && ctx.body.id_token) {
    ctx.body = { ...ctx.body, id_token: nextIdToken };
    nextIdToken = null;
  }
});

// Quiet: only the line the test waits for, and errors.
provider.on("server_error", (ctx, error) => { console.error("server_error", error); });

const server = provider.listen(config.port, "127.0.0.1", () => {
  console.log(`listening ${config.issuer}`);
});
process.on("SIGTERM", () => { server.close(); process.exit(0); });
