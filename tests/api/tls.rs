//! TLS to PostgreSQL through the bundled libpq (pq-sys `bundled`, OpenSSL built from source):
//! `sslmode=require` works against a server with a throwaway certificate, and fails clearly
//! against a server without TLS.

use std::sync::Arc;

use diesel::sql_types::BigInt;
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use portcullis::config::Settings;
use portcullis::startup::Application;

use crate::helpers::TestEnv;
use crate::pg::{ClusterSetup, PgCluster};

/// A throwaway cluster with `ssl=on`, a self-signed certificate made for this run, and a
/// `pg_hba.conf` that accepts TCP connections over TLS only (no `host` line).
/// Returns the cluster and its certificate (PEM).
fn start_tls_cluster() -> (PgCluster, String) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("self-signed certificate");
    let certificate = certified.cert.pem();
    let setup = ClusterSetup {
        data_files: vec![
            // ssl_cert_file and ssl_key_file default to these names in the data directory.
            ("server.crt", certificate.clone()),
            ("server.key", certified.signing_key.serialize_pem()),
            (
                "pg_hba.conf",
                "local all all trust\nhostssl all all 127.0.0.1/32 trust\n".to_owned(),
            ),
        ],
        settings: vec!["ssl=on"],
    };
    let cluster = PgCluster::start_with(&setup).expect("TLS cluster starts");
    (cluster, certificate)
}

/// A scratch environment on an existing database URL.
fn env_on(database_url: String) -> TestEnv {
    TestEnv::on(database_url, tempfile::tempdir().expect("tempdir"))
}

#[derive(QueryableByName)]
struct Connections {
    #[diesel(sql_type = BigInt)]
    tls: i64,
    #[diesel(sql_type = BigInt)]
    plain: i64,
}

// DEP-02: with libpq bundled, `sslmode=require` still reaches PostgreSQL over TLS: migrations,
// the server's pool (readiness, a login) and the CLI all connect through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dep_02_tls_to_postgres_with_bundled_libpq() {
    let (cluster, certificate) = tokio::task::spawn_blocking(start_tls_cluster)
        .await
        .unwrap();
    let cluster = Arc::new(cluster);
    let url = cluster.new_database().await;
    let env = env_on(format!("{url}?sslmode=require"));
    let app = env.spawn().await;
    assert_eq!(app.get("/readyz").await.status(), 200);
    // A user created by the CLI (its own process, same URL) logs in through the server.
    env.cli_create_user("tess", &[]).await;
    app.session("tess").await;

    let root_cert = env.dir.path().join("root.crt");
    std::fs::write(&root_cert, certificate).unwrap();
    let other_root = env.dir.path().join("other-root.crt");
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    std::fs::write(&other_root, other.cert.pem()).unwrap();
    let (connections, plaintext, verified, unverified) = tokio::task::spawn_blocking(move || {
        let mut conn = PgConnection::establish(&format!("{url}?sslmode=require")).unwrap();
        let connections: Connections = diesel::sql_query(
            "SELECT count(*) FILTER (WHERE s.ssl) AS tls, count(*) FILTER (WHERE NOT s.ssl) AS plain \
             FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.datname = current_database()",
        )
        .get_result(&mut conn)
        .unwrap();
        let plaintext = PgConnection::establish(&format!("{url}?sslmode=disable")).err();
        // The bundled OpenSSL also verifies the server: its certificate against a named CA
        // file, and its name (the IP address in the URL) against the certificate.
        let verify_with = |root: &std::path::Path| {
            PgConnection::establish(&format!(
                "{url}?sslmode=verify-full&sslrootcert={}",
                root.display()
            ))
            .map(|_| ())
        };
        let verified = verify_with(&root_cert);
        let unverified = verify_with(&other_root).err();
        (connections, plaintext, verified, unverified)
    })
    .await
    .unwrap();
    // This connection and at least one of the server's pool.
    assert!(
        connections.tls >= 2,
        "{} TLS connections to the database",
        connections.tls
    );
    assert_eq!(connections.plain, 0, "no connection without TLS");
    // The cluster refuses plaintext, so nothing above can have passed without TLS.
    let refused = plaintext
        .expect("a connection without TLS is refused")
        .to_string();
    assert!(refused.contains("no encryption"), "{refused}");
    verified.expect("sslmode=verify-full with the cluster's certificate as the root");
    let untrusted = unverified
        .expect("verify-full refuses a certificate from another root")
        .to_string();
    assert!(
        untrusted.contains("certificate verify failed"),
        "{untrusted}"
    );

    app.stop().await;
    tokio::task::spawn_blocking(move || cluster.stop())
        .await
        .unwrap();
}

// DEP-02: `sslmode=require` against a server without TLS stops the start with a message that
// names the database and the reason, instead of falling back to plaintext.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dep_02_sslmode_require_without_server_tls_fails_clearly() {
    // A cluster of its own: TEST_DATABASE_URL's server might have TLS on.
    let cluster = PgCluster::start_own().await;
    let url = cluster.new_database().await;
    let env = env_on(format!("{url}?sslmode=require"));
    let settings = Settings::from_args(env.args()).expect("settings");
    let error = Application::build(settings)
        .await
        .err()
        .expect("the server does not start")
        .to_string();
    assert!(
        error.contains("database") && error.contains("SSL was required"),
        "{error}"
    );

    tokio::task::spawn_blocking(move || cluster.stop())
        .await
        .unwrap();
}
