//! Syntax checks applied when a URL enters the system and to every redirect target.

use super::{BadUrlReason, FetchError};

/// Longest URL accepted, in bytes of its serialisation.
pub const MAX_URL_LEN: usize = 2048;

/// Scheme http/https only, no userinfo, a host present, total length ≤ [`MAX_URL_LEN`].
///
/// This is syntax only: whether the host may be reached is decided by the
/// connector at connect time, on the addresses it actually dials.
pub fn check_url(url: &::url::Url) -> Result<(), FetchError> {
    if url.as_str().len() > MAX_URL_LEN {
        return Err(FetchError::BadUrl(BadUrlReason::TooLong));
    }
    if !matches!(url.scheme(), "http" | "https") {
        return Err(FetchError::BadUrl(BadUrlReason::Scheme));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(FetchError::BadUrl(BadUrlReason::Userinfo));
    }
    match url.host_str() {
        Some(host) if !host.is_empty() => Ok(()),
        _ => Err(FetchError::BadUrl(BadUrlReason::NoHost)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(input: &str) -> Option<BadUrlReason> {
        let url = ::url::Url::parse(input).expect("test URL parses");
        match check_url(&url) {
            Ok(()) => None,
            Err(FetchError::BadUrl(r)) => Some(r),
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }

    #[test]
    fn accepts_plain_http_and_https() {
        assert_eq!(reason("http://example.com/a.png"), None);
        assert_eq!(reason("https://example.com:8443/a.png?x=1#frag"), None);
        assert_eq!(reason("HTTPS://EXAMPLE.com/"), None);
    }

    #[test]
    fn refuses_other_schemes() {
        for input in [
            "file:///etc/passwd",
            "ftp://example.com/a.png",
            "gopher://example.com:70/_x",
            "data:image/png;base64,iVBORw0KGgo=",
            "ws://example.com/",
            "javascript:alert(1)",
        ] {
            assert_eq!(reason(input), Some(BadUrlReason::Scheme), "{input}");
        }
    }

    #[test]
    fn refuses_userinfo() {
        for input in [
            "http://user:pass@example.com/",
            "http://user@example.com/",
            "https://:pass@example.com/",
            "http://example.com@127.0.0.1/",
        ] {
            assert_eq!(reason(input), Some(BadUrlReason::Userinfo), "{input}");
        }
    }

    #[test]
    fn refuses_long_urls() {
        let base = "http://example.com/";
        let ok = format!("{base}{}", "a".repeat(MAX_URL_LEN - base.len()));
        assert_eq!(reason(&ok), None);
        let long = format!("{base}{}", "a".repeat(MAX_URL_LEN - base.len() + 1));
        assert_eq!(reason(&long), Some(BadUrlReason::TooLong));
    }

    #[test]
    fn error_code_and_message() {
        let url = ::url::Url::parse("ftp://example.com/").expect("parses");
        let err = check_url(&url).expect_err("refused");
        assert_eq!(err.code(), "fetch-bad-url");
        assert_eq!(err.message(), "图片地址不合法: 仅支持http/https");
    }
}
