//! Deterministic benchmark pictures, shared by the criterion benches and the
//! `bench_inputs` example (which writes them to disk for `bench/run.sh`).
//!
//! The content is photo-like on purpose: smooth gradients, rings and edges
//! (low and high frequencies) plus fine grain, so the JPEG entropy data and the
//! PNG filter/deflate work resemble a phone photo rather than a flat test card.
//! Integer arithmetic only: the same bytes on every machine.

#![allow(dead_code)]

/// One picture to benchmark.
pub struct Input {
    /// File name `bench/run.sh` uses (`photo-1080p.jpg`, …).
    pub name: &'static str,
    pub width: u32,
    pub height: u32,
    pub bytes: Vec<u8>,
}

/// 1920×1080 JPEG, quality 90, 4:2:0 (what a phone or a screenshot tool writes).
pub fn jpeg_1080p() -> Input {
    jpeg("photo-1080p.jpg", 1920, 1080)
}

/// 4000×3000 (12 MP) JPEG, quality 90, 4:2:0: a phone camera picture.
pub fn jpeg_12mp() -> Input {
    jpeg("photo-12mp.jpg", 4000, 3000)
}

/// 2048×2048 RGBA PNG whose corners fade to transparent.
pub fn png_alpha_2048() -> Input {
    let (w, h) = (2048, 2048);
    let rgba = pixels(w, h, true);
    let mut bytes = Vec::new();
    {
        use image::ImageEncoder;
        image::codecs::png::PngEncoder::new(&mut bytes)
            .write_image(&rgba, w, h, image::ExtendedColorType::Rgba8)
            .expect("encode PNG");
    }
    Input {
        name: "alpha-2048.png",
        width: w,
        height: h,
        bytes,
    }
}

pub fn all() -> Vec<Input> {
    vec![jpeg_1080p(), jpeg_12mp(), png_alpha_2048()]
}

fn jpeg(name: &'static str, w: u32, h: u32) -> Input {
    let rgb = pixels(w, h, false);
    let mut bytes = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut bytes, 90);
    encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
    encoder
        .encode(&rgb, w as u16, h as u16, jpeg_encoder::ColorType::Rgb)
        .expect("encode JPEG");
    Input {
        name,
        width: w,
        height: h,
        bytes,
    }
}

/// Raw RGB (or RGBA) pixels, row-major.
pub fn pixels(w: u32, h: u32, alpha: bool) -> Vec<u8> {
    let channels = if alpha { 4 } else { 3 };
    let mut out = Vec::with_capacity((w * h) as usize * channels);
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let (cx, cy) = (i64::from(w) / 2, i64::from(h) / 2);
    let r_max = cx * cx + cy * cy;
    for y in 0..i64::from(h) {
        for x in 0..i64::from(w) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let grain = (state & 0x1F) as i64 - 16;
            let (dx, dy) = (x - cx, y - cy);
            let d2 = dx * dx + dy * dy;
            // Rings whose spacing shrinks outwards; a few hard-edged bands.
            let ring = ((d2 / 900) % 64) * 2;
            let band = if (x / 97 + y / 131) % 5 == 0 { 60 } else { 0 };
            let r = x * 200 / i64::from(w) + ring / 2 + grain;
            let g = y * 180 / i64::from(h) + 40 + band + grain / 2;
            let b = 220 - (x + y) * 160 / i64::from(w + h) + ring / 3 - band / 2 + grain;
            out.push(r.clamp(0, 255) as u8);
            out.push(g.clamp(0, 255) as u8);
            out.push(b.clamp(0, 255) as u8);
            if alpha {
                // Opaque centre, transparent corners, a soft edge between.
                let a = 255 - (d2 * 400 / r_max - 100).clamp(0, 255);
                out.push(a as u8);
            }
        }
    }
    out
}
