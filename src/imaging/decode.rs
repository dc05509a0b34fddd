//! Bounded decoding of untrusted bytes.
//!
//! Order of checks: empty → magic-byte sniff (only the four accepted decoders can
//! ever run) → header dimensions (with `image::Limits` set on the reader, so the
//! decoder refuses oversized headers itself) → our side/pixel caps → a memory
//! reservation for the output buffer → the actual pixel decode.

use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageReader, Limits};

use super::ImageLimits;
use super::error::ImageError;
use super::sniff::{AcceptedFormat, Sniffed, UNKNOWN_LABEL, sniff};

/// A decoded picture plus the orientation still to be applied to it.
pub(crate) struct Decoded {
    pub image: DynamicImage,
    pub orientation: Orientation,
}

pub(crate) fn decode(bytes: &[u8], limits: &ImageLimits) -> Result<Decoded, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    let format = match sniff(bytes) {
        Sniffed::Accepted(format) => format,
        Sniffed::Refused(detected) => return Err(ImageError::UnsupportedFormat { detected }),
        Sniffed::Unknown => {
            return Err(ImageError::UnsupportedFormat {
                detected: UNKNOWN_LABEL,
            });
        }
    };
    if format == AcceptedFormat::Jpeg && !jpeg_is_complete(bytes) {
        return Err(ImageError::Corrupt {
            format: format.name(),
            detail: "JPEG data ends before the end-of-image marker".to_owned(),
        });
    }
    // Defence in depth: a panic inside a third-party decoder on a hostile file
    // becomes a "corrupt" error instead of tearing down the worker thread.
    match catch_unwind(AssertUnwindSafe(|| decode_as(bytes, format, limits))) {
        Ok(result) => result,
        Err(_) => Err(ImageError::Corrupt {
            format: format.name(),
            detail: "decoder panicked".to_owned(),
        }),
    }
}

fn reader_limits(limits: &ImageLimits, with_dimensions: bool) -> Limits {
    // `Limits` is #[non_exhaustive]: start from `no_limits()` and set fields.
    let mut l = Limits::no_limits();
    if with_dimensions {
        l.max_image_width = Some(limits.max_side);
        l.max_image_height = Some(limits.max_side);
    }
    l.max_alloc = Some(limits.max_alloc);
    l
}

fn decode_as(
    bytes: &[u8],
    format: AcceptedFormat,
    limits: &ImageLimits,
) -> Result<Decoded, ImageError> {
    let full_limits = reader_limits(limits, true);
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format.image_format());
    reader.limits(full_limits.clone());
    // Only parses the header; the decoder checks the dimension limits itself.
    let mut decoder = match reader.into_decoder() {
        Ok(decoder) => decoder,
        Err(image::ImageError::Limits(_)) => {
            return Err(explain_header_refusal(bytes, format, limits));
        }
        Err(e) => return Err(map_error(e, format, limits)),
    };

    let (width, height) = decoder.dimensions();
    check_dimensions(width, height, format, limits)?;

    // A malformed Exif block must not make an otherwise fine picture fail.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);

    // Same accounting as `ImageReader::decode`: the output buffer is charged to
    // `max_alloc` first, the decoder gets what is left for its scratch buffers.
    // Some decoders ignore `max_alloc` for their own scratch buffers; charge
    // a conservative estimate for those up front.
    let needed = decoder
        .total_bytes()
        .saturating_add(untracked_scratch_bytes(bytes, format, width, height));
    let mut remaining = full_limits;
    if remaining.reserve(needed).is_err() {
        return Err(ImageError::TooMuchMemory {
            needed: Some(needed),
            max_alloc: limits.max_alloc,
        });
    }
    if format == AcceptedFormat::Jpeg
        && let Some(image) = decode_jpeg_reduced(bytes, width, height, limits)
    {
        return Ok(Decoded { image, orientation });
    }
    decoder
        .set_limits(remaining)
        .map_err(|e| map_error(e, format, limits))?;

    // JPEG/PNG/WebP read a single image; the GIF decoder reads only the first frame.
    let image = DynamicImage::from_decoder(decoder).map_err(|e| map_error(e, format, limits))?;
    Ok(Decoded { image, orientation })
}

/// Shrink-on-load for large JPEGs: when the centre square is at least twice
/// the `0` variant's side, decode at 1/2, 1/4 or 1/8 scale in the DCT domain
/// (the IDCT is computed on the low-frequency corner of each block, which is a
/// proper low-pass, not a point sample), choosing the smallest scale whose
/// square side is still ≥ 640, so the resampler still only ever shrinks.
/// Entropy decoding is the same work; the IDCT, upsampling, colour conversion,
/// the buffer and the resampler's input shrink 4–64×.
///
/// `None` means "use the full decoder": the picture is small enough, not plain
/// 8-bit greyscale/YCbCr/RGB (CMYK, lossless, 16-bit keep the exact path), or
/// `jpeg-decoder` refused it — the full decoder then decides and reports the
/// same errors as before. Runs after all header and memory checks.
fn decode_jpeg_reduced(
    bytes: &[u8],
    width: u32,
    height: u32,
    limits: &ImageLimits,
) -> Option<DynamicImage> {
    use jpeg_decoder::{CodingProcess, Decoder, PixelFormat};

    let target = u64::from(super::AvatarSize::Big.nominal_px());
    let square = u64::from(width.min(height));
    if square < 2 * target {
        return None;
    }
    let mut decoder = Decoder::new(bytes);
    decoder.set_max_decoding_buffer_size(usize::try_from(limits.max_alloc).ok()?);
    decoder.read_info().ok()?;
    let info = decoder.info()?;
    let plain = matches!(
        info.coding_process,
        CodingProcess::DctSequential | CodingProcess::DctProgressive
    ) && matches!(info.pixel_format, PixelFormat::L8 | PixelFormat::RGB24);
    if !plain || (u32::from(info.width), u32::from(info.height)) != (width, height) {
        return None;
    }
    // Ask for the size at which the *shorter* side reaches the target (the
    // decoder accepts a scale when either side reaches the request).
    let request = |side: u32| u16::try_from((u64::from(side) * target).div_ceil(square)).ok();
    let (out_w, out_h) = decoder.scale(request(width)?, request(height)?).ok()?;
    if u64::from(out_w.min(out_h)) < target {
        return None;
    }
    let pixels = decoder.decode().ok()?;
    let (w, h) = (u32::from(out_w), u32::from(out_h));
    match decoder.info()?.pixel_format {
        PixelFormat::RGB24 => image::RgbImage::from_raw(w, h, pixels).map(DynamicImage::ImageRgb8),
        PixelFormat::L8 => image::GrayImage::from_raw(w, h, pixels).map(DynamicImage::ImageLuma8),
        _ => None,
    }
}

/// Scratch memory the decoder allocates without consulting `max_alloc`:
/// image-webp keeps a w·h·4 RGBA (lossless) or YUV+RGB (lossy) frame, and
/// zune-jpeg holds all DCT coefficients (2 bytes per sample per component) of
/// a progressive JPEG. Baseline JPEG, PNG and GIF decode row by row.
fn untracked_scratch_bytes(bytes: &[u8], format: AcceptedFormat, width: u32, height: u32) -> u64 {
    let pixels = u64::from(width) * u64::from(height);
    match format {
        AcceptedFormat::WebP => pixels.saturating_mul(4),
        AcceptedFormat::Jpeg => match jpeg_progressive_components(bytes) {
            Some(components) => pixels.saturating_mul(2 * u64::from(components.max(1))),
            None => 0,
        },
        AcceptedFormat::Png | AcceptedFormat::Gif => 0,
    }
}

fn check_dimensions(
    width: u32,
    height: u32,
    format: AcceptedFormat,
    limits: &ImageLimits,
) -> Result<(), ImageError> {
    if width == 0 || height == 0 {
        return Err(ImageError::Corrupt {
            format: format.name(),
            detail: format!("zero dimension {width}x{height}"),
        });
    }
    let pixels = u64::from(width) * u64::from(height);
    if width > limits.max_side || height > limits.max_side || pixels > limits.max_pixels {
        return Err(ImageError::TooLarge {
            width,
            height,
            max_side: limits.max_side,
            max_pixels: limits.max_pixels,
        });
    }
    Ok(())
}

/// The reader refused the header because of a limit. Read the header again
/// without the dimension limits (still nothing but the header) so the message
/// can name the dimensions.
fn explain_header_refusal(
    bytes: &[u8],
    format: AcceptedFormat,
    limits: &ImageLimits,
) -> ImageError {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format.image_format());
    reader.limits(reader_limits(limits, false));
    if let Ok(decoder) = reader.into_decoder() {
        let (width, height) = decoder.dimensions();
        if let Err(e) = check_dimensions(width, height, format, limits) {
            return e;
        }
    }
    ImageError::TooMuchMemory {
        needed: None,
        max_alloc: limits.max_alloc,
    }
}

fn map_error(e: image::ImageError, format: AcceptedFormat, limits: &ImageLimits) -> ImageError {
    let format_name = format.name();
    match e {
        image::ImageError::Limits(_) => ImageError::TooMuchMemory {
            needed: None,
            max_alloc: limits.max_alloc,
        },
        image::ImageError::Unsupported(u) => ImageError::UnsupportedFeature {
            format: format_name,
            detail: u.to_string(),
        },
        image::ImageError::Decoding(d) => ImageError::Corrupt {
            format: format_name,
            detail: d.to_string(),
        },
        image::ImageError::IoError(io) => ImageError::Corrupt {
            format: format_name,
            detail: io.to_string(),
        },
        image::ImageError::Parameter(p) => ImageError::Corrupt {
            format: format_name,
            detail: p.to_string(),
        },
        image::ImageError::Encoding(en) => ImageError::Internal(en.to_string()),
    }
}

/// zune-jpeg (in the lenient mode the `image` crate uses) pads a truncated scan
/// with grey instead of failing, so a half-uploaded JPEG would "succeed".
/// Walk the marker segments and the entropy-coded data and require an EOI
/// marker (FFD9) after the first scan. Trailing bytes after EOI are allowed
/// (some cameras append data).
pub(crate) fn jpeg_is_complete(b: &[u8]) -> bool {
    // SOI
    if b.len() < 4 || b[0] != 0xFF || b[1] != 0xD8 {
        return false;
    }
    let mut i = 2;
    let mut seen_scan = false;
    while i + 1 < b.len() {
        if b[i] != 0xFF {
            if !seen_scan {
                // Garbage between header segments.
                return false;
            }
            // Entropy-coded data: jump to the next 0xFF (SIMD search; this
            // walk covers every byte of the file).
            match memchr::memchr(0xFF, &b[i..]) {
                Some(offset) => i += offset,
                None => return false,
            }
            continue;
        }
        let marker = b[i + 1];
        match marker {
            // Fill bytes.
            0xFF => i += 1,
            // Stuffed zero or restart markers inside entropy-coded data.
            0x00 | 0xD0..=0xD7 => i += 2,
            0xD9 => return seen_scan,
            // Standalone markers without a length.
            0x01 | 0xD8 => i += 2,
            _ => {
                if i + 3 >= b.len() {
                    return false;
                }
                let len = usize::from(u16::from_be_bytes([b[i + 2], b[i + 3]]));
                if len < 2 {
                    return false;
                }
                i += 2 + len;
                if marker == 0xDA {
                    seen_scan = true;
                }
            }
        }
    }
    false
}

/// Number of components if the first frame header is progressive
/// (SOF2/SOF6/SOF10/SOF14), `None` for sequential JPEGs or unparsable headers.
pub(crate) fn jpeg_progressive_components(b: &[u8]) -> Option<u8> {
    if b.len() < 4 || b[0] != 0xFF || b[1] != 0xD8 {
        return None;
    }
    let mut i = 2;
    while i + 3 < b.len() {
        if b[i] != 0xFF {
            return None;
        }
        let marker = b[i + 1];
        if marker == 0xFF {
            i += 1;
            continue;
        }
        let len = usize::from(u16::from_be_bytes([b[i + 2], b[i + 3]]));
        match marker {
            // SOFn (C4 = DHT, C8 = JPG, CC = DAC are not frame headers).
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                let progressive = matches!(marker, 0xC2 | 0xC6 | 0xCA | 0xCE);
                // FFCx, length(2), precision(1), height(2), width(2), Nf(1)
                return if progressive {
                    b.get(i + 9).copied()
                } else {
                    None
                };
            }
            // Start of scan or end of image before any frame header.
            0xDA | 0xD9 => return None,
            _ => {
                if len < 2 {
                    return None;
                }
                i += 2 + len;
            }
        }
    }
    None
}
