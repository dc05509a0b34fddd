//! Errors of the avatar pipeline, with stable machine codes and user-facing Chinese text.

/// Why an upload could not be turned into an avatar.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Zero bytes were uploaded.
    #[error("image is empty")]
    Empty,

    /// The bytes are not JPEG, PNG, WebP or GIF. `detected` names what they look like.
    #[error("unsupported image format (only JPEG/PNG/WebP/GIF are accepted), detected: {detected}")]
    UnsupportedFormat { detected: &'static str },

    /// An accepted container using a feature its decoder does not implement
    /// (e.g. a 12-bit or arithmetic-coded JPEG).
    #[error("unsupported {format} feature: {detail}")]
    UnsupportedFeature {
        format: &'static str,
        detail: String,
    },

    /// Header dimensions exceed `max_side` on a side or `max_pixels` in total.
    #[error(
        "image too large: {width}x{height} (max {max_side} px per side and {max_pixels} pixels)"
    )]
    TooLarge {
        width: u32,
        height: u32,
        max_side: u32,
        max_pixels: u64,
    },

    /// Decoding would need more memory than `max_alloc` allows
    /// (`needed` is the decoded buffer size when known).
    #[error("decoding the image needs too much memory (needed: {needed:?} bytes, max {max_alloc})")]
    TooMuchMemory { needed: Option<u64>, max_alloc: u64 },

    /// Truncated, malformed or otherwise undecodable data in an accepted format.
    #[error("corrupt or truncated {format} image: {detail}")]
    Corrupt {
        format: &'static str,
        detail: String,
    },

    /// Resizing or encoding failed; not caused by the user's file.
    #[error("internal image processing error: {0}")]
    Internal(String),
}

impl ImageError {
    /// Stable kebab-case machine code.
    pub fn code(&self) -> &'static str {
        match self {
            ImageError::Empty => "image-empty",
            ImageError::UnsupportedFormat { .. } | ImageError::UnsupportedFeature { .. } => {
                "image-unsupported-format"
            }
            ImageError::TooLarge { .. } | ImageError::TooMuchMemory { .. } => "image-too-large",
            ImageError::Corrupt { .. } => "image-corrupt",
            ImageError::Internal(_) => "image-internal",
        }
    }

    /// Plain Chinese words for the user.
    pub fn message(&self) -> String {
        match self {
            ImageError::Empty => "图片为空".to_owned(),
            ImageError::UnsupportedFormat { detected } => {
                format!("不支持的图片格式(仅支持JPEG/PNG/WebP/GIF)，检测到: {detected}")
            }
            ImageError::UnsupportedFeature { format, .. } => {
                format!("不支持的图片编码方式({format})，请转换为普通的JPEG/PNG/WebP/GIF后重试")
            }
            ImageError::TooLarge {
                width,
                height,
                max_side,
                max_pixels,
            } => format!(
                "图片尺寸过大: {width}x{height}，上限为每边{max_side}像素且不超过{}像素",
                pixels_zh(*max_pixels)
            ),
            ImageError::TooMuchMemory { max_alloc, .. } => format!(
                "图片过大，解码所需内存超过上限({}MB)",
                max_alloc.div_ceil(1024 * 1024)
            ),
            ImageError::Corrupt { .. } => "图片数据损坏或不完整".to_owned(),
            ImageError::Internal(_) => "图片处理失败，请稍后重试".to_owned(),
        }
    }
}

/// `40_000_000` → "4000万"; other values as plain digits.
fn pixels_zh(n: u64) -> String {
    if n >= 10_000 && n.is_multiple_of(10_000) {
        format!("{}万", n / 10_000)
    } else {
        n.to_string()
    }
}
