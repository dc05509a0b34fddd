//! Bounded decoding of untrusted bytes.
//!
//! Order of checks: empty → magic-byte sniff (only the four accepted decoders can
//! ever run) → header dimensions (with `image::Limits` set on the reader, so the
//! decoder refuses oversized headers itself) → our side/pixel caps → a memory
//! reservation for the output buffer → for a JPEG without its end-of-image
//! marker, whether every scanline comes from its data → the actual pixel decode.

use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageReader, Limits};

use super::ImageLimits;
use super::error::ImageError;
use super::reduced_jpeg::{Reduced, YCbCr};
use super::sniff::{AcceptedFormat, Sniffed, UNKNOWN_LABEL, sniff};

/// A decoded picture plus the orientation still to be applied to it.
pub(crate) struct Decoded {
    pub image: Picture,
    pub orientation: Orientation,
}

/// Decoded pixels, or a JPEG's YCbCr planes as our decoder made them (the
/// avatar renderer resamples those plane by plane).
pub(crate) enum Picture {
    Pixels(DynamicImage),
    YCbCr(YCbCr),
}

impl Picture {
    /// Width and height in pixels.
    #[cfg(test)]
    pub(crate) fn dimensions(&self) -> (u32, u32) {
        match self {
            Picture::Pixels(image) => (image.width(), image.height()),
            Picture::YCbCr(ycbcr) => {
                let (_, _, width, height) = ycbcr.region();
                (width as u32, height as u32)
            }
        }
    }

    /// As pixels, YCbCr converted to RGB.
    pub(crate) fn into_pixels(self) -> DynamicImage {
        match self {
            Picture::Pixels(image) => image,
            Picture::YCbCr(ycbcr) => rgb_image(ycbcr.to_rgb()),
        }
    }
}

fn rgb_image(rgb: Reduced) -> DynamicImage {
    let (w, h) = (rgb.width, rgb.height);
    // `to_rgb` makes exactly w·h·3 bytes; an empty picture (reported as
    // corrupt by the renderer) rather than a panic otherwise.
    image::RgbImage::from_raw(w, h, rgb.pixels)
        .map_or_else(|| DynamicImage::new_rgb8(0, 0), DynamicImage::ImageRgb8)
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
    let jpeg_end = match format {
        AcceptedFormat::Jpeg => jpeg_end(bytes),
        _ => JpegEnd::Marker,
    };
    if jpeg_end == JpegEnd::Broken {
        return Err(ImageError::Corrupt {
            format: format.name(),
            detail: "JPEG has no image data".to_owned(),
        });
    }
    // Defence in depth: a panic inside a third-party decoder on a hostile file
    // becomes a "corrupt" error instead of tearing down the worker thread.
    match catch_unwind(AssertUnwindSafe(|| {
        decode_as(bytes, format, jpeg_end, limits)
    })) {
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
    jpeg_end: JpegEnd,
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
    // a conservative estimate for those up front. So is the RGB8 copy that
    // grey, alpha, 16-bit and float pictures are converted into while the
    // decoded buffer still lives.
    let needed = decoder
        .total_bytes()
        .saturating_add(untracked_scratch_bytes(bytes, format, width, height))
        .saturating_add(super::variants::conversion_bytes(
            decoder.color_type(),
            width,
            height,
        ));
    let mut remaining = full_limits;
    if remaining.reserve(needed).is_err() {
        return Err(ImageError::TooMuchMemory {
            needed: Some(needed),
            max_alloc: limits.max_alloc,
        });
    }
    // Only now, with the header checked and the memory reserved: a JPEG that
    // ends without its end-of-image marker is judged by its scanlines.
    if jpeg_end == JpegEnd::Missing
        && let Err(detail) = every_scanline_decodes(bytes)
    {
        return Err(ImageError::Corrupt {
            format: format.name(),
            detail: format!("JPEG data ends before the last scanline ({detail})"),
        });
    }
    // jpeg-decoder reads ahead past the last scan and stops at the end of the
    // data; give it the marker the camera left out (the scanlines are whole).
    let with_end;
    let jpeg_bytes = if jpeg_end == JpegEnd::Missing {
        with_end = [bytes, &[0xFF, 0xD9]].concat();
        &with_end[..]
    } else {
        bytes
    };
    if format == AcceptedFormat::Jpeg
        && let Some(image) = decode_jpeg_reduced(jpeg_bytes, width, height, limits)
    {
        return Ok(Decoded { image, orientation });
    }
    decoder
        .set_limits(remaining)
        .map_err(|e| map_error(e, format, limits))?;

    // JPEG/PNG/WebP read a single image; the GIF decoder reads only the first frame.
    let image = read_pixels(decoder).map_err(|e| map_error(e, format, limits))?;
    Ok(Decoded {
        image: Picture::Pixels(image),
        orientation,
    })
}

/// Decodes 8-bit pictures into a reused buffer ([`super::buffers`]); other
/// layouts (16-bit, float) as `image` allocates them.
fn read_pixels(decoder: impl ImageDecoder) -> image::ImageResult<DynamicImage> {
    use image::{ColorType, ImageBuffer};

    let (width, height) = decoder.dimensions();
    let color = decoder.color_type();
    let len = usize::try_from(decoder.total_bytes()).ok();
    let (Some(len), ColorType::L8 | ColorType::La8 | ColorType::Rgb8 | ColorType::Rgba8) =
        (len, color)
    else {
        return DynamicImage::from_decoder(decoder);
    };
    let mut pixels = super::buffers::take(len);
    decoder.read_image(&mut pixels)?;
    let image = match color {
        ColorType::L8 => ImageBuffer::from_raw(width, height, pixels).map(DynamicImage::ImageLuma8),
        ColorType::La8 => {
            ImageBuffer::from_raw(width, height, pixels).map(DynamicImage::ImageLumaA8)
        }
        ColorType::Rgb8 => {
            ImageBuffer::from_raw(width, height, pixels).map(DynamicImage::ImageRgb8)
        }
        _ => ImageBuffer::from_raw(width, height, pixels).map(DynamicImage::ImageRgba8),
    };
    image.ok_or_else(|| {
        image::ImageError::Parameter(image::error::ParameterError::from_kind(
            image::error::ParameterErrorKind::DimensionMismatch,
        ))
    })
}

/// Baseline JPEGs, the kind cameras and phones write, through our own
/// decoder ([`super::reduced_jpeg`]), which decodes only the centre square
/// the avatar is cut from. A large picture is shrunk on load: when the centre
/// square is at least twice the `0` variant's side, it is decoded at 1/2, 1/4
/// or 1/8 scale in the DCT domain (the IDCT is computed on the low-frequency
/// corner of each block, which is a proper low-pass, not a point sample),
/// choosing the smallest scale whose square side is still ≥ 640, so the
/// resampler still only ever shrinks. Entropy decoding is the same work; the
/// IDCT, upsampling, colour conversion, the buffer and the resampler's input
/// shrink 4–64×.
///
/// What our decoder leaves (progressive, unusual sampling, anything it finds
/// malformed): when a scale was chosen, `jpeg-decoder`'s scaled decode.
/// `None` means "use the full decoder": not plain 8-bit greyscale/YCbCr/RGB
/// (CMYK, lossless, 16-bit keep the exact path), or the reduced decoders
/// refused it — the full decoder then decides and reports the same errors as
/// before. Runs after all header and memory checks.
fn decode_jpeg_reduced(
    bytes: &[u8],
    width: u32,
    height: u32,
    limits: &ImageLimits,
) -> Option<Picture> {
    use super::reduced_jpeg::{Decoded, Region, decode_planes};

    // Whole pixels only: a last column decoded from part of a block is not
    // counted towards the target.
    let target = u64::from(super::AvatarSize::Big.nominal_px());
    let square = u64::from(width.min(height));
    let n = [1, 2, 4]
        .into_iter()
        .find(|&n| square * n as u64 >= 8 * target)
        .unwrap_or(8);
    match decode_planes(bytes, n, Region::CentreSquare, limits.max_pixels) {
        Some(Decoded::YCbCr(ycbcr)) => return Some(Picture::YCbCr(ycbcr)),
        Some(Decoded::Grey(grey)) => {
            let (w, h) = (grey.width, grey.height);
            return image::GrayImage::from_raw(w, h, grey.pixels)
                .map(|grey| Picture::Pixels(DynamicImage::ImageLuma8(grey)));
        }
        None if n == 8 => return None,
        None => {}
    }
    decode_jpeg_decoder_scaled(bytes, width, height, limits).map(Picture::Pixels)
}

/// [`decode_jpeg_reduced`] by `jpeg-decoder`, for the JPEGs our own reduced
/// decoder leaves (progressive ones, above all); the caller has already found
/// the picture large enough.
fn decode_jpeg_decoder_scaled(
    bytes: &[u8],
    width: u32,
    height: u32,
    limits: &ImageLimits,
) -> Option<DynamicImage> {
    use jpeg_decoder::{CodingProcess, Decoder, PixelFormat};

    let target = u64::from(super::AvatarSize::Big.nominal_px());
    let square = u64::from(width.min(height));
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

/// How the marker segments of a JPEG end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JpegEnd {
    /// An end-of-image marker (FFD9) after the first scan. Trailing bytes after
    /// it are allowed (some cameras append data).
    Marker,
    /// A scan, then the data runs out without an end-of-image marker: a camera
    /// that omits the marker, or a file cut short. The scanlines decide.
    Missing,
    /// No scan at all, or garbage between header segments.
    Broken,
}

/// Walks the marker segments and the entropy-coded data (every byte, with a
/// SIMD search) to find where the JPEG ends.
pub(crate) fn jpeg_end(b: &[u8]) -> JpegEnd {
    // SOI
    if b.len() < 4 || b[0] != 0xFF || b[1] != 0xD8 {
        return JpegEnd::Broken;
    }
    let ran_out = |seen_scan: bool| {
        if seen_scan {
            JpegEnd::Missing
        } else {
            JpegEnd::Broken
        }
    };
    let mut i = 2;
    let mut seen_scan = false;
    while i + 1 < b.len() {
        if b[i] != 0xFF {
            if !seen_scan {
                // Garbage between header segments.
                return JpegEnd::Broken;
            }
            // Entropy-coded data: jump to the next 0xFF.
            match memchr::memchr(0xFF, &b[i..]) {
                Some(offset) => i += offset,
                None => return ran_out(seen_scan),
            }
            continue;
        }
        let marker = b[i + 1];
        match marker {
            // Fill bytes.
            0xFF => i += 1,
            // Stuffed zero or restart markers inside entropy-coded data.
            0x00 | 0xD0..=0xD7 => i += 2,
            0xD9 if seen_scan => return JpegEnd::Marker,
            0xD9 => return JpegEnd::Broken,
            // Standalone markers without a length.
            0x01 | 0xD8 => i += 2,
            _ => {
                if i + 3 >= b.len() {
                    return ran_out(seen_scan);
                }
                let len = usize::from(u16::from_be_bytes([b[i + 2], b[i + 3]]));
                if len < 2 {
                    return JpegEnd::Broken;
                }
                if marker == 0xDA {
                    if i + 2 + len > b.len() {
                        // Cut inside the scan header: no scan data at all.
                        return ran_out(false);
                    }
                    seen_scan = true;
                }
                i += 2 + len;
            }
        }
    }
    ran_out(seen_scan)
}

/// Whether every scanline of a JPEG comes from its data. zune-jpeg, in the
/// lenient mode the `image` crate uses, pads a scan cut short with grey and
/// succeeds, so a half-uploaded JPEG would "decode"; in strict mode it stops
/// with an error at the first MCU row the data does not reach, and accepts
/// a complete scan whose end-of-image marker is missing. Used only for JPEGs
/// without the marker (complete ones are not decoded twice). Progressive
/// JPEGs without the marker are refused by it: their last scan cannot be told
/// from a cut one.
fn every_scanline_decodes(bytes: &[u8]) -> Result<(), String> {
    use zune_core::bytestream::ZCursor;
    use zune_core::options::DecoderOptions;

    let options = DecoderOptions::default()
        .set_strict_mode(true)
        .set_max_width(usize::MAX)
        .set_max_height(usize::MAX);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    decoder.decode().map(drop).map_err(|e| format!("{e:?}"))
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
