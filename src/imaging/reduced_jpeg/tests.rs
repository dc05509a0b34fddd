use image::{Rgb, RgbImage};
use jpeg_encoder::{ColorType, Encoder, SamplingFactor};

use super::*;
use crate::imaging::tests::xorshift;

/// Gradients and ripples in every channel, with a band of noise across the
/// lower third: flat blocks, smooth ones and ones whose large coefficients
/// need the longest Huffman codes.
pub(crate) fn photo(width: u16, height: u16) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(usize::from(width) * usize::from(height) * 3);
    let mut next = xorshift(0x2545_F491_4F6C_DD1D);
    for y in 0..height {
        for x in 0..width {
            let (fx, fy) = (f32::from(x), f32::from(y));
            let ripple = 60.0 * (fx / 7.0 + fy / 11.0).sin();
            let mut pixel = [
                fx * 255.0 / f32::from(width),
                fy * 255.0 / f32::from(height),
                128.0 + ripple,
            ];
            if 3 * y >= 2 * height {
                for (channel, noise) in pixel.iter_mut().zip(next().to_le_bytes()) {
                    *channel = (*channel + f32::from(noise) - 128.0).clamp(0.0, 255.0);
                }
            }
            rgb.extend(pixel.map(|channel| channel as u8));
        }
    }
    rgb
}

struct Options {
    sampling: SamplingFactor,
    grey: bool,
    restart: u16,
    optimized: bool,
    progressive: bool,
}

const PLAIN: Options = Options {
    sampling: SamplingFactor::F_2_2,
    grey: false,
    restart: 0,
    optimized: false,
    progressive: false,
};

fn jpeg(width: u16, height: u16, options: &Options) -> Vec<u8> {
    let rgb = photo(width, height);
    let mut out = Vec::new();
    let mut encoder = Encoder::new(&mut out, 90);
    encoder.set_sampling_factor(options.sampling);
    encoder.set_restart_interval(options.restart);
    encoder.set_optimized_huffman_tables(options.optimized);
    encoder.set_progressive(options.progressive);
    if options.grey {
        let grey: Vec<u8> = rgb.chunks_exact(3).map(|p| p[1]).collect();
        encoder
            .encode(&grey, width, height, ColorType::Luma)
            .unwrap();
    } else {
        encoder.encode(&rgb, width, height, ColorType::Rgb).unwrap();
    }
    out
}

/// jpeg-decoder's scaled decode of the same file at the same size.
fn reference(bytes: &[u8], width: u32, height: u32) -> Vec<u8> {
    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    decoder.read_info().unwrap();
    let size = decoder.scale(width as u16, height as u16).unwrap();
    assert_eq!((u32::from(size.0), u32::from(size.1)), (width, height));
    decoder.decode().unwrap()
}

pub(crate) fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let sum: u64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    sum as f64 / a.len() as f64
}

/// Every layout an encoder writes: each chroma sampling, grey, restart markers.
fn layouts() -> Vec<(&'static str, Options)> {
    vec![
        ("4:2:0", PLAIN),
        (
            "4:2:2",
            Options {
                sampling: SamplingFactor::F_2_1,
                ..PLAIN
            },
        ),
        (
            "4:4:0",
            Options {
                sampling: SamplingFactor::F_1_2,
                ..PLAIN
            },
        ),
        (
            "4:4:4",
            Options {
                sampling: SamplingFactor::F_1_1,
                ..PLAIN
            },
        ),
        (
            "grey",
            Options {
                grey: true,
                ..PLAIN
            },
        ),
        (
            "restarts",
            Options {
                restart: 3,
                ..PLAIN
            },
        ),
        (
            "grey restarts",
            Options {
                grey: true,
                restart: 5,
                ..PLAIN
            },
        ),
    ]
}

#[test]
fn every_layout_an_encoder_writes_decodes_like_jpeg_decoder_at_every_scale() {
    let layouts = layouts();
    // Sides that are not multiples of a block or an MCU, and one that is; at
    // 12×8 and 2/8 the chroma is one row, the MCU's second is padding.
    for (width, height) in [(301, 203), (256, 128), (17, 9), (12, 8)] {
        for (name, options) in &layouts {
            let bytes = jpeg(width, height, options);
            for n in [1, 2, 4, 8] {
                let ours = decode(&bytes, n, Region::Whole, u64::MAX)
                    .unwrap_or_else(|| panic!("{name} {width}x{height} at {n}/8"));
                let (w, h) = (
                    scaled_side(u32::from(width), n),
                    scaled_side(u32::from(height), n),
                );
                assert_eq!((ours.width, ours.height), (w, h), "{name}");
                assert_eq!(ours.channels, if options.grey { 1 } else { 3 }, "{name}");
                let diff = mean_abs_diff(&ours.pixels, &reference(&bytes, w, h));
                // The same filters as jpeg-decoder; at 1/8 a block is its DC
                // term, which jpeg-decoder rounds down where we round; at full
                // size its IDCT is in integers, ours in floats.
                let bound = match n {
                    1 => 1.5,
                    8 => 0.5,
                    _ => 0.2,
                };
                assert!(
                    diff <= bound,
                    "{name} {width}x{height} at {n}/8: mean |Δ| {diff:.2}"
                );
            }
        }
    }
}

#[test]
fn a_flat_picture_keeps_its_level_at_every_scale() {
    let mut out = Vec::new();
    let grey = vec![77u8; 64 * 48];
    Encoder::new(&mut out, 95)
        .encode(&grey, 64, 48, ColorType::Luma)
        .unwrap();
    for n in [1, 2, 4, 8] {
        let picture = decode(&out, n, Region::Whole, u64::MAX).unwrap();
        assert!(picture.pixels.iter().all(|&p| p.abs_diff(77) <= 1), "{n}/8");
    }
}

#[test]
fn what_is_not_a_single_baseline_scan_is_left_to_the_general_decoders() {
    let progressive = jpeg(
        64,
        64,
        &Options {
            progressive: true,
            ..PLAIN
        },
    );
    assert!(decode(&progressive, 2, Region::Whole, u64::MAX).is_none());
    // jpeg-encoder writes one scan per component when it optimises its tables.
    let scan_per_component = jpeg(
        64,
        64,
        &Options {
            optimized: true,
            ..PLAIN
        },
    );
    assert!(decode(&scan_per_component, 2, Region::Whole, u64::MAX).is_none());

    let mut cmyk = Vec::new();
    Encoder::new(&mut cmyk, 90)
        .encode(&[0u8; 16 * 16 * 4], 16, 16, ColorType::Cmyk)
        .unwrap();
    assert!(decode(&cmyk, 2, Region::Whole, u64::MAX).is_none());

    // Component ids R, G, B: an RGB JPEG, not YCbCr.
    let mut rgb_ids = jpeg(32, 32, &PLAIN);
    let sof = rgb_ids.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    for (k, id) in b"RGB".iter().enumerate() {
        rgb_ids[sof + 10 + 3 * k] = *id;
    }
    let sos = rgb_ids.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
    for (k, id) in b"RGB".iter().enumerate() {
        rgb_ids[sos + 5 + 2 * k] = *id;
    }
    assert!(decode(&rgb_ids, 2, Region::Whole, u64::MAX).is_none());

    // Only 1/8, 2/8, 4/8 and 8/8.
    assert!(decode(&jpeg(32, 32, &PLAIN), 3, Region::Whole, u64::MAX).is_none());
}

#[test]
fn data_that_ends_before_the_last_block_is_refused_not_padded() {
    let whole = jpeg(96, 96, &PLAIN);
    assert!(decode(&whole, 2, Region::Whole, u64::MAX).is_some());
    let scan = whole.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
    let middle = scan + (whole.len() - scan) / 2;
    // Cut, with and without an end-of-image marker after the cut.
    assert!(decode(&whole[..middle], 2, Region::Whole, u64::MAX).is_none());
    assert!(
        decode(
            &[&whole[..middle], &[0xFF, 0xD9][..]].concat(),
            2,
            Region::Whole,
            u64::MAX
        )
        .is_none()
    );
    // Missing only its end-of-image marker: every block is there.
    assert!(decode(&whole[..whole.len() - 2], 2, Region::Whole, u64::MAX).is_some());
}

#[test]
fn no_cut_or_corrupted_byte_makes_it_panic() {
    // Called directly: no panic guard in between. Restart markers make the
    // scan as varied as it gets.
    let whole = jpeg(
        40,
        24,
        &Options {
            restart: 2,
            ..PLAIN
        },
    );
    for end in 0..whole.len() {
        let cut = &whole[..end];
        for n in [1, 2, 4, 8] {
            let _ = decode(cut, n, Region::Whole, u64::MAX);
            let _ = decode(cut, n, Region::CentreSquare, u64::MAX);
        }
    }
    for at in 0..whole.len() {
        for value in [0x00, 0x01, 0x0F, 0x7F, 0x80, 0xC4, 0xD0, 0xDA, 0xFE, 0xFF] {
            let mut corrupted = whole.clone();
            corrupted[at] = value;
            let _ = decode(&corrupted, 2, Region::Whole, u64::MAX);
            let _ = decode(&corrupted, 8, Region::CentreSquare, u64::MAX);
        }
    }
    // A Huffman table claiming more codes of a length than fit: three of
    // length 1 (the standard luma DC table has five of length 3; two stay, so
    // the symbols still add up).
    let mut overfull = whole.clone();
    let dht = overfull.windows(2).position(|w| w == [0xFF, 0xC4]).unwrap();
    assert_eq!(overfull[dht + 5..dht + 8], [0, 1, 5]);
    overfull[dht + 5] = 3;
    overfull[dht + 7] = 2;
    assert!(decode(&overfull, 2, Region::Whole, u64::MAX).is_none());
}

#[test]
fn thousands_of_random_mutations_never_make_it_panic() {
    let originals = [
        jpeg(
            40,
            24,
            &Options {
                restart: 2,
                ..PLAIN
            },
        ),
        jpeg(
            33,
            17,
            &Options {
                sampling: SamplingFactor::F_2_1,
                ..PLAIN
            },
        ),
        jpeg(
            24,
            24,
            &Options {
                grey: true,
                restart: 1,
                ..PLAIN
            },
        ),
    ];
    let mut next = xorshift(0x9E37_79B9_7F4A_7C15);
    for original in &originals {
        for _ in 0..2000 {
            let mut mutated = original.clone();
            for _ in 0..1 + next() % 4 {
                let at = (next() % mutated.len() as u64) as usize;
                match next() % 3 {
                    0 => mutated[at] = next() as u8,
                    1 => mutated[at] ^= 1 << (next() % 8),
                    _ => mutated.truncate(at.max(2)),
                }
            }
            for (n, region) in [1, 2, 4, 8]
                .into_iter()
                .zip([Region::Whole, Region::CentreSquare].into_iter().cycle())
            {
                if let Some(picture) = decode(&mutated, n, region, u64::MAX) {
                    let channels = usize::from(picture.channels);
                    assert_eq!(
                        picture.pixels.len(),
                        picture.width as usize * picture.height as usize * channels
                    );
                }
            }
        }
    }
}

#[test]
fn a_picture_above_the_pixel_limit_is_not_decoded() {
    let bytes = jpeg(64, 48, &PLAIN);
    assert!(decode(&bytes, 2, Region::Whole, 64 * 48).is_some());
    assert!(decode(&bytes, 2, Region::Whole, 64 * 48 - 1).is_none());
}

#[test]
fn the_centre_square_is_the_whole_picture_cropped_byte_for_byte() {
    let layouts = layouts();
    // Wide and tall, by more than the MCUs kept around the square each side,
    // by less, and square; odd sides whose centre falls between samples.
    for (width, height) in [
        (301, 203),
        (203, 301),
        (67, 50),
        (50, 67),
        (96, 96),
        (129, 37),
    ] {
        for (name, options) in &layouts {
            let bytes = jpeg(width, height, options);
            for n in [1, 2, 4, 8] {
                let whole = decode(&bytes, n, Region::Whole, u64::MAX).unwrap();
                let square = decode(&bytes, n, Region::CentreSquare, u64::MAX).unwrap();
                let side = whole.width.min(whole.height);
                assert_eq!((square.width, square.height), (side, side), "{name}");
                let channels = usize::from(whole.channels);
                let (left, top) = (
                    (whole.width - side) as usize / 2,
                    (whole.height - side) as usize / 2,
                );
                let row = whole.width as usize * channels;
                let expected: Vec<u8> = whole
                    .pixels
                    .chunks_exact(row)
                    .skip(top)
                    .take(side as usize)
                    .flat_map(|r| &r[left * channels..(left + side as usize) * channels])
                    .copied()
                    .collect();
                assert!(
                    square.pixels == expected,
                    "{name} {width}x{height} at {n}/8: the square differs from the crop"
                );
            }
        }
    }
}

#[test]
fn the_8x8_transform_is_the_inverse_dct_within_a_level() {
    let quant: [i32; 64] = std::array::from_fn(|i| 1 + (i as i32 * 7) % 23);
    let scaled = idct8_scaled_quant(&quant);
    let mut next = xorshift(0x0DDB_1A5E_5BAD_5EED);
    for round in 0..200 {
        // Sparse and dense blocks, small and large values.
        let coefficients: [i32; 64] = std::array::from_fn(|i| {
            let r = next();
            if i > 0 && r % 4 < round % 4 {
                0
            } else {
                (r >> 8) as i32 % if i == 0 { 1024 } else { 90 } / quant[i].max(1)
            }
        });
        let mut plane = Plane {
            width: 8,
            pixels: vec![0; 64],
            columns: 8,
            rows: 8,
        };
        // Stored transposed, as the scan stores them for this transform.
        let stored: [i32; 64] = std::array::from_fn(|i| coefficients[8 * (i % 8) + i / 8]);
        idct8(&stored, &scaled, &mut plane, 0, 0);
        let c = |k: usize| {
            if k == 0 {
                std::f64::consts::FRAC_1_SQRT_2
            } else {
                1.0
            }
        };
        for y in 0..8 {
            for x in 0..8 {
                let mut sum = 0.0;
                for v in 0..8 {
                    for u in 0..8 {
                        let f = f64::from(coefficients[8 * v + u] * quant[8 * v + u]);
                        sum += c(u)
                            * c(v)
                            * f
                            * ((2 * x + 1) as f64 * u as f64 * std::f64::consts::PI / 16.0).cos()
                            * ((2 * y + 1) as f64 * v as f64 * std::f64::consts::PI / 16.0).cos();
                    }
                }
                let exact = (sum / 4.0 + 128.0).round().clamp(0.0, 255.0);
                let ours = f64::from(plane.pixels[8 * y + x]);
                assert!(
                    (ours - exact).abs() <= 1.0,
                    "({x}, {y}): {ours} vs {exact} for {coefficients:?}"
                );
            }
        }
    }
}

#[test]
fn a_coefficient_no_8_bit_picture_can_have_is_left_to_the_general_decoders_at_full_size() {
    let mut bytes = jpeg(64, 48, &PLAIN);
    assert!(decode(&bytes, 8, Region::CentreSquare, u64::MAX).is_some());
    // Every quantisation step 255: the coded coefficients now dequantise to
    // far more than the transform of 8-bit samples ever reaches.
    let dqt = bytes.windows(2).position(|w| w == [0xFF, 0xDB]).unwrap();
    let len = usize::from(u16::from_be_bytes([bytes[dqt + 2], bytes[dqt + 3]]));
    for table in bytes[dqt + 4..dqt + 2 + len].chunks_exact_mut(65) {
        table[1..].fill(255);
    }
    assert!(decode(&bytes, 8, Region::CentreSquare, u64::MAX).is_none());
    // The reduced sizes' exact integer transforms are not concerned.
    assert!(decode(&bytes, 4, Region::CentreSquare, u64::MAX).is_some());
}

#[test]
fn planes_handed_over_repeat_each_rows_last_sample_over_the_padding() {
    // 1008 columns, the last 7 black; the frame header then says 1001, so
    // what the encoder coded past the picture's edge is black, not the edge.
    let (coded, width, height) = (1008u16, 1001u16, 40u16);
    let rgb = RgbImage::from_fn(coded.into(), height.into(), |x, y| {
        if x >= width.into() {
            Rgb([0, 0, 0])
        } else {
            Rgb([200, (x % 256) as u8, (y * 6) as u8])
        }
    });
    let mut bytes = Vec::new();
    let mut encoder = Encoder::new(&mut bytes, 90);
    encoder.set_sampling_factor(SamplingFactor::F_2_2);
    encoder
        .encode(rgb.as_raw(), coded, height, ColorType::Rgb)
        .unwrap();
    let sof = bytes.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    bytes[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());

    let Some(Decoded::YCbCr(ycbcr)) = decode_planes(&bytes, 8, Region::Whole, u64::MAX) else {
        panic!("not decoded to planes");
    };
    assert!(ycbcr.is_420());
    assert_eq!(ycbcr.region(), (0, 0, 1001, 40));
    let sizes = [(1001, 1008, 40), (501, 504, 20), (501, 504, 20)];
    for (plane, (columns, width, rows)) in ycbcr.into_planes().iter().zip(sizes) {
        assert_eq!((plane.width, plane.rows), (width, rows));
        assert_eq!(plane.pixels.len(), width * rows);
        for row in plane.pixels.chunks_exact(plane.width) {
            let last = row[columns - 1];
            assert!(row[columns..].iter().all(|&s| s == last), "{row:?}");
        }
    }
}
