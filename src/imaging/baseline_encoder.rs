//! Our baseline JPEG encoder for the avatar variants: RGB in, 4:2:0 chroma
//! (box-averaged with libjpeg's alternating rounding), or the three planes of
//! a picture already in 4:2:0 YCbCr; the Annex K tables scaled to a quality
//! as libjpeg scales them, the Annex K Huffman tables, a JFIF header. The transform is libjpeg's float AAN forward DCT, computed
//! eight columns at a time and rounded to nearest.
//!
//! Why not `jpeg-encoder`: encoding the 640 square was a fifth of an update's
//! CPU (its chroma averaging and block writer are per sample); this is about
//! three times faster. It only ever sees pixels the pipeline made, never a
//! client's bytes, and plain float arithmetic in a fixed order makes the output
//! byte-for-byte the same on every machine.

use super::reduced_jpeg::{TRANSPOSED_ZIGZAG, ZIGZAG};

/// Encodes `pixels` (`width`×`height`, RGB, row-major) at `quality` (1..=100).
/// `None` only when the sizes do not fit a JPEG or do not match `pixels`.
pub(crate) fn encode_rgb(pixels: &[u8], width: u32, height: u32, quality: u8) -> Option<Vec<u8>> {
    let (w, h) = (usize::try_from(width).ok()?, usize::try_from(height).ok()?);
    if pixels.len() != w.checked_mul(h)?.checked_mul(3)? {
        return None;
    }
    // Full-size chroma of one MCU row, averaged into `cb`/`cr` after.
    let (mut cb_rows, mut cr_rows) = (Vec::new(), Vec::new());
    encode(width, height, quality, |mcu_y, padded, rows| {
        cb_rows.resize(16 * padded, 0);
        cr_rows.resize(16 * padded, 0);
        for row in 0..16 {
            // The bottom edge repeats the last row, as libjpeg pads it.
            let y = (mcu_y * 16 + row).min(h - 1);
            let at = row * padded..(row + 1) * padded;
            to_ycbcr(
                &pixels[y * w * 3..(y + 1) * w * 3],
                &mut rows.y[at.clone()],
                &mut cb_rows[at.clone()],
                &mut cr_rows[at],
            );
        }
        downsample(&cb_rows, padded, rows.cb);
        downsample(&cr_rows, padded, rows.cr);
    })
}

/// Encodes a picture already in YCbCr: `y` `width`×`height`, `cb` and `cr`
/// half of each side (rounded up), row-major, as [`encode_rgb`] would have
/// made them of an RGB picture. `None` only when the sizes do not fit a
/// JPEG or do not match the planes.
pub(crate) fn encode_ycbcr420(
    [y, cb, cr]: [&[u8]; 3],
    width: u32,
    height: u32,
    quality: u8,
) -> Option<Vec<u8>> {
    let (w, h) = (usize::try_from(width).ok()?, usize::try_from(height).ok()?);
    let (half_w, half_h) = (w.div_ceil(2), h.div_ceil(2));
    if y.len() != w.checked_mul(h)? || [cb.len(), cr.len()] != [half_w * half_h; 2] {
        return None;
    }
    // Rows and columns past the picture repeat its last ones, as libjpeg pads.
    let copy_padded = |plane: &[u8], plane_w: usize, plane_h: usize, y: usize, out: &mut [u8]| {
        let source = &plane[y.min(plane_h - 1) * plane_w..][..plane_w];
        out[..plane_w].copy_from_slice(source);
        out[plane_w..].fill(source[plane_w - 1]);
    };
    encode(width, height, quality, |mcu_y, padded, rows| {
        for (row, out) in rows.y.chunks_exact_mut(padded).enumerate() {
            copy_padded(y, w, h, mcu_y * 16 + row, out);
        }
        for (row, (cb_out, cr_out)) in rows
            .cb
            .chunks_exact_mut(padded / 2)
            .zip(rows.cr.chunks_exact_mut(padded / 2))
            .enumerate()
        {
            copy_padded(cb, half_w, half_h, mcu_y * 8 + row, cb_out);
            copy_padded(cr, half_w, half_h, mcu_y * 8 + row, cr_out);
        }
    })
}

/// One MCU row of samples to encode: 16 rows of luma, 8 of each chroma,
/// every row padded to whole MCUs.
struct McuRows<'a> {
    y: &'a mut [u8],
    cb: &'a mut [u8],
    cr: &'a mut [u8],
}

/// The encoder proper: `fill(mcu_y, padded width, rows)` writes MCU row
/// `mcu_y`'s samples, each row `padded` luma samples wide.
fn encode(
    width: u32,
    height: u32,
    quality: u8,
    mut fill: impl FnMut(usize, usize, McuRows<'_>),
) -> Option<Vec<u8>> {
    let (w16, h16) = (u16::try_from(width).ok()?, u16::try_from(height).ok()?);
    let (width, height) = (usize::from(w16), usize::from(h16));
    if width == 0 || height == 0 {
        return None;
    }
    let luma = Quantiser::new(&LUMA_QUANT, quality);
    let chroma = Quantiser::new(&CHROMA_QUANT, quality);
    let tables = [
        HuffmanCodes::new(&LUMA_DC),
        HuffmanCodes::new(&LUMA_AC),
        HuffmanCodes::new(&CHROMA_DC),
        HuffmanCodes::new(&CHROMA_AC),
    ];
    let mut out = Vec::with_capacity(width * height / 3 + 1024);
    write_headers(&mut out, w16, h16, &luma, &chroma);

    let mcus_x = width.div_ceil(16);
    let padded = mcus_x * 16;
    let mut y_rows = vec![0u8; 16 * padded];
    let mut cb_half = vec![0u8; 8 * padded / 2];
    let mut cr_half = vec![0u8; 8 * padded / 2];
    let mut bits = BitWriter::new(out);
    let mut predictors = [0i32; 3];
    let mut block = [[0f32; 8]; 8];
    let mut coefficients = [0i32; 64];
    for mcu_y in 0..height.div_ceil(16) {
        let rows = McuRows {
            y: &mut y_rows,
            cb: &mut cb_half,
            cr: &mut cr_half,
        };
        fill(mcu_y, padded, rows);
        for mcu_x in 0..mcus_x {
            for (bx, by) in [(0, 0), (8, 0), (0, 8), (8, 8)] {
                load(&y_rows, padded, mcu_x * 16 + bx, by, &mut block);
                luma.transform(&block, &mut coefficients);
                bits.block(&coefficients, &mut predictors[0], &tables[0], &tables[1]);
            }
            for (plane, predictor) in [(&cb_half, 1), (&cr_half, 2)] {
                load(plane, padded / 2, mcu_x * 8, 0, &mut block);
                chroma.transform(&block, &mut coefficients);
                bits.block(
                    &coefficients,
                    &mut predictors[predictor],
                    &tables[2],
                    &tables[3],
                );
            }
        }
    }
    let mut out = bits.finish();
    out.extend_from_slice(&[0xFF, 0xD9]);
    Some(out)
}

/// libjpeg's RGB → YCbCr (jccolor.c), 16-bit fixed point, for one row; the
/// outputs are longer than the row and get its last pixel repeated.
fn to_ycbcr(rgb: &[u8], y: &mut [u8], cb: &mut [u8], cr: &mut [u8]) {
    let columns = rgb.len() / 3;
    // Eight pixels at a time, split into channels first: unsigned products of
    // 16-bit numbers are what SSE2 multiplies on vectors.
    let mut at = 0;
    for px in rgb.chunks_exact(24) {
        let channel = |c: usize| -> [u16; 8] { std::array::from_fn(|i| u16::from(px[3 * i + c])) };
        let (r, g, b) = (channel(0), channel(1), channel(2));
        let (y, cb, cr) = (&mut y[at..at + 8], &mut cb[at..at + 8], &mut cr[at..at + 8]);
        for i in 0..8 {
            [y[i], cb[i], cr[i]] = ycbcr(r[i], g[i], b[i]);
        }
        at += 8;
    }
    for (i, px) in rgb.chunks_exact(3).enumerate().skip(at) {
        [y[i], cb[i], cr[i]] = ycbcr(px[0].into(), px[1].into(), px[2].into());
    }
    for plane in [y, cb, cr] {
        let last = plane[columns - 1];
        plane[columns..].fill(last);
    }
}

/// One pixel: the weights are libjpeg's FIX(0.299) and so on; every
/// intermediate stays positive (Cb and Cr carry their offset of 128 first).
#[inline]
fn ycbcr(r: u16, g: u16, b: u16) -> [u8; 3] {
    const HALF: u32 = 1 << 15;
    const OFFSET: u32 = 128 << 16;
    let (r, g, b) = (u32::from(r), u32::from(g), u32::from(b));
    [
        ((19595 * r + 38470 * g + 7471 * b + HALF) >> 16) as u8,
        ((32768 * b + OFFSET + HALF - 1 - 11059 * r - 21709 * g) >> 16) as u8,
        ((32768 * r + OFFSET + HALF - 1 - 27439 * g - 5329 * b) >> 16) as u8,
    ]
}

/// 2×2 box average of 16 rows into 8, rounding up on odd columns and down on
/// even ones (libjpeg's `h2v2_downsample`), so no bias builds up.
fn downsample(full: &[u8], width: usize, half: &mut [u8]) {
    let half_width = width / 2;
    for row in 0..8 {
        let top = &full[2 * row * width..(2 * row + 1) * width];
        let bottom = &full[(2 * row + 1) * width..(2 * row + 2) * width];
        let out = &mut half[row * half_width..(row + 1) * half_width];
        for (x, sample) in out.iter_mut().enumerate() {
            let sum = u16::from(top[2 * x])
                + u16::from(top[2 * x + 1])
                + u16::from(bottom[2 * x])
                + u16::from(bottom[2 * x + 1]);
            *sample = ((sum + 1 + (x as u16 & 1)) >> 2) as u8;
        }
    }
}

/// The 8×8 block at (`x`, `y`) of a plane `width` samples wide, centred on 0.
fn load(plane: &[u8], width: usize, x: usize, y: usize, block: &mut [[f32; 8]; 8]) {
    for (r, row) in block.iter_mut().enumerate() {
        let samples = &plane[(y + r) * width + x..(y + r) * width + x + 8];
        for (value, &sample) in row.iter_mut().zip(samples) {
            *value = f32::from(sample) - 128.0;
        }
    }
}

type Lanes = [f32; 8];

/// The 8-point forward DCT of Arai, Agui and Nakajima as libjpeg's jfdctflt.c
/// computes it (outputs scaled by 8·s(k), undone by the quantiser), on eight
/// independent lanes: `x[k]` is the k-th sample of every lane. One loop over
/// the lanes, which the compiler turns into vector instructions.
#[inline(always)]
fn fdct8(x: &[Lanes; 8]) -> [Lanes; 8] {
    let mut out = [[0f32; 8]; 8];
    for i in 0..8 {
        let tmp0 = x[0][i] + x[7][i];
        let tmp7 = x[0][i] - x[7][i];
        let tmp1 = x[1][i] + x[6][i];
        let tmp6 = x[1][i] - x[6][i];
        let tmp2 = x[2][i] + x[5][i];
        let tmp5 = x[2][i] - x[5][i];
        let tmp3 = x[3][i] + x[4][i];
        let tmp4 = x[3][i] - x[4][i];
        // Even part.
        let tmp10 = tmp0 + tmp3;
        let tmp13 = tmp0 - tmp3;
        let tmp11 = tmp1 + tmp2;
        let tmp12 = tmp1 - tmp2;
        out[0][i] = tmp10 + tmp11;
        out[4][i] = tmp10 - tmp11;
        let z1 = (tmp12 + tmp13) * 0.707_106_77; // cos(π/4)
        out[2][i] = tmp13 + z1;
        out[6][i] = tmp13 - z1;
        // Odd part.
        let tmp10 = tmp4 + tmp5;
        let tmp11 = tmp5 + tmp6;
        let tmp12 = tmp6 + tmp7;
        let z5 = (tmp10 - tmp12) * 0.382_683_43; // cos(3π/8)
        let z2 = 0.541_196_1 * tmp10 + z5; // cos(π/8) − cos(3π/8)
        let z4 = 1.306_563 * tmp12 + z5; // cos(π/8) + cos(3π/8)
        let z3 = tmp11 * 0.707_106_77;
        let z11 = tmp7 + z3;
        let z13 = tmp7 - z3;
        out[5][i] = z13 + z2;
        out[3][i] = z13 - z2;
        out[1][i] = z11 + z4;
        out[7][i] = z11 - z4;
    }
    out
}

fn transposed(block: &[Lanes; 8]) -> [Lanes; 8] {
    let mut out = [[0f32; 8]; 8];
    for (c, lanes) in block.iter().enumerate() {
        for (row, &value) in out.iter_mut().zip(lanes) {
            row[c] = value;
        }
    }
    out
}

const ROUNDER: f32 = 12_582_912.0;

/// One quantisation table at one quality: what goes in the file and the
/// multipliers that turn [`fdct8`]'s output into quantised coefficients.
struct Quantiser {
    /// The table in zig-zag order, as the DQT segment holds it.
    zigzag: [u8; 64],
    /// 1 / (q · 8 · s(u) · s(v)), in the transform's output order (transposed).
    multipliers: [Lanes; 8],
}

impl Quantiser {
    /// The base table scaled as libjpeg's `jpeg_quality_scaling` and
    /// `jpeg_add_quant_table` (baseline: 1..=255).
    fn new(base: &[u16; 64], quality: u8) -> Quantiser {
        let quality = u32::from(quality.clamp(1, 100));
        let scale = if quality < 50 {
            5000 / quality
        } else {
            200 - 2 * quality
        };
        let table = base.map(|q| ((u32::from(q) * scale + 50) / 100).clamp(1, 255) as u8);
        const AAN_SCALE: [f64; 8] = [
            1.0,
            1.387_039_845,
            1.306_562_965,
            1.175_875_602,
            1.0,
            0.785_694_958,
            0.541_196_100,
            0.275_899_379,
        ];
        let mut multipliers = [[0f32; 8]; 8];
        for (u, lanes) in multipliers.iter_mut().enumerate() {
            for (v, m) in lanes.iter_mut().enumerate() {
                // Output (u, v) is horizontal frequency u, vertical v: natural
                // index v·8 + u.
                let q = f64::from(table[v * 8 + u]);
                *m = (1.0 / (q * AAN_SCALE[v] * AAN_SCALE[u] * 8.0)) as f32;
            }
        }
        Quantiser {
            zigzag: ZIGZAG.map(|natural| table[usize::from(natural)]),
            multipliers,
        }
    }

    /// The block's quantised coefficients, in zig-zag order.
    fn transform(&self, block: &[Lanes; 8], coefficients: &mut [i32; 64]) {
        // Columns first (each row of `block` is one sample of eight columns),
        // then rows: the result is transposed, as the multipliers are.
        let block = fdct8(&transposed(&fdct8(block)));
        let mut quantised = [0i32; 64];
        for (u, (lanes, multipliers)) in block.iter().zip(&self.multipliers).enumerate() {
            for v in 0..8 {
                // 8-bit samples keep every coefficient within ±1024 even at
                // divisor 1: sizes the baseline Huffman tables code.
                let scaled = lanes[v] * multipliers[v];
                // Rounded to nearest (halves to even) by adding 1.5·2²³, whose
                // ulp is 1: a few vector instructions, where `as i32` is not.
                quantised[u * 8 + v] =
                    (scaled + ROUNDER).to_bits() as i32 - ROUNDER.to_bits() as i32;
            }
        }
        for (k, &transposed) in TRANSPOSED_ZIGZAG.iter().enumerate() {
            coefficients[k] = quantised[usize::from(transposed)];
        }
    }
}

/// A Huffman table's codes by symbol: `code << 8 | length`, 0 for none.
struct HuffmanCodes([u32; 256]);

impl HuffmanCodes {
    /// Codes assigned in order of length, as T.81 Annex C does.
    fn new(table: &HuffmanSpec) -> HuffmanCodes {
        let mut codes = [0u32; 256];
        let (mut code, mut k) = (0u32, 0usize);
        for (length, &count) in (1u32..).zip(table.counts.iter()) {
            for _ in 0..count {
                codes[usize::from(table.symbols[k])] = code << 8 | length;
                code += 1;
                k += 1;
            }
            code <<= 1;
        }
        HuffmanCodes(codes)
    }

    #[inline]
    fn get(&self, symbol: u32) -> (u32, u32) {
        let entry = self.0[symbol as usize];
        (entry >> 8, entry & 0xFF)
    }
}

/// Entropy-coded data, MSB first, `FF` bytes stuffed with `00`.
struct BitWriter {
    out: Vec<u8>,
    /// Pending bits, the newest lowest; only the low `count` are meaningful.
    buffer: u64,
    count: u32,
}

impl BitWriter {
    fn new(out: Vec<u8>) -> BitWriter {
        BitWriter {
            out,
            buffer: 0,
            count: 0,
        }
    }

    /// Appends the low `length` (≤ 32) bits of `bits`.
    #[inline]
    fn put(&mut self, bits: u32, length: u32) {
        self.buffer = self.buffer << length | u64::from(bits);
        self.count += length;
        if self.count >= 32 {
            self.count -= 32;
            let word = (self.buffer >> self.count) as u32;
            // No FF byte among the four: all of them at once.
            if (!word).wrapping_sub(0x0101_0101) & word & 0x8080_8080 == 0 {
                self.out.extend_from_slice(&word.to_be_bytes());
            } else {
                for byte in word.to_be_bytes() {
                    self.out.push(byte);
                    if byte == 0xFF {
                        self.out.push(0);
                    }
                }
            }
        }
    }

    /// One block: the DC difference, then each nonzero AC coefficient after
    /// its run of zeros, then end-of-block unless the last one was nonzero.
    #[inline]
    fn block(
        &mut self,
        coefficients: &[i32; 64],
        predictor: &mut i32,
        dc: &HuffmanCodes,
        ac: &HuffmanCodes,
    ) {
        let difference = coefficients[0] - *predictor;
        *predictor = coefficients[0];
        let (size, value) = magnitude(difference);
        let (code, length) = dc.get(size);
        self.put(code << size | value, length + size);

        // Which coefficients are nonzero, one bit each (the DC's left out):
        // eight 0/1 bytes gather into one by a multiplication whose partial
        // products never overlap.
        let flags = coefficients.map(|c| u8::from(c != 0));
        let mut nonzero = 0u64;
        for (i, eight) in flags.chunks_exact(8).enumerate() {
            let word = u64::from_le_bytes(eight.try_into().unwrap_or_default());
            nonzero |= (word.wrapping_mul(0x0102_0408_1020_4080) >> 56) << (8 * i);
        }
        nonzero &= !1;
        let mut last = 0u32;
        while nonzero != 0 {
            let k = nonzero.trailing_zeros();
            nonzero &= nonzero - 1;
            let mut run = k - last - 1;
            while run > 15 {
                let (code, length) = ac.get(0xF0);
                self.put(code, length);
                run -= 16;
            }
            let (size, value) = magnitude(coefficients[k as usize]);
            let (code, length) = ac.get(run << 4 | size);
            self.put(code << size | value, length + size);
            last = k;
        }
        if last != 63 {
            let (code, length) = ac.get(0x00);
            self.put(code, length);
        }
    }

    /// The last bits, padded with ones to a whole byte as libjpeg pads them.
    fn finish(mut self) -> Vec<u8> {
        let pad = (8 - self.count % 8) % 8;
        self.buffer = self.buffer << pad | ((1 << pad) - 1);
        self.count += pad;
        while self.count >= 8 {
            self.count -= 8;
            let byte = (self.buffer >> self.count) as u8;
            self.out.push(byte);
            if byte == 0xFF {
                self.out.push(0);
            }
        }
        self.out
    }
}

/// A coefficient's size category and the bits that code it (T.81 F.1.2.1):
/// negative values as their one's complement in `size` bits.
#[inline]
fn magnitude(value: i32) -> (u32, u32) {
    let size = 32 - value.unsigned_abs().leading_zeros();
    let bits = if value < 0 { value - 1 } else { value } as u32;
    (size, bits & ((1u32 << size) - 1))
}

fn write_headers(out: &mut Vec<u8>, width: u16, height: u16, luma: &Quantiser, chroma: &Quantiser) {
    out.extend_from_slice(&[0xFF, 0xD8]);
    // JFIF 1.01, no units, 1:1 pixels, no thumbnail.
    out.extend_from_slice(&[
        0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0,
    ]);
    out.extend_from_slice(&[0xFF, 0xDB, 0, 132, 0]);
    out.extend_from_slice(&luma.zigzag);
    out.push(1);
    out.extend_from_slice(&chroma.zigzag);
    // SOF0: 8-bit samples, luma 2×2 with table 0, chroma 1×1 with table 1.
    out.extend_from_slice(&[0xFF, 0xC0, 0, 17, 8]);
    out.extend_from_slice(&height.to_be_bytes());
    out.extend_from_slice(&width.to_be_bytes());
    out.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
    for (class_id, table) in [
        (0x00, &LUMA_DC),
        (0x10, &LUMA_AC),
        (0x01, &CHROMA_DC),
        (0x11, &CHROMA_AC),
    ] {
        let length = 2 + 1 + 16 + table.symbols.len();
        out.extend_from_slice(&[0xFF, 0xC4]);
        out.extend_from_slice(&(length as u16).to_be_bytes());
        out.push(class_id);
        out.extend_from_slice(&table.counts);
        out.extend_from_slice(table.symbols);
    }
    // One interleaved scan: luma with tables 0, chroma with tables 1.
    out.extend_from_slice(&[0xFF, 0xDA, 0, 12, 3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0]);
}

/// T.81 Annex K.1: the example luminance and chrominance tables, row-major.
const LUMA_QUANT: [u16; 64] = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113,
    92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
];
const CHROMA_QUANT: [u16; 64] = {
    let mut table = [99u16; 64];
    let top_left = [
        [17, 18, 24, 47],
        [18, 21, 26, 66],
        [24, 26, 56, 99],
        [47, 66, 99, 99],
    ];
    let mut i = 0;
    while i < 16 {
        table[(i / 4) * 8 + i % 4] = top_left[i / 4][i % 4];
        i += 1;
    }
    table
};

/// A Huffman table as DHT holds it: codes per length 1..=16, symbols in order.
struct HuffmanSpec {
    counts: [u8; 16],
    symbols: &'static [u8],
}

/// T.81 Annex K.3: the example tables every baseline decoder knows.
const LUMA_DC: HuffmanSpec = HuffmanSpec {
    counts: [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0],
    symbols: &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
};
const CHROMA_DC: HuffmanSpec = HuffmanSpec {
    counts: [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0],
    symbols: &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
};
const LUMA_AC: HuffmanSpec = HuffmanSpec {
    counts: [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7D],
    symbols: &[
        0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61,
        0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xA1, 0x08, 0x23, 0x42, 0xB1, 0xC1, 0x15, 0x52,
        0xD1, 0xF0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0A, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x25,
        0x26, 0x27, 0x28, 0x29, 0x2A, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x43, 0x44, 0x45,
        0x46, 0x47, 0x48, 0x49, 0x4A, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5A, 0x63, 0x64,
        0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A, 0x83,
        0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
        0x9A, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6,
        0xB7, 0xB8, 0xB9, 0xBA, 0xC2, 0xC3, 0xC4, 0xC5, 0xC6, 0xC7, 0xC8, 0xC9, 0xCA, 0xD2, 0xD3,
        0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xD9, 0xDA, 0xE1, 0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7, 0xE8,
        0xE9, 0xEA, 0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8, 0xF9, 0xFA,
    ],
};
const CHROMA_AC: HuffmanSpec = HuffmanSpec {
    counts: [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77],
    symbols: &[
        0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61,
        0x71, 0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xA1, 0xB1, 0xC1, 0x09, 0x23, 0x33,
        0x52, 0xF0, 0x15, 0x62, 0x72, 0xD1, 0x0A, 0x16, 0x24, 0x34, 0xE1, 0x25, 0xF1, 0x17, 0x18,
        0x19, 0x1A, 0x26, 0x27, 0x28, 0x29, 0x2A, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x43, 0x44,
        0x45, 0x46, 0x47, 0x48, 0x49, 0x4A, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5A, 0x63,
        0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A,
        0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97,
        0x98, 0x99, 0x9A, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xB2, 0xB3, 0xB4,
        0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA, 0xC2, 0xC3, 0xC4, 0xC5, 0xC6, 0xC7, 0xC8, 0xC9, 0xCA,
        0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xD9, 0xDA, 0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7,
        0xE8, 0xE9, 0xEA, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8, 0xF9, 0xFA,
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::reduced_jpeg::tests::{mean_abs_diff, photo};

    /// The picture as zune-jpeg in strict mode decodes it (any error fails);
    /// jpeg-decoder must read it too.
    fn decoded(bytes: &[u8], width: u32, height: u32) -> Vec<u8> {
        use zune_core::bytestream::ZCursor;
        use zune_core::options::DecoderOptions;
        let options = DecoderOptions::default().set_strict_mode(true);
        let mut zune = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
        let pixels = zune.decode().expect("zune-jpeg decodes it");
        assert_eq!(zune.dimensions(), Some((width as usize, height as usize)));
        let mut other = jpeg_decoder::Decoder::new(bytes);
        let reference = other.decode().expect("jpeg-decoder decodes it");
        assert_eq!(reference.len(), pixels.len());
        pixels
    }

    fn jpeg_encoder_at_85(rgb: &[u8], width: u16, height: u16) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = jpeg_encoder::Encoder::new(&mut out, 85);
        encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
        encoder.set_chroma_subsampling_method(jpeg_encoder::ChromaSubsamplingMethod::Average);
        encoder
            .encode(rgb, width, height, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        out
    }

    #[test]
    fn every_size_decodes_to_the_picture_as_another_encoder_makes_it() {
        // Odd sizes leave partial MCUs on the right and at the bottom; 640 and
        // the small sides are what the variants are.
        for (width, height) in [(1, 1), (7, 9), (17, 33), (46, 46), (131, 97), (640, 640)] {
            let rgb = photo(width, height);
            let ours = encode_rgb(&rgb, width.into(), height.into(), 85).unwrap();
            let theirs = jpeg_encoder_at_85(&rgb, width, height);
            let (w, h) = (u32::from(width), u32::from(height));
            let (ours_decoded, theirs_decoded) = (decoded(&ours, w, h), decoded(&theirs, w, h));
            // The same tables and sampling: the two differ by their transforms'
            // rounding only, in pixels and in size.
            let apart = mean_abs_diff(&ours_decoded, &theirs_decoded);
            assert!(apart < 1.0, "{width}x{height}: {apart} levels apart");
            let error = mean_abs_diff(&ours_decoded, &rgb);
            let their_error = mean_abs_diff(&theirs_decoded, &rgb);
            assert!(
                error < their_error + 0.1,
                "{width}x{height}: {error} vs {their_error}"
            );
            if width >= 46 {
                let ratio = ours.len() as f64 / theirs.len() as f64;
                assert!(
                    (0.97..1.03).contains(&ratio),
                    "{width}x{height}: {ratio} of the size"
                );
            }
        }
    }

    #[test]
    fn ff_bytes_in_the_coded_data_are_stuffed() {
        // Noise codes long runs of ones: FF bytes that a decoder would read as
        // a marker if no 00 followed them.
        let mut next = crate::imaging::tests::xorshift(7);
        let rgb: Vec<u8> = (0..64 * 64 * 3).map(|_| next() as u8).collect();
        let ours = encode_rgb(&rgb, 64, 64, 85).unwrap();
        let scan = ours.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap() + 14;
        let data = &ours[scan..ours.len() - 2];
        assert!(data.windows(2).any(|w| w == [0xFF, 0x00]));
        assert!(data.windows(2).all(|w| w[0] != 0xFF || w[1] == 0x00));
        let error = mean_abs_diff(&decoded(&ours, 64, 64), &rgb);
        let theirs = jpeg_encoder_at_85(&rgb, 64, 64);
        let their_error = mean_abs_diff(&decoded(&theirs, 64, 64), &rgb);
        assert!(error < their_error + 0.1, "{error} vs {their_error}");
    }

    #[test]
    fn a_flat_colour_stays_that_colour() {
        for colour in [[255u8, 255, 255], [0, 0, 0], [200, 30, 90]] {
            let rgb = colour.repeat(40 * 24);
            let ours = encode_rgb(&rgb, 40, 24, 85).unwrap();
            for pixel in decoded(&ours, 40, 24).chunks_exact(3) {
                for (got, want) in pixel.iter().zip(colour) {
                    assert!(got.abs_diff(want) <= 2, "{pixel:?} for {colour:?}");
                }
            }
        }
    }

    #[test]
    fn the_quality_scales_the_tables_as_libjpeg_does() {
        // 85 → 30 % of Annex K: luma 16 → 5, chroma 99 → 30; 100 → all 1s;
        // 10 → 500 %, clamped to 255 for a baseline file.
        assert_eq!(Quantiser::new(&LUMA_QUANT, 85).zigzag[..3], [5, 3, 4]);
        assert_eq!(Quantiser::new(&CHROMA_QUANT, 85).zigzag[63], 30);
        assert!(
            Quantiser::new(&LUMA_QUANT, 100)
                .zigzag
                .iter()
                .all(|&q| q == 1)
        );
        assert_eq!(Quantiser::new(&LUMA_QUANT, 10).zigzag[63], 255);
    }

    #[test]
    fn the_largest_coefficients_are_coded_at_quality_100() {
        // All divisors 1: a one-pixel checkerboard has AC coefficients of 10
        // bits, a black block the DC of -1024 (11 bits), the largest sizes the
        // tables code.
        let rgb: Vec<u8> = (0..32 * 32)
            .flat_map(|i| {
                let (x, y) = (i % 32, i / 32);
                [if x < 8 || (x + y) % 2 == 0 { 0 } else { 255 }; 3]
            })
            .collect();
        let ours = encode_rgb(&rgb, 32, 32, 100).unwrap();
        let error = mean_abs_diff(&decoded(&ours, 32, 32), &rgb);
        assert!(error < 8.0, "{error}");
    }

    #[test]
    fn sizes_that_are_no_jpeg_are_refused() {
        assert!(encode_rgb(&[], 0, 0, 85).is_none());
        assert!(encode_rgb(&[0; 12], 2, 1, 85).is_none());
        assert!(encode_rgb(&[0; 3], 70_000, 1, 85).is_none());
        assert!(encode_ycbcr420([&[], &[], &[]], 0, 0, 85).is_none());
        // Chroma is half of each side rounded up: 3×3 luma, 2×2 chroma.
        assert!(encode_ycbcr420([&[0; 9], &[0; 4], &[0; 3]], 3, 3, 85).is_none());
        assert!(encode_ycbcr420([&[0; 9], &[0; 4], &[0; 4]], 3, 3, 85).is_some());
    }

    /// `rgb`'s planes as [`encode_rgb`] makes them: its colour conversion,
    /// then each 2×2 block of chroma averaged (the last column and row
    /// repeated where a side is odd).
    fn planes_of(rgb: &[u8], width: usize, height: usize) -> [Vec<u8>; 3] {
        let (mut y, mut cb, mut cr) = (vec![0; width * height], vec![0; 0], vec![0; 0]);
        let (mut cb_full, mut cr_full) = (Vec::new(), Vec::new());
        let even = width + width % 2;
        for row in 0..height + height % 2 {
            let source = &rgb[row.min(height - 1) * width * 3..][..width * 3];
            let (mut cb_row, mut cr_row) = (vec![0; even], vec![0; even]);
            let mut y_row = vec![0; even];
            to_ycbcr(source, &mut y_row, &mut cb_row, &mut cr_row);
            if row < height {
                y[row * width..][..width].copy_from_slice(&y_row[..width]);
            }
            cb_full.extend(cb_row);
            cr_full.extend(cr_row);
        }
        for (full, half) in [(&cb_full, &mut cb), (&cr_full, &mut cr)] {
            for row in 0..height.div_ceil(2) {
                for x in 0..width.div_ceil(2) {
                    let at = |r: usize, c: usize| u16::from(full[(2 * row + r) * even + 2 * x + c]);
                    let sum = at(0, 0) + at(0, 1) + at(1, 0) + at(1, 1);
                    half.push(((sum + 1 + (x as u16 & 1)) >> 2) as u8);
                }
            }
        }
        [y, cb, cr]
    }

    #[test]
    fn planes_encode_as_the_rgb_picture_they_were_made_of() {
        for (width, height) in [(1, 1), (7, 9), (46, 46), (131, 97), (48, 32), (640, 640)] {
            let rgb = photo(width, height);
            let (w, h) = (usize::from(width), usize::from(height));
            let [y, cb, cr] = planes_of(&rgb, w, h);
            let (w32, h32) = (u32::from(width), u32::from(height));
            let planes = encode_ycbcr420([&y, &cb, &cr], w32, h32, 85).unwrap();
            let from_rgb = encode_rgb(&rgb, w32, h32, 85).unwrap();
            if w % 16 == 0 && h % 16 == 0 {
                // No padding: the same samples, the same file.
                assert_eq!(planes, from_rgb, "{width}x{height}");
            }
            // Elsewhere the chroma padding past the edge differs by a level
            // here and there (the last sample repeated, where encode_rgb
            // averages with alternating rounding), which moves the edge
            // blocks' coefficients a little either way.
            let planes_error = mean_abs_diff(&decoded(&planes, w32, h32), &rgb);
            let rgb_error = mean_abs_diff(&decoded(&from_rgb, w32, h32), &rgb);
            assert!(
                planes_error < rgb_error + 0.3,
                "{width}x{height}: {planes_error} vs {rgb_error}"
            );
        }
    }
}
