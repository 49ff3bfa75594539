//! An https server on 127.0.0.1 with a throwaway certificate that serves the documents clients
//! publish (key sets, client ID metadata documents) as a test scripts them, and counts every
//! TCP connection it accepts and every request per path: an outbound-fetch test asserts that a
//! refused address was never connected to.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;

/// What the server answers on a path.
#[derive(Clone, Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Extra headers (`Content-Type` included).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// Send the headers and the first bytes of the body, then nothing for a minute.
    pub stall: bool,
}

impl Reply {
    /// 200 with a JSON body and `Content-Type: application/json`.
    pub fn json(body: &serde_json::Value) -> Self {
        Self {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
            stall: false,
        }
    }

    /// This reply with another header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// The running server.
pub struct DocServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its certificate (PEM), for the server under test's `outbound_ca_file`.
    pub cert_pem: String,
    accepts: Arc<AtomicUsize>,
    requests: Arc<Mutex<HashMap<String, usize>>>,
    routes: Arc<Mutex<HashMap<String, Reply>>>,
}

impl DocServer {
    /// Starts a server (certificate for `localhost` and `127.0.0.1`).
    pub async fn start() -> Self {
        let certified = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .expect("certificate");
        let cert_pem = certified.cert.pem();
        let key =
            rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = Self {
            port,
            cert_pem,
            accepts: Arc::default(),
            requests: Arc::default(),
            routes: Arc::default(),
        };
        let (accepts, requests, routes) = (
            Arc::clone(&server.accepts),
            Arc::clone(&server.requests),
            Arc::clone(&server.routes),
        );
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                accepts.fetch_add(1, Ordering::SeqCst);
                let (acceptor, requests, routes) =
                    (acceptor.clone(), Arc::clone(&requests), Arc::clone(&routes));
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
                    *requests.lock().unwrap().entry(path.clone()).or_default() += 1;
                    let reply = routes.lock().unwrap().get(&path).cloned().unwrap_or(Reply {
                        status: 404,
                        headers: Vec::new(),
                        body: Vec::new(),
                        stall: false,
                    });
                    let mut response = format!(
                        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                        reply.status,
                        reply.body.len()
                    );
                    for (name, value) in &reply.headers {
                        response.push_str(&format!("{name}: {value}\r\n"));
                    }
                    response.push_str("\r\n");
                    let _ = tls.write_all(response.as_bytes()).await;
                    if reply.stall {
                        let _ = tls.write_all(&reply.body[..reply.body.len().min(10)]).await;
                        let _ = tls.flush().await;
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        return;
                    }
                    let _ = tls.write_all(&reply.body).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        server
    }

    /// Serves `reply` at `path` from now on.
    pub fn serve(&self, path: &str, reply: Reply) {
        self.routes.lock().unwrap().insert(path.to_owned(), reply);
    }

    /// `https://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    /// TCP connections accepted so far.
    pub fn accepts(&self) -> usize {
        self.accepts.load(Ordering::SeqCst)
    }

    /// Requests for `path` so far.
    pub fn requests(&self, path: &str) -> usize {
        self.requests
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// Writes the certificate to `dir/doc-server.pem` and returns the path.
    pub fn write_cert(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join("doc-server.pem");
        std::fs::write(&path, &self.cert_pem).expect("write certificate");
        path
    }
}
