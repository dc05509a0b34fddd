//! GitHub-style default avatars: a horizontally symmetric 5×5 grid of cells in
//! one colour on a light background, both derived from SHA-256 of the seed.

use image::{Rgb, RgbImage};
use sha2::{Digest, Sha256};

/// Cells per side.
const GRID: u32 = 5;
/// Pixel size of one cell.
const CELL: u32 = 112;
/// Margin around the grid; 2·40 + 5·112 = 640 = the `0` size, so the big
/// variant is the drawing itself, unscaled.
const MARGIN: u32 = 40;
/// Side of the drawn picture.
pub(crate) const SIDE: u32 = 2 * MARGIN + GRID * CELL;
const BACKGROUND: Rgb<u8> = Rgb([240, 240, 240]);

/// Draw the identicon for `seed` (pure function of the seed).
pub(crate) fn draw(seed: &str) -> RgbImage {
    let hash = Sha256::digest(seed.as_bytes());

    // 15 bits decide the left three columns; columns 3 and 4 mirror 1 and 0.
    let bits = u32::from(hash[0]) | (u32::from(hash[1]) << 8) | (u32::from(hash[2]) << 16);
    let mut filled = [[false; GRID as usize]; GRID as usize];
    for (row, cells) in filled.iter_mut().enumerate() {
        for col in 0..3usize {
            let on = bits >> (row * 3 + col) & 1 == 1;
            cells[col] = on;
            cells[GRID as usize - 1 - col] = on;
        }
    }
    // Never draw an empty grid.
    if filled.iter().flatten().all(|on| !on) {
        filled[2][2] = true;
    }

    // Hue from 12 bits, saturation 45–64 %, lightness 45–59 %.
    let hue = f64::from(u16::from_be_bytes([hash[3], hash[4]]) & 0x0FFF) / 4096.0 * 360.0;
    let sat = 0.45 + f64::from(hash[5] % 20) / 100.0;
    let light = 0.45 + f64::from(hash[6] % 15) / 100.0;
    let foreground = Rgb(hsl_to_rgb(hue, sat, light));

    RgbImage::from_fn(SIDE, SIDE, |x, y| {
        let inside = |v: u32| (MARGIN..MARGIN + GRID * CELL).contains(&v);
        if inside(x) && inside(y) {
            let col = ((x - MARGIN) / CELL) as usize;
            let row = ((y - MARGIN) / CELL) as usize;
            if filled[row][col] {
                return foreground;
            }
        }
        BACKGROUND
    })
}

fn hsl_to_rgb(hue: f64, sat: f64, light: f64) -> [u8; 3] {
    let c = (1.0 - (2.0 * light - 1.0).abs()) * sat;
    let h = hue / 60.0;
    let x = c * (1.0 - (h % 2.0 - 1.0).abs());
    let (r, g, b) = match h as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = light - c / 2.0;
    let to_u8 = |v: f64| ((v + m) * 255.0).round().clamp(0.0, 255.0) as u8;
    [to_u8(r), to_u8(g), to_u8(b)]
}
