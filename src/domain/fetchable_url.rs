//! The syntax rule for addresses the server will fetch: applied when a URL enters
//! the system (`HeadImgUrl`, callback URLs) and by the fetcher to every redirect
//! target. Where a host may be reached is the fetcher's business, not this rule's.

/// Longest URL accepted, in bytes of its serialisation.
pub const MAX_URL_LEN: usize = 2048;

/// Why a URL was refused by [`check_url`] (or could not be turned into a request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadUrlReason {
    /// Scheme other than http/https.
    Scheme,
    /// Username or password present.
    Userinfo,
    /// No host.
    NoHost,
    /// Longer than [`MAX_URL_LEN`].
    TooLong,
    /// Could not be converted into an HTTP request URI.
    Unusable,
}

impl BadUrlReason {
    pub fn english(self) -> &'static str {
        match self {
            Self::Scheme => "only http and https are supported",
            Self::Userinfo => "credentials in the URL are not allowed",
            Self::NoHost => "missing host",
            Self::TooLong => "URL too long",
            Self::Unusable => "URL cannot be used for a request",
        }
    }

    pub fn chinese(self) -> &'static str {
        match self {
            Self::Scheme => "仅支持http/https",
            Self::Userinfo => "不能包含用户名或密码",
            Self::NoHost => "缺少主机名",
            Self::TooLong => "长度超过2048",
            Self::Unusable => "无法用于请求",
        }
    }
}

impl std::fmt::Display for BadUrlReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.english())
    }
}

/// Scheme http/https only, no userinfo, a host present, total length ≤ [`MAX_URL_LEN`].
///
/// This is syntax only: whether the host may be reached is decided by the
/// connector at connect time, on the addresses it actually dials.
pub fn check_url(url: &::url::Url) -> Result<(), BadUrlReason> {
    if url.as_str().len() > MAX_URL_LEN {
        return Err(BadUrlReason::TooLong);
    }
    if !matches!(url.scheme(), "http" | "https") {
        return Err(BadUrlReason::Scheme);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(BadUrlReason::Userinfo);
    }
    match url.host_str() {
        Some(host) if !host.is_empty() => Ok(()),
        _ => Err(BadUrlReason::NoHost),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(input: &str) -> Option<BadUrlReason> {
        let url = ::url::Url::parse(input).expect("test URL parses");
        check_url(&url).err()
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
    fn reasons_read_in_both_languages() {
        assert_eq!(BadUrlReason::Scheme.chinese(), "仅支持http/https");
        assert_eq!(
            BadUrlReason::Scheme.to_string(),
            "only http and https are supported"
        );
    }
}
