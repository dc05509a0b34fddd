//! Avatar image pipeline: untrusted bytes in → five square JPEG variants out,
//! or a clear [`ImageError`].
//!
//! * The format is sniffed from magic bytes (JPEG, PNG, WebP, GIF accepted);
//!   only those four decoders can ever run.
//! * Header dimensions are checked against [`ImageLimits`] before any pixel is
//!   decoded; `image::Limits` are set on the reader as well, and the decoded
//!   buffer is charged to `max_alloc` before decoding.
//! * Exif orientation is applied, alpha is composited onto white (RGBA after
//!   a premultiplied resize), the centre square is cut and resized with a
//!   Lanczos3 convolution (`fast_image_resize`); the small sizes from
//!   box-filtered halves of the `0` square at least twice their side. A 4:2:0
//!   JPEG (what cameras and phones write) whose square is at least 640 px is
//!   resized plane by plane, chroma at its own half size, and encoded from
//!   the planes: no chroma upsampling, no colour conversion either way.
//! * Output: baseline JPEG at [`JPEG_QUALITY`], no metadata, byte-for-byte
//!   deterministic for the same input on the same machine.
//!
//! Everything here is synchronous CPU work; callers run it on a blocking
//! thread. The one piece of global state is a handful of reused pixel buffers
//! (`buffers`), which never carry anything from one picture to the next.

mod baseline_encoder;
pub mod buffers;
mod card;
mod decode;
mod error;
mod identicon;
mod qr;
mod reduced_jpeg;
mod sniff;
mod variants;

#[cfg(test)]
mod tests;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::domain::AvatarId;
pub use crate::domain::AvatarSize;
use crate::telemetry::metrics::{self, Stage};
pub use card::{contact_card_content, contact_card_jpeg};
pub use error::ImageError;
pub use qr::login_qr_jpeg;
pub use sniff::{AcceptedFormat, Sniffed, sniff};

/// JPEG quality of every variant.
pub const JPEG_QUALITY: u8 = 85;

/// Caps applied to untrusted input before decoding.
#[derive(Debug, Clone, Copy)]
pub struct ImageLimits {
    /// Maximum width and maximum height, in pixels.
    pub max_side: u32,
    /// Maximum width × height.
    pub max_pixels: u64,
    /// Maximum bytes the decoder may allocate (decoded buffer included).
    pub max_alloc: u64,
}

impl Default for ImageLimits {
    fn default() -> Self {
        ImageLimits {
            max_side: 8192,
            max_pixels: 40_000_000,
            max_alloc: 256 * 1024 * 1024,
        }
    }
}

/// One rendered size.
#[derive(Debug, Clone)]
pub struct Variant {
    pub size: AvatarSize,
    /// Width = height of the JPEG.
    pub side: u32,
    pub jpeg: Bytes,
}

/// The five variants of one avatar.
#[derive(Debug, Clone)]
pub struct RenderedAvatar {
    /// One per [`AvatarSize::ALL`], in the same order.
    pub variants: Vec<Variant>,
}

impl RenderedAvatar {
    /// Content id: the SHA-256 over every variant's bytes (each prefixed by its
    /// length as a little-endian u64, in `ALL` order).
    pub fn content_id(&self) -> AvatarId {
        let mut hasher = Sha256::new();
        for size in AvatarSize::ALL {
            let jpeg = &self.get(size).jpeg;
            hasher.update((jpeg.len() as u64).to_le_bytes());
            hasher.update(jpeg);
        }
        AvatarId::from_digest(&hasher.finalize().into())
    }

    /// The variant of `size`.
    ///
    /// # Panics
    /// Only if `variants` was altered so that it no longer holds every size
    /// (values built by this module always do).
    pub fn get(&self, size: AvatarSize) -> &Variant {
        self.variants
            .iter()
            .find(|v| v.size == size)
            .expect("RenderedAvatar holds one variant per AvatarSize")
    }
}

/// Decode untrusted bytes and render the five variants.
pub fn render_avatar(bytes: &[u8], limits: &ImageLimits) -> Result<RenderedAvatar, ImageError> {
    let decoding = std::time::Instant::now();
    let decoded = decode::decode(bytes, limits)?;
    metrics::avatar_stage(Stage::Decode, decoding.elapsed());
    let encoding = std::time::Instant::now();
    let rendered = variants::render(decoded.image, decoded.orientation)?;
    metrics::avatar_stage(Stage::Encode, encoding.elapsed());
    Ok(rendered)
}

/// Our own JPEG decoder alone, for its fuzz target: `bytes` (at most
/// `max_pixels` at full size) at `n`/8 of each side (`n` = 1, 2, 4 or 8), the
/// whole picture or its centre square, as (width, height, channels, pixels),
/// or `None` where the general decoders would take over.
#[doc(hidden)]
pub fn decode_jpeg_reduced_for_fuzzing(
    bytes: &[u8],
    n: usize,
    centre_square: bool,
    max_pixels: u64,
) -> Option<(u32, u32, u8, Vec<u8>)> {
    let region = if centre_square {
        reduced_jpeg::Region::CentreSquare
    } else {
        reduced_jpeg::Region::Whole
    };
    reduced_jpeg::decode(bytes, n, region, max_pixels)
        .map(|p| (p.width, p.height, p.channels, p.pixels))
}

/// Render variants from an already-decoded RGB picture (used for generated
/// default avatars). No size limits are applied: the caller owns the picture.
pub fn render_rgb(image: image::RgbImage) -> Result<RenderedAvatar, ImageError> {
    variants::render(
        decode::Picture::Pixels(image::DynamicImage::ImageRgb8(image)),
        image::metadata::Orientation::NoTransforms,
    )
}

/// A deterministic default avatar for a new account: a GitHub-style symmetric
/// 5×5 identicon (640×640), colour and pattern from SHA-256 of `seed`.
/// Same seed → same bytes.
pub fn default_avatar(seed: &str) -> RenderedAvatar {
    // Resizing and encoding a fixed-size, well-formed 640×640 RGB picture
    // into a Vec has no failure path that depends on `seed`.
    render_rgb(identicon::draw(seed)).expect("rendering a generated identicon cannot fail")
}
