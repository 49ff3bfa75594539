// An MCP client built on the official TypeScript SDK (@modelcontextprotocol/sdk), driven by
// tests/api/mcp.rs: it connects to a resource server's MCP endpoint, lets the SDK discover the
// resource's metadata (RFC 9728) and the authorization server's (RFC 8414), identify itself
// (a client ID metadata document, or dynamic registration) and start code + PKCE with
// `resource`; the test signs the user in and hands back the redirect; the SDK redeems the code
// and the client lists and calls the server's tools.
//
// node client.mjs MODE MCP_URL REDIRECT_URL [CLIENT_METADATA_URL]
//   MODE: `cimd` (provider.clientMetadataUrl = CLIENT_METADATA_URL) or `dcr` (no URL: the SDK
//   registers at the registration endpoint).
//
// stdout, one JSON object a line:
//   {"authorize": URL}   the SDK's redirectToAuthorization; the script then reads one line from
//                        stdin: the URL the authorization server redirected the browser to.
//   {"ok": true, "tools": [...], "call": TEXT, "requests": [...]}   connected, listed, called.
//   {"ok": false, "status": N|null, "error": TEXT, "requests": [...]}   anything that failed.
// `requests` lists what the SDK sent to the authorization server (method, URL, body).

import { createInterface } from 'node:readline';
import { randomBytes } from 'node:crypto';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';

const [mode, mcpUrl, redirectUrl, clientMetadataUrl] = process.argv.slice(2);
if (!['cimd', 'dcr'].includes(mode) || !mcpUrl || !redirectUrl || (mode === 'cimd' && !clientMetadataUrl)) {
    console.error('usage: node client.mjs cimd|dcr MCP_URL REDIRECT_URL [CLIENT_METADATA_URL]');
    process.exit(2);
}

const emit = value => process.stdout.write(`${JSON.stringify(value)}\n`);

// Every request the SDK makes goes through this fetch and is recorded for the test to check:
// method and URL, the body of those to the authorization server (form or JSON), the JSON-RPC
// method of those to the MCP endpoint.
const requests = [];
const recordingFetch = async (url, init = {}) => {
    const target = new URL(url);
    const entry = { method: init.method ?? 'GET', url: target.href };
    let body = init.body;
    if (body instanceof URLSearchParams) body = Object.fromEntries(body);
    else if (typeof body === 'string') {
        try {
            body = JSON.parse(body);
        } catch {
            // Not JSON: recorded as sent.
        }
    }
    if (target.href === new URL(mcpUrl).href) {
        if (body?.method) entry.rpc = body.method;
    } else if (body !== undefined) {
        entry.body = body;
    }
    requests.push(entry);
    const response = await fetch(url, init);
    entry.status = response.status;
    return response;
};

// stdin, a line at a time: the redirect the test's browser got.
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const nextLine = async () => {
    const { value, done } = await lines.next();
    if (done) throw new Error('stdin closed before the redirect arrived');
    return value.trim();
};

/** An OAuthClientProvider held in memory, as an MCP host implements one. */
class TestProvider {
    constructor() {
        this.clientMetadataUrl = mode === 'cimd' ? clientMetadataUrl : undefined;
        this.authorizations = 0;
        this._state = undefined;
    }
    get redirectUrl() {
        return redirectUrl;
    }
    get clientMetadata() {
        // What the SDK registers in mode dcr (RFC 7591); in mode cimd the test's document says
        // the same. No scope: the SDK takes it from the resource's metadata.
        return {
            client_name: 'Portcullis MCP test client',
            redirect_uris: [redirectUrl],
            grant_types: ['authorization_code', 'refresh_token'],
            response_types: ['code'],
            token_endpoint_auth_method: 'none'
        };
    }
    state() {
        this._state = randomBytes(16).toString('base64url');
        return this._state;
    }
    clientInformation() {
        return this._clientInformation;
    }
    saveClientInformation(information) {
        this._clientInformation = information;
    }
    tokens() {
        return this._tokens;
    }
    saveTokens(tokens) {
        this._tokens = tokens;
    }
    saveCodeVerifier(verifier) {
        this._codeVerifier = verifier;
    }
    codeVerifier() {
        if (!this._codeVerifier) throw new Error('no code verifier saved');
        return this._codeVerifier;
    }
    redirectToAuthorization(url) {
        this.authorizations += 1;
        emit({ authorize: url.href });
    }
}

/** The code of the redirect `line` (an absolute URL), after checking its state. */
function codeOf(line, expectedState) {
    const url = new URL(line);
    const error = url.searchParams.get('error');
    if (error) throw new Error(`authorization refused: ${error} ${url.searchParams.get('error_description') ?? ''}`);
    if (url.searchParams.get('state') !== expectedState) throw new Error('the redirect carries another state');
    const code = url.searchParams.get('code');
    if (!code) throw new Error(`no code in ${line}`);
    return code;
}

function transportFor(provider) {
    return new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider, fetch: recordingFetch });
}

function newClient() {
    return new Client({ name: 'portcullis-mcp-test', version: '1.0.0' }, { capabilities: {} });
}

async function main() {
    const provider = new TestProvider();
    let client = newClient();
    const transport = transportFor(provider);
    try {
        await client.connect(transport);
    } catch (error) {
        if (!(error instanceof UnauthorizedError)) throw error;
        // The SDK called redirectToAuthorization: the test signs in and answers the redirect;
        // the same transport redeems the code, and a new connection carries the token.
        const code = codeOf(await nextLine(), provider._state);
        await transport.finishAuth(code);
        client = newClient();
        await client.connect(transportFor(provider));
    }
    const { tools } = await client.listTools();
    const result = await client.callTool({ name: 'whoami', arguments: {} });
    await client.close();
    emit({
        ok: true,
        tools: tools.map(tool => tool.name),
        call: result.content?.[0]?.text ?? null,
        authorizations: provider.authorizations,
        requests
    });
}

try {
    await main();
    process.exit(0);
} catch (error) {
    emit({ ok: false, status: typeof error?.code === 'number' ? error.code : null, error: String(error?.message ?? error), requests });
    process.exit(1);
}
