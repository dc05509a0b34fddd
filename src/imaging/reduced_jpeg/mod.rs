//! Our own decoder for the JPEGs cameras and phones write: baseline, one
//! scan. It decodes only what an avatar needs: the centre square, and for a
//! large picture only at 1/2, 1/4 or 1/8 of each side, computed from the
//! low-frequency corner of each block's coefficients (an N-point inverse DCT,
//! a proper low-pass rather than a point sample).
//!
//! Why our own: in a JPEG most of the work is entropy decoding, which no
//! output size avoids. `jpeg-decoder`, the pure-Rust decoder that can scale,
//! reads Huffman codes a bit at a time on its slow paths and hands every row
//! of blocks to one freshly spawned thread per component; for a 12 MP photo
//! that is about 1.6 times the CPU of this single-threaded loop, with its
//! 64-bit bit buffer refilled eight bytes at a time and one table lookup per
//! coefficient. At full size zune-jpeg spends half as much again on Huffman
//! codes, and converts every block of a 16:9 picture whose sides the square
//! crops away; here only the blocks around the square are transformed.
//!
//! Scope: one sequential Huffman scan of 8-bit samples holding every
//! component, 1 (grey) or 3 (YCbCr) components, luma sampled 1 or 2 times per
//! chroma sample in each direction, restart markers or not. Anything else
//! (progressive, arithmetic, 12-bit, CMYK, RGB, several scans, odd sampling)
//! and anything malformed — including data that ends before the last block —
//! answers `None`, and the caller's general decoders take the picture as they
//! always did, errors included. Every block is entropy-decoded, the ones
//! outside the square too, so a file is judged whole either way. Safe Rust;
//! the only allocations are the planes, sized from header dimensions the
//! caller has already checked.

/// Natural (row-major) index of each zig-zag position.
pub(super) const ZIGZAG: [u8; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// [`ZIGZAG`] into blocks stored transposed (8·u + v), for [`idct8`] and the
/// encoder's forward transform.
pub(super) const TRANSPOSED_ZIGZAG: [u8; 64] = {
    let mut table = [0u8; 64];
    let mut k = 0;
    while k < 64 {
        let natural = ZIGZAG[k];
        table[k] = (natural % 8) * 8 + natural / 8;
        k += 1;
    }
    table
};

/// Huffman codes up to this many bits are decoded with one table lookup
/// (11 measured fastest on a 12 MP photo: 9 and 10 miss too often, 12 crowds
/// the cache).
const FAST_BITS: u32 = 11;

/// The largest magnitude categories 8-bit samples can produce (T.81 F.1.2):
/// a stream that codes more is corrupt, and left to the general decoders.
const MAX_DC_SIZE: u32 = 11;
const MAX_AC_SIZE: u32 = 10;

/// Flag of a fast AC entry that ends the block (bits 8–11 hold a run, 16– a value).
const END_OF_BLOCK: i32 = 1 << 12;

/// A decoded picture at reduced size: `channels` is 1 (grey) or 3 (RGB).
pub(crate) struct Reduced {
    pub width: u32,
    pub height: u32,
    pub channels: u8,
    pub pixels: Vec<u8>,
}

/// Which part of the picture [`decode`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Region {
    Whole,
    /// The centred square of the scaled picture's shorter side, placed as the
    /// avatar renderer crops it: `(side - square) / 2` from the left or top.
    CentreSquare,
}

/// Decodes `region` of `bytes` at `n`/8 of its size (`n` is 1, 2, 4 or 8), or
/// `None` when the file is outside this decoder's scope, malformed, or larger
/// than `max_pixels` (full size).
pub(crate) fn decode(bytes: &[u8], n: usize, region: Region, max_pixels: u64) -> Option<Reduced> {
    decode_planes(bytes, n, region, max_pixels).map(Decoded::into_reduced)
}

/// [`decode`], with a YCbCr picture left in its planes.
pub(crate) fn decode_planes(
    bytes: &[u8],
    n: usize,
    region: Region,
    max_pixels: u64,
) -> Option<Decoded> {
    if !matches!(n, 1 | 2 | 4 | 8) {
        return None;
    }
    let (header, scan_start) = Header::parse(bytes)?;
    if header.width as u64 * header.height as u64 > max_pixels {
        return None;
    }
    let mut scan = Scan::new(&header, n, region)?;
    let data = &bytes[scan_start..];
    if n == 8 {
        scan.run::<true>(&header, data)?;
    } else {
        scan.run::<false>(&header, data)?;
    }
    scan.into_decoded()
}

/// The output side for `n`/8 of `side`, rounded up (as libjpeg does).
pub(crate) fn scaled_side(side: u32, n: usize) -> u32 {
    (u64::from(side) * n as u64).div_ceil(8) as u32
}

struct Component {
    id: u8,
    h: usize,
    v: usize,
    quant: usize,
    dc_table: usize,
    ac_table: usize,
}

struct Header {
    width: usize,
    height: usize,
    components: Vec<Component>,
    /// Dequantisation tables in natural order.
    quant: [Option<[i32; 64]>; 4],
    dc: [Option<Huffman>; 4],
    ac: [Option<Huffman>; 4],
    restart_interval: usize,
    /// The scan's components, as indexes into `components`.
    scan_order: Vec<usize>,
}

impl Header {
    /// Reads the segments up to the first scan; returns where its data starts.
    fn parse(bytes: &[u8]) -> Option<(Header, usize)> {
        if bytes.get(..2)? != [0xFF, 0xD8] {
            return None;
        }
        let mut header = Header {
            width: 0,
            height: 0,
            components: Vec::new(),
            quant: [None; 4],
            dc: [None, None, None, None],
            ac: [None, None, None, None],
            restart_interval: 0,
            scan_order: Vec::new(),
        };
        let mut adobe_transform = None;
        let mut i = 2;
        loop {
            if *bytes.get(i)? != 0xFF {
                return None;
            }
            while *bytes.get(i + 1)? == 0xFF {
                i += 1;
            }
            let marker = bytes[i + 1];
            if matches!(marker, 0x00 | 0x01 | 0xD0..=0xD9) {
                return None;
            }
            let len = usize::from(u16::from_be_bytes([*bytes.get(i + 2)?, *bytes.get(i + 3)?]));
            if len < 2 {
                return None;
            }
            let body = bytes.get(i + 4..i + 2 + len)?;
            i += 2 + len;
            match marker {
                0xC0 | 0xC1 => header.frame(body)?,
                0xC4 => header.huffman_tables(body)?,
                0xDB => header.quant_tables(body)?,
                0xDD => {
                    header.restart_interval = usize::from(u16::from_be_bytes(body.try_into().ok()?))
                }
                0xEE if body.starts_with(b"Adobe") => adobe_transform = Some(*body.get(11)?),
                0xDA => {
                    header.scan(body)?;
                    // Three components are YCbCr unless an Adobe marker or the
                    // component ids say RGB (what jpeg-decoder and libjpeg read).
                    let ids: Vec<u8> = header.components.iter().map(|c| c.id).collect();
                    if ids.len() == 3 && (adobe_transform.is_some_and(|t| t != 1) || ids == b"RGB")
                    {
                        return None;
                    }
                    return Some((header, i));
                }
                // Other frame types, DNL, hierarchical: not ours.
                0xC2..=0xCF | 0xDC | 0xDE | 0xDF => return None,
                // APPn, COM and the rest carry nothing the pixels need.
                _ => {}
            }
        }
    }

    fn frame(&mut self, body: &[u8]) -> Option<()> {
        let [precision, h0, h1, w0, w1, count, rest @ ..] = body else {
            return None;
        };
        let count = usize::from(*count);
        if *precision != 8 || !matches!(count, 1 | 3) || rest.len() != 3 * count {
            return None;
        }
        self.height = usize::from(u16::from_be_bytes([*h0, *h1]));
        self.width = usize::from(u16::from_be_bytes([*w0, *w1]));
        if self.width == 0 || self.height == 0 || !self.components.is_empty() {
            return None;
        }
        for (k, spec) in rest.chunks_exact(3).enumerate() {
            let (h, v, quant) = (
                usize::from(spec[1] >> 4),
                usize::from(spec[1] & 15),
                usize::from(spec[2]),
            );
            // Luma (or the single grey component) 1 or 2 each way; chroma 1×1.
            let sampling_ok = if k == 0 {
                (1..=2).contains(&h) && (1..=2).contains(&v)
            } else {
                h == 1 && v == 1
            };
            if !sampling_ok || quant > 3 {
                return None;
            }
            self.components.push(Component {
                id: spec[0],
                h,
                v,
                quant,
                dc_table: 0,
                ac_table: 0,
            });
        }
        if count == 1 {
            // A single component's scan is not interleaved: one block an MCU.
            self.components[0].h = 1;
            self.components[0].v = 1;
        }
        Some(())
    }

    fn huffman_tables(&mut self, mut body: &[u8]) -> Option<()> {
        while let [class_id, counts @ ..] = body {
            let (class, id) = (class_id >> 4, usize::from(class_id & 15));
            let counts: &[u8; 16] = counts.get(..16)?.try_into().ok()?;
            let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
            let symbols = body.get(17..17 + total)?;
            let table = Huffman::new(counts, symbols, class == 1)?;
            match (class, id) {
                (0, 0..=3) => self.dc[id] = Some(table),
                (1, 0..=3) => self.ac[id] = Some(table),
                _ => return None,
            }
            body = &body[17 + total..];
        }
        Some(())
    }

    fn quant_tables(&mut self, mut body: &[u8]) -> Option<()> {
        while let [precision_id, rest @ ..] = body {
            let (wide, id) = (precision_id >> 4, usize::from(precision_id & 15));
            let size = match wide {
                0 => 64,
                1 => 128,
                _ => return None,
            };
            let values = rest.get(..size)?;
            let mut table = [0i32; 64];
            for (k, &natural) in ZIGZAG.iter().enumerate() {
                let q = if wide == 1 {
                    u16::from_be_bytes([values[2 * k], values[2 * k + 1]])
                } else {
                    u16::from(values[k])
                };
                table[usize::from(natural)] = i32::from(q);
            }
            *self.quant.get_mut(id)? = Some(table);
            body = &rest[size..];
        }
        Some(())
    }

    fn scan(&mut self, body: &[u8]) -> Option<()> {
        let count = usize::from(*body.first()?);
        if count != self.components.len() || body.len() != 1 + 2 * count + 3 {
            return None;
        }
        for spec in body[1..1 + 2 * count].chunks_exact(2) {
            let index = self.components.iter().position(|c| c.id == spec[0])?;
            if self.scan_order.contains(&index) {
                return None;
            }
            let component = &mut self.components[index];
            component.dc_table = usize::from(spec[1] >> 4);
            component.ac_table = usize::from(spec[1] & 15);
            let tables_present = self.dc.get(component.dc_table)?.is_some()
                && self.ac.get(component.ac_table)?.is_some()
                && self.quant[component.quant].is_some();
            if !tables_present {
                return None;
            }
            self.scan_order.push(index);
        }
        // Spectral selection 0..63, no successive approximation: baseline.
        (body[1 + 2 * count..] == [0, 63, 0]).then_some(())
    }
}

/// A canonical Huffman table (JPEG Annex C) for lookups on a left-aligned
/// bit buffer.
struct Huffman {
    /// The next `FAST_BITS` bits → `length << 8 | symbol` of the code they
    /// start with, or 0 when that code is longer.
    fast: Box<[u16; 1 << FAST_BITS]>,
    /// For AC tables: the next `FAST_BITS` bits → a whole coefficient when its
    /// code and value bits both fit: `value << 16 | run << 8 | bits used`, or
    /// [`END_OF_BLOCK`]` | bits used`, or 0.
    fast_ac: Option<Box<[i32; 1 << FAST_BITS]>>,
    /// Exclusive upper bound of the codes of each length, left-aligned to 16 bits.
    limit: [u32; 18],
    /// Symbol index of a code of each length = code + `offset[length]`.
    offset: [i32; 17],
    symbols: Vec<u8>,
}

impl Huffman {
    fn new(counts: &[u8; 16], symbols: &[u8], ac: bool) -> Option<Huffman> {
        let mut fast = Box::new([0u16; 1 << FAST_BITS]);
        let mut limit = [0u32; 18];
        let mut offset = [0i32; 17];
        let mut code = 0u32;
        let mut k = 0usize;
        for length in 1..=16u32 {
            let count = u32::from(counts[length as usize - 1]);
            offset[length as usize] = k as i32 - code as i32;
            for _ in 0..count {
                // More codes of this length than the length has room for.
                if code >= 1 << length {
                    return None;
                }
                if length <= FAST_BITS {
                    let first = (code << (FAST_BITS - length)) as usize;
                    let entry = (length << 8) as u16 | u16::from(symbols[k]);
                    fast[first..first + (1 << (FAST_BITS - length))].fill(entry);
                }
                code += 1;
                k += 1;
            }
            limit[length as usize] = code << (16 - length);
            code <<= 1;
        }
        limit[17] = u32::MAX;
        let fast_ac = ac.then(|| {
            let mut table = Box::new([0i32; 1 << FAST_BITS]);
            for (bits, entry) in table.iter_mut().enumerate() {
                let e = fast[bits];
                let (length, run, size) = (
                    u32::from(e >> 8),
                    i32::from((e >> 4) & 15),
                    u32::from(e & 15),
                );
                if e == 0 || size > MAX_AC_SIZE || length + size > FAST_BITS {
                    continue;
                }
                // End of block, the commonest code of all: its flag and length.
                // A run of 16 zeros (15, 0) is a zero coefficient after 15 more.
                if size == 0 {
                    *entry = match run {
                        0 => END_OF_BLOCK | length as i32,
                        15 => 15 << 8 | length as i32,
                        _ => 0,
                    };
                    continue;
                }
                let raw = ((bits as u32) >> (FAST_BITS - length - size)) & ((1 << size) - 1);
                *entry = extend(raw, size) << 16 | run << 8 | (length + size) as i32;
            }
            table
        });
        Some(Huffman {
            fast,
            fast_ac,
            limit,
            offset,
            symbols: symbols.to_vec(),
        })
    }
}

/// A raw value of `size` bits read as the signed coefficient it codes.
#[inline]
fn extend(raw: u32, size: u32) -> i32 {
    if raw < 1 << (size - 1) {
        raw as i32 - (1 << size) + 1
    } else {
        raw as i32
    }
}

/// Entropy-coded data, MSB first. Bytes `FF 00` are a data `FF`; a marker or
/// the end of the data feeds zeros, which are counted, so running past the
/// end is detected rather than decoded as grey.
struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
    buffer: u64,
    count: u32,
    padding: u32,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> Self {
        BitReader {
            data,
            pos: 0,
            buffer: 0,
            count: 0,
            padding: 0,
        }
    }

    /// Tops the buffer up to at least 57 bits.
    #[inline]
    fn refill(&mut self) {
        if self.count > 56 {
            return;
        }
        if self.padding == 0
            && let Some(chunk) = self.data.get(self.pos..self.pos + 8)
        {
            let word = u64::from_be_bytes(chunk.try_into().unwrap_or([0xFF; 8]));
            // No FF byte among the eight: take as many whole bytes as fit.
            let inverted = !word;
            if inverted.wrapping_sub(0x0101_0101_0101_0101) & word & 0x8080_8080_8080_8080 == 0 {
                let bytes = (64 - self.count) / 8;
                self.buffer |= (word >> (64 - 8 * bytes)) << (64 - self.count - 8 * bytes);
                self.pos += bytes as usize;
                self.count += 8 * bytes;
                return;
            }
        }
        while self.count <= 56 {
            let byte = self.next_byte();
            self.buffer |= u64::from(byte) << (56 - self.count);
            self.count += 8;
        }
    }

    fn next_byte(&mut self) -> u8 {
        if self.padding == 0 {
            match self.data.get(self.pos..) {
                Some([0xFF, 0x00, ..]) => {
                    self.pos += 2;
                    return 0xFF;
                }
                Some([byte, ..]) if *byte != 0xFF => {
                    self.pos += 1;
                    return *byte;
                }
                _ => {}
            }
        }
        self.padding += 1;
        0
    }

    #[inline]
    fn consume(&mut self, bits: u32) {
        self.buffer <<= bits;
        self.count -= bits;
    }

    /// The next `size` (1..=16) bits; the buffer must hold them.
    #[inline]
    fn take(&mut self, size: u32) -> u32 {
        let value = (self.buffer >> (64 - size)) as u32;
        self.consume(size);
        value
    }

    /// Decodes one symbol; the buffer must hold at least 16 bits.
    #[inline]
    fn symbol(&mut self, table: &Huffman) -> Option<u8> {
        let entry = table.fast[(self.buffer >> (64 - FAST_BITS)) as usize];
        if entry != 0 {
            self.consume(u32::from(entry >> 8));
            return Some(entry as u8);
        }
        let code16 = (self.buffer >> 48) as u32;
        let mut length = FAST_BITS as usize + 1;
        while code16 >= table.limit[length] {
            length += 1;
        }
        if length > 16 {
            return None;
        }
        let index = (code16 >> (16 - length)) as i32 + table.offset[length];
        let symbol = *table.symbols.get(usize::try_from(index).ok()?)?;
        self.consume(length as u32);
        Some(symbol)
    }

    /// Whether the bits consumed so far went past the real data into padding.
    fn overran(&self) -> bool {
        8 * self.padding > self.count
    }

    /// At a restart interval's end: the marker `RST<expected>` must follow.
    fn restart(&mut self, expected: u8) -> Option<()> {
        if self.overran() {
            return None;
        }
        let mut pos = self.pos;
        while self.data.get(pos..pos + 2)? == [0xFF, 0xFF] {
            pos += 1;
        }
        if self.data.get(pos..pos + 2)? != [0xFF, 0xD0 + expected] {
            return None;
        }
        let data = self.data;
        *self = BitReader::new(&data[pos + 2..]);
        Some(())
    }
}

/// The planes being filled, one per component, at reduced size: only the
/// blocks of the MCUs around the region asked for, one MCU more on every side
/// where the picture has one, so that chroma upsampling at the region's edges
/// reads the same neighbours as for the whole picture.
struct Scan {
    n: usize,
    /// Zig-zag positions below this are kept; the rest are only decoded past.
    keep: usize,
    mcus_x: usize,
    mcus_y: usize,
    /// MCU columns and rows whose blocks are transformed into the planes.
    window_x: std::ops::Range<usize>,
    window_y: std::ops::Range<usize>,
    /// The region, in pixels of the scaled picture: its corner and size.
    region: (usize, usize, usize, usize),
    /// The luma (or grey) samples per MCU, each way, at this scale.
    mcu_w: usize,
    mcu_h: usize,
    /// At full size: what [`idct8`] needs of each quantisation table.
    full_size: [Option<FullSizeQuant>; 4],
    planes: Vec<Plane>,
}

struct Plane {
    width: usize,
    pixels: Vec<u8>,
    /// How many of its columns and rows hold the picture rather than the
    /// padding that fills the last MCUs (at least one of each).
    columns: usize,
    rows: usize,
}

impl Scan {
    fn new(header: &Header, n: usize, region: Region) -> Option<Scan> {
        let h_max = header.components.iter().map(|c| c.h).max()?;
        let v_max = header.components.iter().map(|c| c.v).max()?;
        let mcus_x = header.width.div_ceil(8 * h_max);
        let mcus_y = header.height.div_ceil(8 * v_max);
        let width = scaled_side(header.width as u32, n) as usize;
        let height = scaled_side(header.height as u32, n) as usize;
        let region = match region {
            Region::Whole => (0, 0, width, height),
            Region::CentreSquare => {
                let side = width.min(height);
                ((width - side) / 2, (height - side) / 2, side, side)
            }
        };
        let (mcu_w, mcu_h) = (h_max * n, v_max * n);
        let around = |start: usize, len: usize, mcu: usize, count: usize| {
            (start / mcu).saturating_sub(1)..((start + len).div_ceil(mcu) + 1).min(count)
        };
        let window_x = around(region.0, region.2, mcu_w, mcus_x);
        let window_y = around(region.1, region.3, mcu_h, mcus_y);
        let planes = header
            .components
            .iter()
            .map(|c| {
                let (per_mcu_x, per_mcu_y) = (c.h * n, c.v * n);
                let (width, rows) = (window_x.len() * per_mcu_x, window_y.len() * per_mcu_y);
                // The component's own size at this scale, as libjpeg counts it
                // (side · sampling / largest sampling, then · n/8, rounded up),
                // from the window's first MCU.
                let inside = |side: usize, sampling: usize, largest: usize, skipped: usize| {
                    (side * sampling * n)
                        .div_ceil(largest * 8)
                        .saturating_sub(skipped)
                };
                Plane {
                    width,
                    pixels: vec![0; width * rows],
                    columns: inside(header.width, c.h, h_max, window_x.start * per_mcu_x)
                        .clamp(1, width),
                    rows: inside(header.height, c.v, v_max, window_y.start * per_mcu_y)
                        .clamp(1, rows),
                }
            })
            .collect();
        // The last zig-zag position inside the top-left n×n corner.
        let keep = match n {
            1 => 1,
            2 => 5,
            4 => 25,
            _ => 64,
        };
        let full_size = if n == 8 {
            header
                .quant
                .map(|table| table.map(|q| FullSizeQuant::of(&q)))
        } else {
            [None, None, None, None]
        };
        Some(Scan {
            n,
            keep,
            mcus_x,
            mcus_y,
            window_x,
            window_y,
            region,
            mcu_w,
            mcu_h,
            full_size,
            planes,
        })
    }

    /// The scan, block by block; `FULL` (n = 8) keeps every coefficient, in
    /// [`idct8`]'s transposed order (a loop of its own: the reduced sizes'
    /// loop stays as tight as it was).
    fn run<const FULL: bool>(&mut self, header: &Header, data: &[u8]) -> Option<()> {
        let mut bits = BitReader::new(data);
        let mut predictors = [0i32; 3];
        let mut coefficients = [0i32; 64];
        let mut restarts = 0u8;
        for mcu in 0..self.mcus_x * self.mcus_y {
            // A file cut short stops here, not after decoding zeros to the end.
            if mcu % self.mcus_x == 0 && bits.overran() {
                return None;
            }
            if header.restart_interval > 0 && mcu > 0 && mcu % header.restart_interval == 0 {
                bits.restart(restarts)?;
                restarts = (restarts + 1) & 7;
                predictors = [0; 3];
            }
            let (mx, my) = (mcu % self.mcus_x, mcu / self.mcus_x);
            let inside = self.window_x.contains(&mx) && self.window_y.contains(&my);
            let (wx, wy) = (
                mx.wrapping_sub(self.window_x.start),
                my.wrapping_sub(self.window_y.start),
            );
            for &index in &header.scan_order {
                let component = &header.components[index];
                let dc = header.dc[component.dc_table].as_ref()?;
                let ac = header.ac[component.ac_table].as_ref()?;
                let quant = header.quant[component.quant].as_ref()?;
                let full_size = self.full_size[component.quant].as_ref();
                for by in 0..component.v {
                    for bx in 0..component.h {
                        let needs_transform = self.block::<FULL>(
                            &mut bits,
                            dc,
                            ac,
                            &mut predictors[index],
                            &mut coefficients,
                        )?;
                        if !inside {
                            continue;
                        }
                        let x = (wx * component.h + bx) * self.n;
                        let y = (wy * component.v + by) * self.n;
                        let plane = &mut self.planes[index];
                        if full_size.is_some_and(|full| !full.possible(&coefficients)) {
                            return None;
                        }
                        if !needs_transform {
                            flat(coefficients[0] * quant[0], self.n, plane, x, y);
                        } else if let Some(full) = full_size {
                            idct8(&coefficients, &full.scaled, plane, x, y);
                        } else {
                            idct(&coefficients, quant, self.n, plane, x, y);
                        }
                    }
                }
            }
        }
        (!bits.overran()).then_some(())
    }

    /// Decodes one block's coefficients, keeping those the reduced IDCT reads;
    /// answers whether it needs the transform (`false`: a flat block, its DC
    /// term alone).
    #[inline]
    fn block<const FULL: bool>(
        &self,
        bits: &mut BitReader<'_>,
        dc: &Huffman,
        ac: &Huffman,
        predictor: &mut i32,
        coefficients: &mut [i32; 64],
    ) -> Option<bool> {
        let (keep, order) = if FULL {
            (64, &TRANSPOSED_ZIGZAG)
        } else {
            (self.keep, &ZIGZAG)
        };
        if FULL {
            coefficients.fill(0);
        } else {
            for &natural in &ZIGZAG[..keep] {
                coefficients[usize::from(natural)] = 0;
            }
        }
        if bits.count < 32 {
            bits.refill();
        }
        let size = u32::from(bits.symbol(dc)?);
        if size > MAX_DC_SIZE {
            return None;
        }
        if size > 0 {
            *predictor += extend(bits.take(size), size);
            // An 8-bit block's DC coefficient is within ±1024 (T.81 A.3.1).
            if !(-2048..=2047).contains(predictor) {
                return None;
            }
        }
        coefficients[0] = *predictor;
        let fast_ac = ac.fast_ac.as_deref()?;
        let mut k = 1usize;
        while k < 64 {
            if bits.count < 32 {
                bits.refill();
            }
            let whole = fast_ac[(bits.buffer >> (64 - FAST_BITS)) as usize];
            if whole != 0 {
                bits.consume((whole & 0xFF) as u32);
                if whole & END_OF_BLOCK != 0 {
                    break;
                }
                k += ((whole >> 8) & 15) as usize;
                if k < keep {
                    coefficients[usize::from(order[k])] = whole >> 16;
                }
                k += 1;
                continue;
            }
            let run_size = bits.symbol(ac)?;
            let (run, size) = (usize::from(run_size >> 4), u32::from(run_size & 15));
            match (run, size) {
                (0, 0) => break,
                (15, 0) => {
                    k += 16;
                    continue;
                }
                // End-of-band runs exist only in progressive scans.
                (_, 0) => return None,
                _ => {}
            }
            if size > MAX_AC_SIZE {
                return None;
            }
            k += run;
            let value = extend(bits.take(size), size);
            if k < keep {
                coefficients[usize::from(order[k])] = value;
            }
            k += 1;
        }
        // A coefficient past the 64th: not a valid block. Past the first
        // position, something was coded: almost always a coefficient the
        // transform needs (only a run of zeros would be a flat block too).
        (k <= 64).then_some(k > 1 && keep > 1)
    }

    /// The region: grey as its pixels, YCbCr still in its planes.
    fn into_decoded(self) -> Option<Decoded> {
        let (left, top, width, height) = self.region;
        // The region's corner in the planes' samples (luma, or grey).
        let x0 = left - self.window_x.start * self.mcu_w;
        let y0 = top - self.window_y.start * self.mcu_h;
        let (sx, sy) = (self.mcu_w / self.n, self.mcu_h / self.n);
        let planes = self.planes;
        if let [grey] = &planes[..] {
            let mut pixels = Vec::with_capacity(width * height);
            for row in grey.pixels.chunks_exact(grey.width).skip(y0).take(height) {
                pixels.extend_from_slice(&row[x0..x0 + width]);
            }
            return Some(Decoded::Grey(Reduced {
                width: width as u32,
                height: height as u32,
                channels: 1,
                pixels,
            }));
        }
        Some(Decoded::YCbCr(YCbCr {
            planes: planes.try_into().ok()?,
            sx,
            sy,
            region: (x0, y0, width, height),
        }))
    }
}

/// What [`decode_planes`] gives: grey pixels, or YCbCr still in its planes
/// (a renderer that resamples each plane skips chroma upsampling and both
/// colour conversions).
pub(crate) enum Decoded {
    Grey(Reduced),
    YCbCr(YCbCr),
}

impl Decoded {
    /// As pixels: grey as it is, YCbCr converted to RGB.
    pub(crate) fn into_reduced(self) -> Reduced {
        match self {
            Decoded::Grey(grey) => grey,
            Decoded::YCbCr(ycbcr) => ycbcr.to_rgb(),
        }
    }
}

/// A YCbCr picture as decoded: its luma, Cb and Cr planes around the region
/// asked for, chroma at its own sampling.
pub(crate) struct YCbCr {
    planes: [Plane; 3],
    /// Luma samples per chroma sample, across and down (1 or 2).
    sx: usize,
    sy: usize,
    /// The region in luma samples of the planes: left, top, width, height.
    region: (usize, usize, usize, usize),
}

/// One plane of a [`YCbCr`] handed over: `width`×`rows` samples, row-major.
pub(crate) struct Samples {
    pub width: usize,
    pub rows: usize,
    pub pixels: Vec<u8>,
}

impl YCbCr {
    /// Whether chroma has half the luma samples each way (4:2:0, what
    /// cameras and phones write).
    pub(crate) fn is_420(&self) -> bool {
        (self.sx, self.sy) == (2, 2)
    }

    /// The region in luma samples of [`Self::into_planes`]' first plane:
    /// left, top, width, height.
    pub(crate) fn region(&self) -> (usize, usize, usize, usize) {
        self.region
    }

    /// Luma, Cb and Cr, each only the rows that hold the picture, and each
    /// row's padding columns (what fills the last MCUs) replaced by its last
    /// real sample, so a filter reaching past the picture's edge reads the
    /// edge repeated, not the encoder's padding.
    pub(crate) fn into_planes(self) -> [Samples; 3] {
        self.planes.map(|mut plane| {
            let (width, columns, rows) = (plane.width, plane.columns, plane.rows);
            plane.pixels.truncate(width * rows);
            if columns < width {
                for row in plane.pixels.chunks_exact_mut(width) {
                    let last = row[columns - 1];
                    row[columns..].fill(last);
                }
            }
            Samples {
                width,
                rows,
                pixels: plane.pixels,
            }
        })
    }

    /// The region in RGB, chroma upsampled with libjpeg's triangle filter (as
    /// jpeg-decoder and libvips do).
    pub(crate) fn to_rgb(&self) -> Reduced {
        let (x0, y0, width, height) = self.region;
        let [luma, cb, cr] = &self.planes;
        let (sx, sy) = (self.sx, self.sy);
        // Whole rows through simple loops over slices of known length, which
        // the compiler turns into vector instructions: a pixel at a time (an
        // `extend` per pixel, a branch per chroma sample) ran ~7 ns a pixel.
        let mut pixels = vec![0; width * height * 3];
        let (mut sums, mut cb_row, mut cr_row) =
            (Vec::new(), vec![0; sx * cb.width], vec![0; sx * cr.width]);
        for (y, out) in (y0..).zip(pixels.chunks_exact_mut(width * 3)) {
            cb.upsampled_row(y, sx, sy, &mut sums, &mut cb_row);
            cr.upsampled_row(y, sx, sy, &mut sums, &mut cr_row);
            let luma_row = &luma.pixels[y * luma.width + x0..][..width];
            for (((rgb, &l), &b), &r) in out
                .chunks_exact_mut(3)
                .zip(luma_row)
                .zip(&cb_row[x0..x0 + width])
                .zip(&cr_row[x0..x0 + width])
            {
                rgb.copy_from_slice(&ycbcr_to_rgb(l, b, r));
            }
        }
        Reduced {
            width: width as u32,
            height: height as u32,
            channels: 3,
            pixels,
        }
    }
}

impl Plane {
    /// Row `y` of this chroma plane at luma resolution (`sx`, `sy`: luma
    /// samples per chroma sample), into `out`: each output sample weighs its
    /// nearest input sample 3/4 and the next nearest 1/4 in each direction
    /// where the plane is subsampled (libjpeg's "fancy" upsampling). At the
    /// picture's right and bottom edges the last real sample stands in for
    /// its missing neighbour, as in libjpeg, not the MCU's padding.
    fn upsampled_row(&self, y: usize, sx: usize, sy: usize, sums: &mut Vec<u16>, out: &mut [u8]) {
        let rows = self.rows;
        let near = (y / sy).min(rows - 1);
        let far = match (sy, y % 2) {
            (1, _) => near,
            (_, 0) => near.saturating_sub(1),
            _ => (near + 1).min(rows - 1),
        };
        let (near, far) = (
            &self.pixels[near * self.width..][..self.columns],
            &self.pixels[far * self.width..][..self.columns],
        );
        // Column sums at four times the sample scale.
        sums.clear();
        sums.extend(
            near.iter()
                .zip(far)
                .map(|(&a, &b)| 3 * u16::from(a) + u16::from(b)),
        );
        if sx == 1 {
            for (o, &t) in out.iter_mut().zip(sums.iter()) {
                *o = ((t + 2) >> 2) as u8;
            }
            return;
        }
        // `out` holds two samples per sum: the outer two take their sum's
        // value, every other one 3/4 of its own and 1/4 of its neighbour's.
        let (Some(&first), Some(&last)) = (sums.first(), sums.last()) else {
            return;
        };
        out[0] = ((first + 2) >> 2) as u8;
        out[2 * sums.len() - 1] = ((last + 2) >> 2) as u8;
        for (pair, sum) in out[1..].chunks_exact_mut(2).zip(sums.windows(2)) {
            let (left, right) = (sum[0], sum[1]);
            pair[0] = ((3 * left + right + 8) >> 4) as u8;
            pair[1] = ((3 * right + left + 8) >> 4) as u8;
        }
    }
}

/// JFIF's YCbCr → RGB, in 16.16 fixed point.
#[inline]
fn ycbcr_to_rgb(y: u8, cb: u8, cr: u8) -> [u8; 3] {
    let y = i32::from(y) << 16;
    let (cb, cr) = (i32::from(cb) - 128, i32::from(cr) - 128);
    let clamp = |v: i32| ((v + 0x8000) >> 16).clamp(0, 255) as u8;
    [
        clamp(y + 91_881 * cr),
        clamp(y - 22_554 * cb - 46_802 * cr),
        clamp(y + 116_130 * cb),
    ]
}

/// A block with no AC coefficient (the commonest in smooth areas): its level,
/// `dc` dequantised, at every one of its n×n samples.
fn flat(dc: i32, n: usize, plane: &mut Plane, x: usize, y: usize) {
    let level = ((dc + 1028) >> 3).clamp(0, 255) as u8;
    for row in plane.pixels[y * plane.width + x..]
        .chunks_mut(plane.width)
        .take(n)
    {
        row[..n].fill(level);
    }
}

/// The n×n inverse DCT of a block's n×n lowest frequencies (`n` 2 or 4),
/// normalised like the 8-point one (a flat block keeps its level), written at
/// (x, y). At 2/8 it is sums of four products: exact in integers (at most 4 ·
/// 2047 · 65535 < 2³¹), floor((s + 8 · 128.5) / 8) being the float path's
/// value + 128.5 truncated.
fn idct(
    coefficients: &[i32; 64],
    quant: &[i32; 64],
    n: usize,
    plane: &mut Plane,
    x: usize,
    y: usize,
) {
    let at = |v: usize, u: usize| coefficients[8 * v + u] * quant[8 * v + u];
    let level = |sum: i32| ((sum + 1028) >> 3).clamp(0, 255) as u8;
    let start = y * plane.width + x;
    if n == 2 {
        let (a, b, c, d) = (at(0, 0), at(0, 1), at(1, 0), at(1, 1));
        plane.pixels[start..start + 2]
            .copy_from_slice(&[level(a + b + c + d), level(a - b + c - d)]);
        let below = start + plane.width;
        plane.pixels[below..below + 2]
            .copy_from_slice(&[level(a + b - c - d), level(a - b - c + d)]);
        return;
    }
    let at = |v: usize, u: usize| at(v, u) as f32;
    let rows: [[f32; 4]; 4] =
        std::array::from_fn(|v| idct4([at(v, 0), at(v, 1), at(v, 2), at(v, 3)]));
    let columns: [[f32; 4]; 4] = std::array::from_fn(|u| idct4(rows.map(|row| row[u])));
    for (u, column) in columns.into_iter().enumerate() {
        for (v, value) in column.into_iter().enumerate() {
            plane.pixels[start + v * plane.width + u] = (value + 128.5).clamp(0.0, 255.0) as u8;
        }
    }
}

/// 4-point inverse DCT with the 8-point transform's per-axis scale (½·C(u)).
#[inline]
fn idct4([f0, f1, f2, f3]: [f32; 4]) -> [f32; 4] {
    const C4: f32 = std::f32::consts::FRAC_1_SQRT_2;
    const C1: f32 = 0.923_879_5; // cos(π/8)
    const C3: f32 = 0.382_683_43; // cos(3π/8)
    let (even0, even1) = (C4 * (f0 + f2), C4 * (f0 - f2));
    let (odd0, odd1) = (C1 * f1 + C3 * f3, C3 * f1 - C1 * f3);
    [
        0.5 * (even0 + odd0),
        0.5 * (even1 + odd1),
        0.5 * (even1 - odd1),
        0.5 * (even0 - odd0),
    ]
}

/// A quantisation table as [`idct8`] reads it, transposed like the blocks
/// (entry 8·u + v).
struct FullSizeQuant {
    /// With the scale of the transform's factorisation folded in: (v, u)
    /// times s(v)·s(u)/8, where s(0) = 1 and s(k) = √2·cos(kπ/16).
    scaled: [f32; 64],
    /// The largest coefficient each entry can hold in a picture of 8-bit
    /// samples: its dequantised value within 2048 + q/2. The transform of
    /// 8-bit samples is within ±1024 and rounding to a multiple of q adds at
    /// most q/2, so this leaves twice the room any encoder needs. Beyond it
    /// the general decoders decide (jpeg-decoder's integer transform
    /// overflows there, where ours would not).
    largest: [i32; 64],
}

impl FullSizeQuant {
    fn of(quant: &[i32; 64]) -> Self {
        let transposed: [i32; 64] = std::array::from_fn(|i| quant[8 * (i % 8) + i / 8]);
        FullSizeQuant {
            scaled: idct8_scaled_quant(quant),
            largest: transposed.map(|q| if q == 0 { i32::MAX } else { (2048 + q / 2) / q }),
        }
    }

    /// Whether every coefficient of `block` (transposed) is one an 8-bit
    /// picture can have.
    fn possible(&self, block: &[i32; 64]) -> bool {
        block
            .iter()
            .zip(&self.largest)
            .fold(true, |ok, (&c, &largest)| ok & (c.abs() <= largest))
    }
}

/// A quantisation table (natural order) with the scale of [`idct8`]'s
/// factorisation folded in, transposed (see [`FullSizeQuant::scaled`]).
fn idct8_scaled_quant(quant: &[i32; 64]) -> [f32; 64] {
    let s = |k: usize| {
        if k == 0 {
            1.0
        } else {
            std::f64::consts::SQRT_2 * (k as f64 * std::f64::consts::PI / 16.0).cos()
        }
    };
    // Stored transposed, as the blocks it scales (entry 8·u + v).
    std::array::from_fn(|i| {
        let (u, v) = (i / 8, i % 8);
        (f64::from(quant[8 * v + u]) * s(v) * s(u) / 8.0) as f32
    })
}

/// Eight lanes, one per column (or row) of a block.
type Lanes = [f32; 8];

/// The 8-point inverse DCT of Arai, Agui and Nakajima (5 products, 29 sums),
/// inputs pre-scaled by s(k) (see [`idct8_scaled_quant`]): `x[k]` holds
/// frequency k of eight lanes, transformed together. Written as one loop over
/// the lanes, which the compiler turns into vector instructions.
#[inline(always)]
fn aan8(x: &[Lanes; 8]) -> [Lanes; 8] {
    const SQRT_2: f32 = std::f32::consts::SQRT_2;
    let mut out = [[0f32; 8]; 8];
    for i in 0..8 {
        // Even part: frequencies 0, 2, 4, 6.
        let sum04 = x[0][i] + x[4][i];
        let diff04 = x[0][i] - x[4][i];
        let sum26 = x[2][i] + x[6][i];
        let diff26 = (x[2][i] - x[6][i]) * SQRT_2 - sum26;
        let even0 = sum04 + sum26;
        let even1 = diff04 + diff26;
        let even2 = diff04 - diff26;
        let even3 = sum04 - sum26;
        // Odd part: frequencies 1, 3, 5, 7.
        let z13 = x[5][i] + x[3][i];
        let z10 = x[5][i] - x[3][i];
        let z11 = x[1][i] + x[7][i];
        let z12 = x[1][i] - x[7][i];
        let odd7 = z11 + z13;
        let z5 = (z10 + z12) * 1.847_759; // 2·cos(π/8)
        let odd6 = z10 * -2.613_126 + z5 - odd7; // −2·(cos(π/8) + cos(3π/8))
        let odd5 = (z11 - z13) * SQRT_2 - odd6;
        let odd4 = z12 * 1.082_392_2 - z5 + odd5; // 2·(cos(π/8) − cos(3π/8))
        out[0][i] = even0 + odd7;
        out[1][i] = even1 + odd6;
        out[2][i] = even2 + odd5;
        out[3][i] = even3 - odd4;
        out[4][i] = even3 + odd4;
        out[5][i] = even2 - odd5;
        out[6][i] = even1 - odd6;
        out[7][i] = even0 - odd7;
    }
    out
}

/// The full 8×8 inverse DCT of a block whose coefficients are stored
/// transposed (entry 8·u + v holds horizontal frequency u, vertical v, see
/// [`TRANSPOSED_ZIGZAG`]; `scaled_quant` likewise), written at (x, y): rows,
/// then columns, so that the second pass ends with one row of samples in each
/// vector, converted and stored eight at a time.
fn idct8(
    coefficients: &[i32; 64],
    scaled_quant: &[f32; 64],
    plane: &mut Plane,
    x: usize,
    y: usize,
) {
    let mut dequantised = [0f32; 64];
    for ((out, &c), &q) in dequantised.iter_mut().zip(coefficients).zip(scaled_quant) {
        *out = c as f32 * q;
    }
    // Vector u holds frequency u of every row v.
    let (by_frequency, _) = dequantised.as_chunks::<8>();
    let by_frequency: [Lanes; 8] = std::array::from_fn(|u| by_frequency[u]);
    // Vector x holds column x of every row v (still in vertical frequencies).
    let columns = aan8(&by_frequency);
    let mut rows = [[0f32; 8]; 8];
    for (x, column) in columns.iter().enumerate() {
        for (row, &value) in rows.iter_mut().zip(column) {
            row[x] = value;
        }
    }
    // Vector y holds row y of samples.
    let samples = aan8(&rows);
    for (row, values) in plane.pixels[y * plane.width + x..]
        .chunks_mut(plane.width)
        .zip(samples)
    {
        // Rounded to the nearest level by adding 2²³, which leaves it in the
        // low bits of the float: a bit cast the compiler vectorises, where a
        // float-to-integer `as` is a saturating conversion it does one by one.
        let levels = values.map(|v| ((v + 128.0).clamp(0.0, 255.0) + 8_388_608.0).to_bits() as u8);
        row[..8].copy_from_slice(&levels);
    }
}

#[cfg(test)]
pub(super) mod tests;
