//! An S3 bucket (AWS S3, MinIO, Ceph, R2, …) through `object_store`'s S3 client.
//!
//! Credentials, and anything not named here, come from the usual `AWS_*`
//! environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
//! web identity, ECS/EKS task roles, instance metadata); the settings below win
//! over their `AWS_*` twins.
//!
//! Create-only writes use S3's conditional put (`If-None-Match: *`), which AWS S3,
//! MinIO, Ceph and R2 honour. For a store that rejects it, set
//! `AWS_CONDITIONAL_PUT=disabled`: `BlobStore` then looks before it writes, which is
//! safe here because a key names its content (see `BlobStore::put_avatar`).

use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use url::Url;

use super::{BlobStore, StorageError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Config {
    pub bucket: String,
    /// `None` leaves it to `AWS_REGION` / `AWS_DEFAULT_REGION`, else `us-east-1`.
    pub region: Option<String>,
    /// `None` means AWS itself; otherwise the S3-compatible service's base URL.
    /// An `http://` endpoint is allowed (test services, a LAN MinIO).
    pub endpoint: Option<Url>,
    /// `https://endpoint/bucket/key` instead of `https://bucket.endpoint/key`; what
    /// MinIO-likes want.
    pub path_style: bool,
}

impl BlobStore {
    pub fn s3(config: &S3Config) -> Result<Self, StorageError> {
        install_tls_provider();
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&config.bucket)
            .with_virtual_hosted_style_request(!config.path_style);
        if let Some(region) = &config.region {
            builder = builder.with_region(region);
        }
        if let Some(endpoint) = &config.endpoint {
            builder = builder
                .with_endpoint(bucket_endpoint(endpoint, &config.bucket, config.path_style))
                .with_allow_http(endpoint.scheme() == "http");
        }
        Ok(BlobStore::from_store(Arc::new(builder.build()?)))
    }
}

/// `object_store` takes a virtual-hosted endpoint with the bucket already in the
/// host; accept the service's base URL like the AWS SDKs do and put it there.
fn bucket_endpoint(endpoint: &Url, bucket: &str, path_style: bool) -> String {
    let base = endpoint.as_str().trim_end_matches('/').to_owned();
    if path_style {
        return base;
    }
    // An address (127.0.0.1:9000) cannot carry the bucket; it is used as given.
    match endpoint.host() {
        Some(url::Host::Domain(host)) if !host.starts_with(&format!("{bucket}.")) => {
            let mut url = endpoint.clone();
            if url.set_host(Some(&format!("{bucket}.{host}"))).is_ok() {
                return url.as_str().trim_end_matches('/').to_owned();
            }
            base
        }
        _ => base,
    }
}

/// object_store's HTTP client (reqwest) is built without a TLS crypto provider of
/// its own; the process uses ring, as the rest of the server does.
fn install_tls_provider() {
    // Fails only when a provider is already installed, which is just as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_hosted_endpoints_get_the_bucket_in_the_host() {
        let minio = Url::parse("https://minio.example.com:9000/").unwrap();
        assert_eq!(
            bucket_endpoint(&minio, "avatars", false),
            "https://avatars.minio.example.com:9000"
        );
        assert_eq!(
            bucket_endpoint(&minio, "avatars", true),
            "https://minio.example.com:9000"
        );
        let already = Url::parse("https://avatars.minio.example.com").unwrap();
        assert_eq!(
            bucket_endpoint(&already, "avatars", false),
            "https://avatars.minio.example.com"
        );
        let address = Url::parse("http://127.0.0.1:9000").unwrap();
        assert_eq!(
            bucket_endpoint(&address, "avatars", false),
            "http://127.0.0.1:9000"
        );
    }
}
