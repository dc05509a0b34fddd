//! Content sniffing: the format is decided from the leading bytes only,
//! never from a file name or a declared content type.

/// What the leading bytes of an upload look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    /// One of the four formats we decode.
    Accepted(AcceptedFormat),
    /// Something we recognise but refuse; the name is for the user.
    Refused(&'static str),
    /// Nothing we recognise.
    Unknown,
}

/// The only formats whose decoders are ever run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptedFormat {
    Jpeg,
    Png,
    Gif,
    WebP,
}

impl AcceptedFormat {
    pub fn name(self) -> &'static str {
        match self {
            AcceptedFormat::Jpeg => "JPEG",
            AcceptedFormat::Png => "PNG",
            AcceptedFormat::Gif => "GIF",
            AcceptedFormat::WebP => "WebP",
        }
    }

    pub(crate) fn image_format(self) -> image::ImageFormat {
        match self {
            AcceptedFormat::Jpeg => image::ImageFormat::Jpeg,
            AcceptedFormat::Png => image::ImageFormat::Png,
            AcceptedFormat::Gif => image::ImageFormat::Gif,
            AcceptedFormat::WebP => image::ImageFormat::WebP,
        }
    }
}

/// Label used in messages when nothing matched.
pub const UNKNOWN_LABEL: &str = "未知格式";

/// Classify `bytes` by magic numbers. Never panics; empty input is `Unknown`
/// (the caller reports empty input separately).
pub fn sniff(bytes: &[u8]) -> Sniffed {
    use AcceptedFormat::*;

    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Sniffed::Accepted(Jpeg);
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Sniffed::Accepted(Png);
    }
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        return Sniffed::Accepted(Gif);
    }
    if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return Sniffed::Accepted(WebP);
    }

    if let Some(name) = refused_binary(bytes) {
        return Sniffed::Refused(name);
    }
    if let Some(name) = refused_markup(bytes) {
        return Sniffed::Refused(name);
    }
    Sniffed::Unknown
}

fn refused_binary(b: &[u8]) -> Option<&'static str> {
    const TABLE: &[(&[u8], &str)] = &[
        (b"II*\0", "TIFF"),
        (b"MM\0*", "TIFF"),
        (b"II+\0", "TIFF"),
        (b"MM\0+", "TIFF"),
        (b"%PDF-", "PDF"),
        (b"BM", "BMP"),
        (b"\0\0\x01\0", "ICO"),
        (b"\0\0\x02\0", "CUR"),
        (b"8BPS", "PSD"),
        (b"\xFF\x0A", "JPEG XL"),
        (b"\0\0\0\x0CJXL \r\n\x87\n", "JPEG XL"),
        (b"\0\0\0\x0CjP  \r\n\x87\n", "JPEG 2000"),
        (b"\x76\x2F\x31\x01", "OpenEXR"),
        (b"#?RADIANCE", "HDR"),
        (b"qoif", "QOI"),
        (b"DDS ", "DDS"),
        (b"farbfeld", "Farbfeld"),
        (b"PK\x03\x04", "ZIP"),
        (b"\x1F\x8B", "GZIP"),
        (b"%!PS", "PostScript"),
    ];
    for (magic, name) in TABLE {
        if b.starts_with(magic) {
            return Some(name);
        }
    }
    if b.len() >= 12 && &b[0..4] == b"RIFF" {
        return Some("RIFF(非WebP)");
    }
    // ISO-BMFF: size(4) "ftyp" brand(4)
    if b.len() >= 12 && &b[4..8] == b"ftyp" {
        return Some(match &b[8..12] {
            b"avif" | b"avis" => "AVIF",
            b"heic" | b"heix" | b"hevc" | b"hevx" | b"heim" | b"heis" | b"mif1" | b"msf1" => {
                "HEIC/HEIF"
            }
            _ => "MP4/ISO媒体",
        });
    }
    // PNM: P1..P7 followed by whitespace.
    if b.len() >= 3 && b[0] == b'P' && (b'1'..=b'7').contains(&b[1]) && b[2].is_ascii_whitespace() {
        return Some("PNM");
    }
    None
}

/// Text formats people upload by mistake (an error page saved as .jpg, an SVG logo).
fn refused_markup(b: &[u8]) -> Option<&'static str> {
    // Skip a UTF-8 BOM and leading whitespace, then look at a bounded prefix.
    let b = b.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(b);
    let start = b.iter().position(|c| !c.is_ascii_whitespace())?;
    let head = &b[start..b.len().min(start + 4096)];
    if head.first() != Some(&b'<') {
        return None;
    }
    let lower: Vec<u8> = head.iter().map(u8::to_ascii_lowercase).collect();
    let contains = |needle: &[u8]| lower.windows(needle.len()).any(|w| w == needle);
    if lower.starts_with(b"<!doctype html")
        || lower.starts_with(b"<html")
        || lower.starts_with(b"<head")
        || lower.starts_with(b"<body")
        || (contains(b"<html") && !contains(b"<svg"))
    {
        return Some("HTML");
    }
    if lower.starts_with(b"<svg") || contains(b"<svg") {
        return Some("SVG");
    }
    if lower.starts_with(b"<?xml") || lower.starts_with(b"<!--") || lower.starts_with(b"<!doctype")
    {
        return Some("XML");
    }
    Some("HTML/XML文本")
}
