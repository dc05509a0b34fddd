//! PostgreSQL over TLS, against a throwaway cluster of its own with a
//! self-signed CA made by openssl: `sslmode=verify-full` with that CA given
//! (`sslrootcert`) connects, and the session is encrypted; with another CA the
//! server's certificate is refused, with an error that says so. Runs in the
//! PostgreSQL pass (`scripts/test-pg-s3`), where the PostgreSQL binaries are.

use gewe_server::config::Settings;
use gewe_server::startup::open_repo;
use sqlx::Connection;

use crate::services::{Backend, TlsCluster, backend};

fn settings(url: &str) -> Settings {
    Settings {
        database_url: Some(url.into()),
        database_max_connections: 2,
        ..Settings::default()
    }
}

#[tokio::test]
async fn postgres_tls_verify_full_connects_with_its_ca_and_refuses_another() {
    if backend() != Backend::PgS3 {
        println!("PostgreSQL TLS: runs in the PostgreSQL pass (scripts/test-pg-s3)");
        return;
    }
    let cluster = TlsCluster::start("127.0.0.1");
    let url = |ca: &std::path::Path| {
        format!(
            "postgres://postgres:not-shown@127.0.0.1:{}/postgres?sslmode=verify-full&sslrootcert={}",
            cluster.port,
            ca.display()
        )
    };

    // The server's own way in: connects, migrates, answers.
    let repo = open_repo(&settings(&url(&cluster.ca)))
        .await
        .expect("verify-full with the right CA connects");
    repo.ping().await.unwrap();
    // And the session really is TLS.
    let mut direct = sqlx::PgConnection::connect(&url(&cluster.ca))
        .await
        .unwrap();
    let (ssl, version): (bool, Option<String>) =
        sqlx::query_as("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&mut direct)
            .await
            .unwrap();
    assert!(ssl, "the session is encrypted");
    println!("PostgreSQL TLS: verify-full with its CA connects over {version:?}");
    direct.close().await.unwrap();

    // A CA that did not sign the server's certificate: refused, and said why.
    let refused = open_repo(&settings(&url(&cluster.wrong_ca)))
        .await
        .err()
        .expect("verify-full with another CA is refused");
    let message = format!("{refused:#}");
    println!("PostgreSQL TLS, wrong CA: {message}");
    assert!(message.contains("cannot reach the database"), "{message}");
    assert!(
        message.to_lowercase().contains("certificate") || message.to_lowercase().contains("issuer"),
        "the error names the certificate: {message}"
    );
    assert!(!message.contains("not-shown"), "password in {message}");

    // No CA given: the public roots do not know this one either.
    let no_ca = format!(
        "postgres://postgres@127.0.0.1:{}/postgres?sslmode=verify-full",
        cluster.port
    );
    assert!(open_repo(&settings(&no_ca)).await.is_err());
}
