//! A real MCP client against a resource server protected by `portcullis::verify` (issue 18,
//! "Tests (real clients)"): the official TypeScript SDK (`@modelcontextprotocol/sdk`, pinned in
//! `tests/mcp/package-lock.json`, driven by `tests/mcp/client.mjs`) connects to a minimal MCP
//! Streamable HTTP endpoint, is refused with a `401` naming the resource's RFC 9728 metadata,
//! discovers it and the authorization server's metadata, identifies itself (a client ID
//! metadata document, or dynamic registration), starts code + PKCE with `resource`; the test
//! signs the user in on the hosted pages and hands the redirect back; the SDK redeems the code
//! and lists and calls the server's tools. A resource server that expects another audience
//! refuses the same client's token.
//!
//! Needs Node.js and `npm ci --prefix tests/mcp`; without them the test prints `MCP TEST DID
//! NOT RUN`, a failure where `PORTCULLIS_REQUIRE_MCP=1` (as in CI, where `.ci/run` installs
//! them).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, middleware, web};
use portcullis::config::SettingsArgs;
use portcullis::verify::actix::{Authenticated, ProtectedResource, resource_metadata_challenge};
use portcullis::verify::{ProtectedResourceMetadata, Verifier, VerifierConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::helpers::{
    Backend, DocServer, Reply, TestApp, TestEnv, answer_consent, browser, location_params, param,
    sign_in,
};
use crate::on_both_backends;
use crate::outbound::outbound_args;

/// The scope of the MCP server's API, named in its protected-resource metadata.
const MCP_SCOPE: &str = "mcp:tools";
/// The MCP client's redirect URI (loopback, as a local agent's; nothing listens: the test's
/// browser does not follow the redirect, it hands it to the client).
const CALLBACK: &str = "http://127.0.0.1:9/mcp/callback";
/// How long the client may take for a step (it answers in well under a second).
const STEP: Duration = Duration::from_secs(30);

/// `tests/mcp`, the Node project of the client.
fn client_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp")
}

/// Whether `node` runs and the SDK is installed in `tests/mcp/node_modules`.
fn mcp_client_installed() -> bool {
    client_dir()
        .join("node_modules/@modelcontextprotocol/sdk/package.json")
        .is_file()
        && std::process::Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
}

/// `false` (after saying so) when the client cannot run; a failure where
/// `PORTCULLIS_REQUIRE_MCP` is set.
fn mcp_client_or_skip() -> bool {
    if mcp_client_installed() {
        return true;
    }
    assert!(
        std::env::var("PORTCULLIS_REQUIRE_MCP").is_err(),
        "PORTCULLIS_REQUIRE_MCP is set but node or tests/mcp/node_modules is missing"
    );
    eprintln!("MCP TEST DID NOT RUN: install Node.js and run `npm ci --prefix tests/mcp`");
    false
}

/// What the MCP server saw of one accepted request: the JSON-RPC method, the token's subject
/// and scope.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    subject: String,
    scope: String,
}

/// A running MCP resource server.
struct McpServer {
    /// `http://127.0.0.1:PORT/mcp`: the endpoint, and the resource identifier of its metadata.
    url: String,
    /// The requests it accepted (a valid token), in order.
    seen: Arc<Mutex<Vec<Seen>>>,
    handle: actix_web::dev::ServerHandle,
}

impl McpServer {
    /// The MCP methods it accepted, in order.
    fn methods(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.method.clone())
            .collect()
    }
}

/// Binds a port for the MCP server: its endpoint URL (which names the API to register) and the
/// listener.
fn bind_mcp() -> (String, std::net::TcpListener) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    (url, listener)
}

/// A minimal MCP server (Streamable HTTP, JSON responses) on `listener` at `url`: its RFC 9728
/// metadata names `url` as the resource, `issuer` as the authorization server and
/// [`MCP_SCOPE`]; `POST /mcp` needs an access token of `issuer` for `audience`, verified with
/// `portcullis::verify`, and answers `initialize`, `tools/list` and `tools/call` of one tool,
/// `whoami` (the token's subject); notifications get `202`; `GET /mcp` (no server-sent event
/// stream) `405`.
fn serve_mcp(
    listener: std::net::TcpListener,
    url: &str,
    issuer: &str,
    audience: &str,
) -> McpServer {
    let mut config = VerifierConfig::for_issuer(issuer);
    config.audiences = vec![audience.to_owned()];
    let verifier = web::Data::new(Verifier::new(config).unwrap());
    let mut metadata = ProtectedResourceMetadata::new(url, issuer);
    metadata.scopes_supported = vec![MCP_SCOPE.to_owned()];
    metadata.resource_name = Some("Portcullis MCP test server".to_owned());
    let resource = ProtectedResource::new(&metadata).unwrap();
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let recorded = Arc::clone(&seen);
    let server = HttpServer::new(move || {
        let seen = Arc::clone(&recorded);
        App::new()
            .app_data(verifier.clone())
            .configure(resource.configure())
            .wrap(middleware::from_fn(resource_metadata_challenge))
            .route(
                "/mcp",
                web::post().to(move |auth: Authenticated, body: web::Bytes| {
                    let seen = Arc::clone(&seen);
                    async move { answer_mcp(&auth, &body, &seen) }
                }),
            )
            .route(
                "/mcp",
                web::get().to(|| async { HttpResponse::MethodNotAllowed().finish() }),
            )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    McpServer {
        url: url.to_owned(),
        seen,
        handle,
    }
}

/// The MCP server's answer to one JSON-RPC message of an authenticated caller.
fn answer_mcp(auth: &Authenticated, body: &[u8], seen: &Mutex<Vec<Seen>>) -> HttpResponse {
    let Ok(message) = serde_json::from_slice::<Value>(body) else {
        return HttpResponse::BadRequest().json(json!({
            "jsonrpc": "2.0", "id": null,
            "error": { "code": -32700, "message": "Parse error" },
        }));
    };
    let method = message["method"].as_str().unwrap_or_default().to_owned();
    seen.lock().unwrap().push(Seen {
        method: method.clone(),
        subject: auth.subject.clone(),
        scope: auth.scope.clone(),
    });
    // A notification (no id) is accepted without a body.
    let Some(id) = message.get("id").cloned() else {
        return HttpResponse::Accepted().finish();
    };
    let result = match method.as_str() {
        "initialize" => json!({
            // The version the client asked for (the SDK asks for one it supports).
            "protocolVersion": message["params"]["protocolVersion"],
            "capabilities": { "tools": {} },
            "serverInfo": { "name": "portcullis-mcp-test", "version": "1.0.0" },
        }),
        "tools/list" => json!({
            "tools": [{
                "name": "whoami",
                "description": "The subject of the caller's access token.",
                "inputSchema": { "type": "object", "properties": {} },
            }],
        }),
        "tools/call" if message["params"]["name"] == "whoami" => json!({
            "content": [{ "type": "text", "text": auth.subject }],
        }),
        _ => {
            return HttpResponse::Ok().json(json!({
                "jsonrpc": "2.0", "id": id,
                "error": { "code": -32601, "message": "Method not found" },
            }));
        }
    };
    HttpResponse::Ok().json(json!({ "jsonrpc": "2.0", "id": id, "result": result }))
}

/// How the client identifies itself to the authorization server.
enum Identity {
    /// `provider.clientMetadataUrl`: this URL of a client ID metadata document.
    MetadataDocument(String),
    /// No metadata URL: the SDK registers dynamically.
    Registration,
}

/// The SDK's client, running as a child process (killed when dropped).
struct McpClient {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    stderr: tokio::task::JoinHandle<String>,
}

impl McpClient {
    /// Starts `tests/mcp/client.mjs` against the MCP endpoint `mcp_url`.
    fn start(identity: &Identity, mcp_url: &str) -> Self {
        let mut command = tokio::process::Command::new("node");
        command.current_dir(client_dir()).arg("client.mjs");
        match identity {
            Identity::MetadataDocument(url) => command.args(["cimd", mcp_url, CALLBACK, url]),
            Identity::Registration => command.args(["dcr", mcp_url, CALLBACK]),
        };
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node starts");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut stderr = child.stderr.take().unwrap();
        let stderr = tokio::spawn(async move {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text).await;
            text
        });
        Self {
            child,
            stdin,
            stdout,
            stderr,
        }
    }

    /// The client's next line of output, as JSON.
    async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(STEP, self.stdout.next_line())
            .await
            .expect("the MCP client answers in time")
            .expect("the MCP client's stdout")
            .expect("a line from the MCP client (it exited)");
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("JSON from the client: {line}"))
    }

    /// Hands the client the redirect the browser got.
    async fn send(&mut self, line: &str) {
        self.stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// Waits for the client to exit: whether it succeeded, and its stderr.
    async fn finish(mut self) -> (bool, String) {
        let status = tokio::time::timeout(STEP, self.child.wait())
            .await
            .expect("the MCP client exits in time")
            .unwrap();
        let stderr = self.stderr.await.unwrap();
        (status.success(), stderr)
    }
}

/// The authorization request the SDK asked the browser to open: `alice` signs in on the
/// hosted page and consents (the client is a third party); the redirect to the client.
async fn sign_in_and_consent(app: &TestApp, authorize: &str) -> String {
    let browser = browser();
    let consent = sign_in(&browser, &app.address, authorize, "alice").await;
    assert_eq!(consent.status(), StatusCode::OK, "consent is asked");
    let html = consent.text().await.unwrap();
    let approved = answer_consent(&browser, app.url("/authorize/consent"), &html, "approve").await;
    assert_eq!(approved.status(), StatusCode::SEE_OTHER);
    let (location, params) = location_params(&approved);
    assert!(location.starts_with(CALLBACK), "{location}");
    assert!(param(&params, "code").is_some(), "{location}");
    location
}

/// The parameters of the authorization URL the SDK built, checked: code + PKCE S256 with a
/// state, the client's redirect URI, the scope of the resource's metadata and the resource
/// (RFC 8707) at the authorization endpoint of the server: its `client_id`.
fn check_authorization_request(app: &TestApp, authorize: &str, resource: &str) -> String {
    let url = url::Url::parse(authorize).unwrap();
    assert_eq!(
        &authorize[..authorize.find('?').unwrap()],
        at(app, "/authorize"),
        "{authorize}"
    );
    let params: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let get = |name: &str| param(&params, name).unwrap_or_else(|| panic!("{name} in {authorize}"));
    assert_eq!(get("response_type"), "code");
    assert_eq!(get("code_challenge_method"), "S256");
    assert_eq!(get("code_challenge").len(), 43, "a SHA-256 challenge");
    assert_eq!(get("redirect_uri"), CALLBACK);
    assert_eq!(
        get("scope"),
        MCP_SCOPE,
        "the scope of the resource's metadata"
    );
    assert_eq!(get("resource"), resource, "RFC 8707 resource: the MCP URL");
    assert!(!get("state").is_empty());
    get("client_id")
}

/// `path` at the issuer (where discovery sends the client).
fn at(app: &TestApp, path: &str) -> String {
    format!("{}{path}", app.issuer)
}

/// The requests of the client's log to `url` (method and URL; body when it sent one).
fn requests_to<'a>(result: &'a Value, method: &str, url: &str) -> Vec<&'a Value> {
    result["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == method && r["url"] == url)
        .collect()
}

/// Runs the SDK's client with `identity` against `mcp` (whose API is registered on `app`):
/// checks its discovery and authorization request, signs `alice` in, and returns the client's
/// result line and its `client_id`.
async fn run_client(app: &TestApp, mcp: &McpServer, identity: &Identity) -> (Value, String) {
    let mut client = McpClient::start(identity, &mcp.url);
    let first = client.next().await;
    let Some(authorize) = first["authorize"].as_str() else {
        let (_, stderr) = client.finish().await;
        panic!("the SDK asks for authorization first: {first}\n{stderr}");
    };
    let client_id = check_authorization_request(app, authorize, &mcp.url);
    let redirect = sign_in_and_consent(app, authorize).await;
    client.send(&redirect).await;
    let result = client.next().await;
    let (exited_ok, stderr) = client.finish().await;
    assert_eq!(
        exited_ok,
        result["ok"] == true,
        "exit status and result agree: {result}\n{stderr}"
    );

    // What the SDK did on its way: refused without a token, it read the resource's metadata
    // (RFC 9728, named by the challenge) and the authorization server's (RFC 8414 first), and
    // redeemed the code with the verifier and the resource, as a public client.
    let first_call = &result["requests"][0];
    assert_eq!(
        (
            &first_call["url"],
            &first_call["rpc"],
            &first_call["status"]
        ),
        (&json!(mcp.url), &json!("initialize"), &json!(401)),
        "{result}"
    );
    let metadata = portcullis::verify::metadata_url(&mcp.url).unwrap();
    assert!(
        !requests_to(&result, "GET", &metadata).is_empty(),
        "RFC 9728 metadata fetched: {result}"
    );
    assert!(
        !requests_to(
            &result,
            "GET",
            &at(app, "/.well-known/oauth-authorization-server")
        )
        .is_empty(),
        "RFC 8414 metadata fetched: {result}"
    );
    let redemptions: Vec<&Value> = requests_to(&result, "POST", &at(app, "/token"))
        .into_iter()
        .filter(|r| r["body"]["grant_type"] == "authorization_code")
        .collect();
    assert_eq!(redemptions.len(), 1, "one code redeemed: {result}");
    let body = &redemptions[0]["body"];
    assert_eq!(body["client_id"], client_id.as_str(), "{body}");
    assert_eq!(body["resource"], mcp.url.as_str(), "{body}");
    assert_eq!(body["redirect_uri"], CALLBACK, "{body}");
    assert!(
        body["code_verifier"].as_str().unwrap().len() >= 43,
        "{body}"
    );
    assert!(body.get("client_secret").is_none(), "a public client");
    (result, client_id)
}

/// A test's servers and user.
struct Setup {
    /// The authorization server.
    app: TestApp,
    /// The MCP server, its URL registered as an API with the scope [`MCP_SCOPE`].
    mcp: McpServer,
    /// The id of `alice`.
    alice: String,
}

/// A server with `args`, the MCP server's API and `alice`; the MCP server, which expects tokens
/// for `audience` (`None`: its own URL, the resource its metadata names).
async fn setup(env: &TestEnv, args: SettingsArgs, audience: Option<&str>) -> Setup {
    let app = env.spawn_with(args).await;
    let (url, listener) = bind_mcp();
    app.create_api(&url, &[(MCP_SCOPE, "Use the test server's tools")])
        .await;
    let mcp = serve_mcp(listener, &url, &app.issuer, audience.unwrap_or(&url));
    let alice = app.create_user("alice").await;
    Setup { app, mcp, alice }
}

/// Settings with open dynamic registration that may allow the MCP scope.
fn open_registration(env: &TestEnv) -> SettingsArgs {
    SettingsArgs {
        client_registration: Some("open".into()),
        client_registration_open_scopes: Some(format!("openid,offline_access,{MCP_SCOPE}")),
        ..env.args()
    }
}

/// Asserts the client's successful run: it connected after one authorization, listed the one
/// tool and called it as alice; the MCP server accepted each request with alice's token for
/// the MCP scope.
fn assert_called_as_alice(setup: &Setup, result: &Value) {
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["tools"], json!(["whoami"]), "{result}");
    assert_eq!(
        result["call"],
        setup.alice.as_str(),
        "the tool saw alice: {result}"
    );
    assert_eq!(result["authorizations"], 1, "one authorization: {result}");
    let seen = setup.mcp.seen.lock().unwrap().clone();
    assert_eq!(
        setup.mcp.methods(),
        [
            "initialize",
            "notifications/initialized",
            "tools/list",
            "tools/call"
        ],
        "{seen:?}"
    );
    for request in &seen {
        assert_eq!(request.subject, setup.alice, "{seen:?}");
        assert_eq!(request.scope, MCP_SCOPE, "{seen:?}");
    }
}

// MCP-01: the SDK's client with a client ID metadata document (`clientMetadataUrl`, served over
// https by the test): discovery advertises the feature, so the SDK uses the URL as its
// client_id without registering; Portcullis fetches the document; code + PKCE with `resource`;
// the tool is called with the token.
async fn mcp_client_with_a_metadata_document_calls_the_protected_server(backend: Backend) {
    if !mcp_client_or_skip() {
        return;
    }
    let docs = DocServer::start().await;
    let env = TestEnv::new(backend).await;
    let mut args = outbound_args(&env, &docs, true);
    args.client_id_metadata_documents = Some(true);
    let setup = setup(&env, args, None).await;
    let (app, mcp) = (&setup.app, &setup.mcp);
    let document_url = docs.url("/mcp-client.json");
    docs.serve(
        "/mcp-client.json",
        Reply::json(&json!({
            "client_id": document_url,
            "client_name": "Portcullis MCP test client",
            "redirect_uris": [CALLBACK],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "scope": MCP_SCOPE,
        })),
    );

    let (result, client_id) =
        run_client(app, mcp, &Identity::MetadataDocument(document_url.clone())).await;
    assert_eq!(
        client_id, document_url,
        "the document's URL is the client_id"
    );
    assert!(
        requests_to(&result, "POST", &at(app, "/register")).is_empty(),
        "no registration with a metadata document: {result}"
    );
    assert!(
        docs.requests("/mcp-client.json") >= 1,
        "the document fetched"
    );
    assert_called_as_alice(&setup, &result);
    setup.mcp.handle.stop(true).await;
}

// MCP-02: the SDK's client without a metadata document URL registers dynamically (open
// registration, RFC 7591) with the scope of the resource's metadata, then code + PKCE with
// `resource`; the tool is called with the token.
async fn mcp_client_registered_dynamically_calls_the_protected_server(backend: Backend) {
    if !mcp_client_or_skip() {
        return;
    }
    let env = TestEnv::new(backend).await;
    let setup = setup(&env, open_registration(&env), None).await;
    let (app, mcp) = (&setup.app, &setup.mcp);

    let (result, client_id) = run_client(app, mcp, &Identity::Registration).await;
    let registrations = requests_to(&result, "POST", &at(app, "/register"));
    assert_eq!(registrations.len(), 1, "one registration: {result}");
    let metadata = &registrations[0]["body"];
    assert_eq!(metadata["redirect_uris"], json!([CALLBACK]), "{metadata}");
    assert_eq!(metadata["token_endpoint_auth_method"], "none", "{metadata}");
    assert_eq!(metadata["scope"], MCP_SCOPE, "{metadata}");
    let listed = app
        .state
        .clients
        .get(&client_id)
        .expect("the registered client is known");
    assert!(!listed.confidential, "a public client");
    assert_called_as_alice(&setup, &result);
    setup.mcp.handle.stop(true).await;
}

// MCP-03: a resource server whose verifier expects another audience than the resource its
// metadata names refuses the token the SDK got for that resource (401 invalid_token, after
// the SDK's refresh too); the client reports the failure and no MCP request was accepted.
async fn mcp_client_token_for_another_audience_is_refused(backend: Backend) {
    if !mcp_client_or_skip() {
        return;
    }
    let env = TestEnv::new(backend).await;
    let other = "https://other-api.example.com";
    let Setup { app, mcp, .. } = setup(&env, open_registration(&env), Some(other)).await;
    app.create_api(other, &[("other:read", "Read the other API")])
        .await;

    let (result, _) = run_client(&app, &mcp, &Identity::Registration).await;
    assert_eq!(result["ok"], false, "{result}");
    assert_eq!(result["status"], 401, "{result}");
    // Refused, the SDK refreshed its token once (for the same resource) and was refused again.
    let refreshes: Vec<&Value> = requests_to(&result, "POST", &at(&app, "/token"))
        .into_iter()
        .filter(|r| r["body"]["grant_type"] == "refresh_token")
        .collect();
    assert_eq!(refreshes.len(), 1, "{result}");
    assert_eq!(refreshes[0]["status"], 200, "{result}");
    assert_eq!(refreshes[0]["body"]["resource"], mcp.url.as_str());
    assert!(
        mcp.methods().is_empty(),
        "nothing accepted: {:?}",
        mcp.methods()
    );
    mcp.handle.stop(true).await;
}

on_both_backends!(
    mcp_client_with_a_metadata_document_calls_the_protected_server,
    mcp_client_registered_dynamically_calls_the_protected_server,
    mcp_client_token_for_another_audience_is_refused,
);
