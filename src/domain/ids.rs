use std::fmt;

use rand::Rng;
use url::Url;

use super::fetchable_url::check_url;

/// A request field that failed validation at the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldError {
    /// Absent, null or empty: GeWe answers `<field>不可为空`.
    Missing(&'static str),
    /// Present but unusable; the detail says why.
    Invalid { field: &'static str, detail: String },
}

const APP_ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
const APP_ID_MAX_LEN: usize = 64;

/// A device id as GeWe hands them out: `wx_` + 21 characters of `[A-Za-z0-9_-]`.
///
/// Parsing accepts any id of up to 64 such characters, so ids made elsewhere still
/// work; anything else is refused before it reaches storage or an error message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AppId(String);

impl AppId {
    pub fn generate() -> Self {
        let mut rng = rand::rng();
        let tail: String = (0..21)
            .map(|_| APP_ID_ALPHABET[rng.random_range(0..APP_ID_ALPHABET.len())] as char)
            .collect();
        AppId(format!("wx_{tail}"))
    }

    pub fn parse(field: Option<String>) -> Result<Self, FieldError> {
        let value = non_empty("appId", field)?;
        let well_formed = value.len() <= APP_ID_MAX_LEN
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if well_formed {
            Ok(AppId(value))
        } else {
            Err(FieldError::Invalid {
                field: "appId",
                detail: format!("appId只能由字母、数字、_和-组成，长度不超过{APP_ID_MAX_LEN}"),
            })
        }
    }

    /// Wraps a value read back from our own storage.
    pub fn from_trusted(value: String) -> Self {
        AppId(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AppId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A WeChat id such as `wxid_ab12cd34ef56gh`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wxid(String);

impl Wxid {
    pub fn generate() -> Self {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let mut rng = rand::rng();
        let tail: String = (0..14)
            .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
            .collect();
        Wxid(format!("wxid_{tail}"))
    }

    /// WeChat ids are letters, digits, `_` and `-`, starting with a letter; we
    /// allow 6–32 characters so generated `wxid_…` ids and custom ones both fit.
    pub fn parse(value: &str) -> Result<Self, FieldError> {
        let ok = (6..=32).contains(&value.len())
            && value.starts_with(|c: char| c.is_ascii_alphabetic())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(Wxid(value.to_owned()))
        } else {
            Err(FieldError::Invalid {
                field: "wxid",
                detail: "wxid须以字母开头，由6-32位字母、数字、_或-组成".to_owned(),
            })
        }
    }

    /// Wraps a value read back from our own storage.
    pub fn from_trusted(value: String) -> Self {
        Wxid(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Wxid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The picture address of `personal/updateHeadImg`, syntactically safe to fetch:
/// http(s) only, no userinfo, a host, bounded length. Whether its destination may
/// be reached is decided at connect time by the fetcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadImgUrl(Url);

impl HeadImgUrl {
    pub fn parse(field: Option<String>) -> Result<Self, FieldError> {
        let value = non_empty("headImgUrl", field)?;
        // The URL parser silently drops tabs and newlines inside a URL and
        // strips control characters at its ends, so what would be fetched is not
        // what was sent; refuse instead of guessing.
        if value.trim().chars().any(char::is_control) {
            return Err(FieldError::Invalid {
                field: "headImgUrl",
                detail: "图片地址不合法: 不能包含控制字符".to_owned(),
            });
        }
        let url = Url::parse(value.trim()).map_err(|e| FieldError::Invalid {
            field: "headImgUrl",
            detail: format!("图片地址不合法: {e}"),
        })?;
        check_url(&url).map_err(|reason| FieldError::Invalid {
            field: "headImgUrl",
            detail: format!("图片地址不合法: {}", reason.chinese()),
        })?;
        Ok(HeadImgUrl(url))
    }

    pub fn as_url(&self) -> &Url {
        &self.0
    }
}

fn non_empty(field: &'static str, value: Option<String>) -> Result<String, FieldError> {
    match value {
        Some(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(FieldError::Missing(field)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_app_ids_have_the_gewe_shape() {
        for _ in 0..100 {
            let id = AppId::generate();
            let s = id.as_str();
            assert_eq!(s.len(), 24);
            assert!(s.starts_with("wx_"));
            assert!(AppId::parse(Some(s.to_owned())).is_ok());
        }
    }

    #[test]
    fn app_id_refuses_empty_and_odd_values() {
        assert_eq!(AppId::parse(None), Err(FieldError::Missing("appId")));
        assert_eq!(
            AppId::parse(Some("  ".into())),
            Err(FieldError::Missing("appId"))
        );
        for bad in ["wx_a/b", "wx_\u{0}", "wx_中文", &"a".repeat(65)] {
            assert!(matches!(
                AppId::parse(Some(bad.to_owned())),
                Err(FieldError::Invalid { .. })
            ));
        }
    }

    #[test]
    fn generated_wxids_parse() {
        let w = Wxid::generate();
        assert_eq!(w.as_str().len(), 19);
        assert!(Wxid::parse(w.as_str()).is_ok());
        assert!(Wxid::parse("1abcdef").is_err());
        assert!(Wxid::parse("abc").is_err());
    }

    #[test]
    fn head_img_url_accepts_http_and_https_only() {
        assert!(HeadImgUrl::parse(Some("https://wx.qlogo.cn/mmhead/x/0".into())).is_ok());
        assert!(HeadImgUrl::parse(Some("http://example.com/a.jpg".into())).is_ok());
        assert_eq!(
            HeadImgUrl::parse(Some(String::new())),
            Err(FieldError::Missing("headImgUrl"))
        );
        for bad in [
            "file:///etc/passwd",
            "ftp://example.com/a.jpg",
            "gopher://example.com/",
            "data:image/png;base64,AAAA",
            "http://user:pass@example.com/a.jpg",
            "not a url",
            "http://example.com/a\n.jpg",
            "http://exam\tple.com/a.jpg",
            "http://example.com/a.jpg\u{0}",
        ] {
            assert!(
                matches!(
                    HeadImgUrl::parse(Some(bad.to_owned())),
                    Err(FieldError::Invalid { .. })
                ),
                "{bad} should be refused"
            );
        }
    }
}
