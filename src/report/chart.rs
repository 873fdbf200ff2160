//! PNG bar charts for the bulletin.
//!
//! A tiny, dependency-light renderer: it rasterises a horizontal grouped bar
//! chart into an RGB buffer and encodes it with the `png` crate. Text is drawn
//! with an embedded 5x7 bitmap font (printable ASCII `0x20..=0x7E`), so the
//! binary never depends on fonts installed on the host. Any character outside
//! that range is drawn as `?`.
//!
//! # Layout
//!
//! The image is `WIDTH` (900) pixels wide. From top to bottom it holds the title,
//! a legend with one colour swatch per series, one row of `ROW_HEIGHT` (44)
//! pixels per bar group (at most `MAX_BARS` = 60) and a footer with the
//! `0%..100%` scale, so its height is
//! `HEADER_HEIGHT + rows * ROW_HEIGHT + FOOTER_HEIGHT` = `84 + 44 * rows + 32`.

/// One bar group: a label (ASCII; department code) and up to two values in 0.0..=1.0, or None when the rate is undefined (drawn as "n/a").
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// Row label, usually a department code such as `city_management`.
    pub label: String,
    /// Rates for series 0 and 1; `None` (or NaN) is drawn as `n/a`.
    pub values: [Option<f64>; 2],
}

/// Renders a horizontal grouped bar chart as PNG bytes (RGB, 8-bit).
/// `title` and the two `series` names are ASCII; each bar group gets one row with the label on the left,
/// two thin bars (series 0 and 1, two distinct colours, with a small legend at the top) scaled 0..100%,
/// and the percentage printed at the end of each bar with one decimal ("87.5%"), or "n/a".
/// Width is fixed (e.g. 900 px); height grows with the number of bars. At most 60 bars are drawn; extra ones are dropped.
pub fn bar_chart_png(title: &str, series: [&str; 2], bars: &[Bar]) -> Vec<u8> {
    let bars = &bars[..bars.len().min(MAX_BARS)];
    let mut canvas = Canvas::new(WIDTH, image_height(bars.len()));

    draw_title(&mut canvas, title);
    draw_legend(&mut canvas, series);
    draw_grid(&mut canvas, bars.len());
    for (index, bar) in bars.iter().enumerate() {
        draw_row(&mut canvas, index, bar);
    }

    canvas.encode_png()
}

// ---------------------------------------------------------------------------
// Layout
// ---------------------------------------------------------------------------

/// Image width in pixels (fixed).
const WIDTH: u32 = 900;
/// Maximum number of bar groups drawn; further ones are dropped.
const MAX_BARS: usize = 60;
/// Outer margin on the left, right and top.
const MARGIN: i64 = 20;

/// Vertical space taken by the title and the legend, above the first row.
const HEADER_HEIGHT: u32 = 84;
/// Height of one bar group (label plus two bars).
const ROW_HEIGHT: u32 = 44;
/// Vertical space below the last row, holding the percentage scale.
const FOOTER_HEIGHT: u32 = 32;

/// Top of the title text.
const TITLE_Y: i64 = 16;
/// Preferred title scale; long titles fall back to [`TEXT_SCALE`].
const TITLE_SCALE: i64 = 3;
/// Top of the legend swatches and names.
const LEGEND_Y: i64 = 52;
/// Scale used for labels, legend, values and the axis.
const TEXT_SCALE: i64 = 2;

/// Width reserved for the row labels (right-aligned against the plot).
const LABEL_WIDTH: i64 = 228;
/// Left edge of the plot area (0%).
const PLOT_LEFT: i64 = MARGIN + LABEL_WIDTH + 12;
/// Right edge of the plot area (100%); the rest is room for "100.0%".
const PLOT_RIGHT: i64 = 800;
/// Thickness of one bar; equal to the text height at [`TEXT_SCALE`].
const BAR_HEIGHT: i64 = GLYPH_ROWS * TEXT_SCALE;
/// Offsets of the two bars from the top of their row.
const BAR_OFFSETS: [i64; 2] = [6, 6 + BAR_HEIGHT + 4];
/// Gap between the end of a bar and its percentage text.
const VALUE_GAP: i64 = 6;
/// Longest series name printed in the legend.
const MAX_SERIES_CHARS: usize = 30;

/// Total image height for `rows` drawn bar groups (after capping).
fn image_height(rows: usize) -> u32 {
    // `rows` is at most MAX_BARS here, so the cast and the sum cannot overflow.
    let rows = rows.min(MAX_BARS) as u32;
    HEADER_HEIGHT + rows * ROW_HEIGHT + FOOTER_HEIGHT
}

/// Top edge of the plot area (first row).
fn plot_top() -> i64 {
    i64::from(HEADER_HEIGHT)
}

// ---------------------------------------------------------------------------
// Colours
// ---------------------------------------------------------------------------

/// An 8-bit RGB colour.
type Rgb = [u8; 3];

const BACKGROUND: Rgb = [0xff, 0xff, 0xff];
const ROW_STRIPE: Rgb = [0xf5, 0xf6, 0xf8];
const GRID: Rgb = [0xdd, 0xdd, 0xdd];
const AXIS: Rgb = [0x88, 0x88, 0x88];
const TEXT: Rgb = [0x22, 0x22, 0x22];
const MUTED: Rgb = [0x88, 0x88, 0x88];
/// Bar colours of series 0 (blue) and series 1 (orange).
const SERIES_COLOURS: [Rgb; 2] = [[0x1f, 0x77, 0xb4], [0xff, 0x7f, 0x0e]];

// ---------------------------------------------------------------------------
// Chart parts
// ---------------------------------------------------------------------------

/// Draws the title, shrinking it to the small scale (and then truncating it)
/// when it does not fit on one line.
fn draw_title(canvas: &mut Canvas, title: &str) {
    let available = i64::from(WIDTH) - 2 * MARGIN;
    let title = sanitize(title);
    let scale = if text_width(title.len(), TITLE_SCALE) <= available {
        TITLE_SCALE
    } else {
        TEXT_SCALE
    };
    let title = truncate(&title, max_chars(available, scale));
    canvas.draw_text(MARGIN, TITLE_Y, &title, scale, TEXT);
}

/// Draws one colour swatch and name per series, side by side.
fn draw_legend(canvas: &mut Canvas, series: [&str; 2]) {
    let swatch = GLYPH_ROWS * TEXT_SCALE;
    let mut x = MARGIN;
    for (name, colour) in series.iter().zip(SERIES_COLOURS) {
        let name = truncate(&sanitize(name), MAX_SERIES_CHARS);
        canvas.fill_rect(x, LEGEND_Y, swatch, swatch, colour);
        x += swatch + 8;
        canvas.draw_text(x, LEGEND_Y, &name, TEXT_SCALE, TEXT);
        x += text_width(name.len(), TEXT_SCALE) + 28;
    }
}

/// Draws the row stripes, the vertical grid lines at every 25% and the
/// percentage scale under the plot.
fn draw_grid(canvas: &mut Canvas, rows: usize) {
    let top = plot_top();
    let row_height = i64::from(ROW_HEIGHT);
    let bottom = top + rows as i64 * row_height;

    for row in (1..rows).step_by(2) {
        let y = top + row as i64 * row_height;
        canvas.fill_rect(0, y, i64::from(WIDTH), row_height, ROW_STRIPE);
    }

    for percent in [0_i64, 25, 50, 75, 100] {
        let x = PLOT_LEFT + (PLOT_RIGHT - PLOT_LEFT) * percent / 100;
        let colour = if percent == 0 { AXIS } else { GRID };
        canvas.fill_rect(x, top, 1, bottom - top, colour);

        let label = format!("{percent}%");
        let label_x = x - text_width(label.len(), TEXT_SCALE) / 2;
        canvas.draw_text(label_x, bottom + 8, &label, TEXT_SCALE, MUTED);
    }
}

/// Draws one bar group: its label and the two bars with their percentages.
fn draw_row(canvas: &mut Canvas, index: usize, bar: &Bar) {
    let row_top = plot_top() + index as i64 * i64::from(ROW_HEIGHT);
    let text_height = GLYPH_ROWS * TEXT_SCALE;

    let label = truncate(&sanitize(&bar.label), max_chars(LABEL_WIDTH, TEXT_SCALE));
    let label_x = PLOT_LEFT - 12 - text_width(label.len(), TEXT_SCALE);
    let label_y = row_top + (i64::from(ROW_HEIGHT) - text_height) / 2;
    canvas.draw_text(label_x, label_y, &label, TEXT_SCALE, TEXT);

    for ((value, colour), offset) in bar.values.iter().zip(SERIES_COLOURS).zip(BAR_OFFSETS) {
        let y = row_top + offset;
        match normalize(*value) {
            Some(rate) => {
                let length = bar_length(rate);
                canvas.fill_rect(PLOT_LEFT, y, length, BAR_HEIGHT, colour);
                let text = format!("{:.1}%", rate * 100.0);
                canvas.draw_text(PLOT_LEFT + length + VALUE_GAP, y, &text, TEXT_SCALE, TEXT);
            }
            None => canvas.draw_text(PLOT_LEFT + VALUE_GAP, y, "n/a", TEXT_SCALE, MUTED),
        }
    }
}

/// Clamps a rate into `0.0..=1.0`; NaN counts as undefined.
fn normalize(value: Option<f64>) -> Option<f64> {
    value.filter(|v| !v.is_nan()).map(|v| v.clamp(0.0, 1.0))
}

/// Length in pixels of a bar for a rate already clamped to `0.0..=1.0`.
fn bar_length(rate: f64) -> i64 {
    // The product lies in 0..=plot width, so the float-to-int cast is exact
    // enough and cannot saturate.
    (rate * (PLOT_RIGHT - PLOT_LEFT) as f64).round() as i64
}

// ---------------------------------------------------------------------------
// Text helpers
// ---------------------------------------------------------------------------

/// Replaces every character outside printable ASCII by `?`, so that the
/// result has exactly one byte per drawn glyph.
fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| if is_printable_ascii(c) { c } else { '?' })
        .collect()
}

/// Shortens already sanitised `text` to `max` characters, marking the cut
/// with `..`.
fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        text.to_owned()
    } else if max <= 2 {
        text[..max].to_owned()
    } else {
        format!("{}..", &text[..max - 2])
    }
}

/// Width in pixels of `chars` glyphs drawn at `scale` (no trailing gap).
fn text_width(chars: usize, scale: i64) -> i64 {
    let chars = i64::try_from(chars).unwrap_or(i64::MAX / GLYPH_ADVANCE);
    (chars * GLYPH_ADVANCE - 1).max(0) * scale
}

/// How many glyphs at `scale` fit into `width` pixels.
fn max_chars(width: i64, scale: i64) -> usize {
    usize::try_from((width / scale + 1) / GLYPH_ADVANCE).unwrap_or(0)
}

fn is_printable_ascii(c: char) -> bool {
    (' '..='~').contains(&c)
}

// ---------------------------------------------------------------------------
// Raster canvas
// ---------------------------------------------------------------------------

/// An RGB pixel buffer with clipped drawing primitives.
struct Canvas {
    width: u32,
    height: u32,
    /// Row-major RGB triples, `width * height * 3` bytes.
    pixels: Vec<u8>,
}

impl Canvas {
    /// A canvas filled with the background colour.
    fn new(width: u32, height: u32) -> Self {
        let len = width as usize * height as usize;
        Self {
            width,
            height,
            pixels: BACKGROUND.repeat(len),
        }
    }

    /// Fills a rectangle; parts outside the canvas are silently clipped.
    fn fill_rect(&mut self, x: i64, y: i64, w: i64, h: i64, colour: Rgb) {
        let x0 = x.clamp(0, i64::from(self.width));
        let x1 = x.saturating_add(w).clamp(0, i64::from(self.width));
        let y0 = y.clamp(0, i64::from(self.height));
        let y1 = y.saturating_add(h).clamp(0, i64::from(self.height));
        // The clamps above keep every coordinate within 0..=u32::MAX.
        let (x0, x1) = (x0 as usize, x1 as usize);
        let stride = self.width as usize * 3;
        for row in y0 as usize..y1 as usize {
            let line = &mut self.pixels[row * stride + x0 * 3..row * stride + x1 * 3];
            for pixel in line.chunks_exact_mut(3) {
                pixel.copy_from_slice(&colour);
            }
        }
    }

    /// Draws `text` with its top-left corner at (`x`, `y`), each font pixel
    /// becoming a `scale` x `scale` square. Non-ASCII characters are drawn as
    /// `?`.
    fn draw_text(&mut self, x: i64, y: i64, text: &str, scale: i64, colour: Rgb) {
        let mut pen = x;
        for c in text.chars() {
            for (column, bits) in glyph(c).iter().enumerate() {
                for row in 0..GLYPH_ROWS {
                    if bits & (1 << row) != 0 {
                        let px = pen + column as i64 * scale;
                        self.fill_rect(px, y + row * scale, scale, scale, colour);
                    }
                }
            }
            pen += GLYPH_ADVANCE * scale;
        }
    }

    /// Encodes the canvas as an 8-bit RGB PNG.
    fn encode_png(&self) -> Vec<u8> {
        self.try_encode_png()
            .expect("encoding a PNG with valid dimensions into a Vec cannot fail")
    }

    fn try_encode_png(&self) -> Result<Vec<u8>, png::EncodingError> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, self.width, self.height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&self.pixels)?;
        writer.finish()?;
        Ok(out)
    }
}

// ---------------------------------------------------------------------------
// Embedded 5x7 font
// ---------------------------------------------------------------------------

/// Glyph height in font pixels.
const GLYPH_ROWS: i64 = 7;
/// Horizontal advance per glyph in font pixels (5 columns + 1 gap).
const GLYPH_ADVANCE: i64 = 6;

/// The bitmap for `c`; anything outside printable ASCII maps to `?`.
fn glyph(c: char) -> &'static [u8; 5] {
    let c = if is_printable_ascii(c) { c } else { '?' };
    // `c` is in ' '..='~' here, so the index is within 0..95.
    &FONT[c as usize - 0x20]
}

/// Classic 5x7 font for `0x20..=0x7E`: five columns per glyph, left to right,
/// bit 0 is the top row and bit 6 the bottom row.
const FONT: [[u8; 5]; 95] = [
    [0x00, 0x00, 0x00, 0x00, 0x00], // ' '
    [0x00, 0x00, 0x5F, 0x00, 0x00], // '!'
    [0x00, 0x07, 0x00, 0x07, 0x00], // '"'
    [0x14, 0x7F, 0x14, 0x7F, 0x14], // '#'
    [0x24, 0x2A, 0x7F, 0x2A, 0x12], // '$'
    [0x23, 0x13, 0x08, 0x64, 0x62], // '%'
    [0x36, 0x49, 0x55, 0x22, 0x50], // '&'
    [0x00, 0x05, 0x03, 0x00, 0x00], // '\''
    [0x00, 0x1C, 0x22, 0x41, 0x00], // '('
    [0x00, 0x41, 0x22, 0x1C, 0x00], // ')'
    [0x14, 0x08, 0x3E, 0x08, 0x14], // '*'
    [0x08, 0x08, 0x3E, 0x08, 0x08], // '+'
    [0x00, 0x50, 0x30, 0x00, 0x00], // ','
    [0x08, 0x08, 0x08, 0x08, 0x08], // '-'
    [0x00, 0x60, 0x60, 0x00, 0x00], // '.'
    [0x20, 0x10, 0x08, 0x04, 0x02], // '/'
    [0x3E, 0x51, 0x49, 0x45, 0x3E], // '0'
    [0x00, 0x42, 0x7F, 0x40, 0x00], // '1'
    [0x42, 0x61, 0x51, 0x49, 0x46], // '2'
    [0x21, 0x41, 0x45, 0x4B, 0x31], // '3'
    [0x18, 0x14, 0x12, 0x7F, 0x10], // '4'
    [0x27, 0x45, 0x45, 0x45, 0x39], // '5'
    [0x3C, 0x4A, 0x49, 0x49, 0x30], // '6'
    [0x01, 0x71, 0x09, 0x05, 0x03], // '7'
    [0x36, 0x49, 0x49, 0x49, 0x36], // '8'
    [0x06, 0x49, 0x49, 0x29, 0x1E], // '9'
    [0x00, 0x36, 0x36, 0x00, 0x00], // ':'
    [0x00, 0x56, 0x36, 0x00, 0x00], // ';'
    [0x08, 0x14, 0x22, 0x41, 0x00], // '<'
    [0x14, 0x14, 0x14, 0x14, 0x14], // '='
    [0x00, 0x41, 0x22, 0x14, 0x08], // '>'
    [0x02, 0x01, 0x51, 0x09, 0x06], // '?'
    [0x32, 0x49, 0x79, 0x41, 0x3E], // '@'
    [0x7E, 0x11, 0x11, 0x11, 0x7E], // 'A'
    [0x7F, 0x49, 0x49, 0x49, 0x36], // 'B'
    [0x3E, 0x41, 0x41, 0x41, 0x22], // 'C'
    [0x7F, 0x41, 0x41, 0x22, 0x1C], // 'D'
    [0x7F, 0x49, 0x49, 0x49, 0x41], // 'E'
    [0x7F, 0x09, 0x09, 0x09, 0x01], // 'F'
    [0x3E, 0x41, 0x49, 0x49, 0x7A], // 'G'
    [0x7F, 0x08, 0x08, 0x08, 0x7F], // 'H'
    [0x00, 0x41, 0x7F, 0x41, 0x00], // 'I'
    [0x20, 0x40, 0x41, 0x3F, 0x01], // 'J'
    [0x7F, 0x08, 0x14, 0x22, 0x41], // 'K'
    [0x7F, 0x40, 0x40, 0x40, 0x40], // 'L'
    [0x7F, 0x02, 0x0C, 0x02, 0x7F], // 'M'
    [0x7F, 0x04, 0x08, 0x10, 0x7F], // 'N'
    [0x3E, 0x41, 0x41, 0x41, 0x3E], // 'O'
    [0x7F, 0x09, 0x09, 0x09, 0x06], // 'P'
    [0x3E, 0x41, 0x51, 0x21, 0x5E], // 'Q'
    [0x7F, 0x09, 0x19, 0x29, 0x46], // 'R'
    [0x46, 0x49, 0x49, 0x49, 0x31], // 'S'
    [0x01, 0x01, 0x7F, 0x01, 0x01], // 'T'
    [0x3F, 0x40, 0x40, 0x40, 0x3F], // 'U'
    [0x1F, 0x20, 0x40, 0x20, 0x1F], // 'V'
    [0x3F, 0x40, 0x38, 0x40, 0x3F], // 'W'
    [0x63, 0x14, 0x08, 0x14, 0x63], // 'X'
    [0x07, 0x08, 0x70, 0x08, 0x07], // 'Y'
    [0x61, 0x51, 0x49, 0x45, 0x43], // 'Z'
    [0x00, 0x7F, 0x41, 0x41, 0x00], // '['
    [0x02, 0x04, 0x08, 0x10, 0x20], // '\\'
    [0x00, 0x41, 0x41, 0x7F, 0x00], // ']'
    [0x04, 0x02, 0x01, 0x02, 0x04], // '^'
    [0x40, 0x40, 0x40, 0x40, 0x40], // '_'
    [0x00, 0x01, 0x02, 0x04, 0x00], // '`'
    [0x20, 0x54, 0x54, 0x54, 0x78], // 'a'
    [0x7F, 0x48, 0x44, 0x44, 0x38], // 'b'
    [0x38, 0x44, 0x44, 0x44, 0x20], // 'c'
    [0x38, 0x44, 0x44, 0x48, 0x7F], // 'd'
    [0x38, 0x54, 0x54, 0x54, 0x18], // 'e'
    [0x08, 0x7E, 0x09, 0x01, 0x02], // 'f'
    [0x08, 0x14, 0x54, 0x54, 0x3C], // 'g'
    [0x7F, 0x08, 0x04, 0x04, 0x78], // 'h'
    [0x00, 0x44, 0x7D, 0x40, 0x00], // 'i'
    [0x20, 0x40, 0x44, 0x3D, 0x00], // 'j'
    [0x7F, 0x10, 0x28, 0x44, 0x00], // 'k'
    [0x00, 0x41, 0x7F, 0x40, 0x00], // 'l'
    [0x7C, 0x04, 0x18, 0x04, 0x78], // 'm'
    [0x7C, 0x08, 0x04, 0x04, 0x78], // 'n'
    [0x38, 0x44, 0x44, 0x44, 0x38], // 'o'
    [0x7C, 0x14, 0x14, 0x14, 0x08], // 'p'
    [0x08, 0x14, 0x14, 0x18, 0x7C], // 'q'
    [0x7C, 0x08, 0x04, 0x04, 0x08], // 'r'
    [0x48, 0x54, 0x54, 0x54, 0x20], // 's'
    [0x04, 0x3F, 0x44, 0x40, 0x20], // 't'
    [0x3C, 0x40, 0x40, 0x20, 0x7C], // 'u'
    [0x1C, 0x20, 0x40, 0x20, 0x1C], // 'v'
    [0x3C, 0x40, 0x30, 0x40, 0x3C], // 'w'
    [0x44, 0x28, 0x10, 0x28, 0x44], // 'x'
    [0x0C, 0x50, 0x50, 0x50, 0x3C], // 'y'
    [0x44, 0x64, 0x54, 0x4C, 0x44], // 'z'
    [0x00, 0x08, 0x36, 0x41, 0x00], // '{'
    [0x00, 0x00, 0x7F, 0x00, 0x00], // '|'
    [0x00, 0x41, 0x36, 0x08, 0x00], // '}'
    [0x08, 0x04, 0x08, 0x10, 0x08], // '~'
];

#[cfg(test)]
mod tests {
    use super::*;

    const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];

    /// A decoded chart: dimensions plus RGB pixels.
    struct Decoded {
        width: u32,
        height: u32,
        pixels: Vec<u8>,
    }

    impl Decoded {
        fn count(&self, colour: Rgb) -> usize {
            self.pixels
                .chunks_exact(3)
                .filter(|pixel| *pixel == colour)
                .count()
        }
    }

    fn decode(bytes: &[u8]) -> Decoded {
        let decoder = png::Decoder::new(bytes);
        let mut reader = decoder.read_info().expect("valid PNG header");
        let mut pixels = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut pixels).expect("valid PNG frame");
        assert_eq!(info.color_type, png::ColorType::Rgb);
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        pixels.truncate(info.buffer_size());
        Decoded {
            width: info.width,
            height: info.height,
            pixels,
        }
    }

    fn bar(label: &str, a: Option<f64>, b: Option<f64>) -> Bar {
        Bar {
            label: label.to_owned(),
            values: [a, b],
        }
    }

    fn bars(n: usize) -> Vec<Bar> {
        (0..n)
            .map(|i| bar(&format!("dept_{i}"), Some(0.5), Some(0.875)))
            .collect()
    }

    fn render(bars: &[Bar]) -> Decoded {
        decode(&bar_chart_png(
            "Bulletin 2024-05",
            ["on_time_rate", "satisfaction"],
            bars,
        ))
    }

    #[test]
    fn output_is_png_with_fixed_width_and_formula_height() {
        let bytes = bar_chart_png(
            "Monthly bulletin",
            ["handled", "satisfied"],
            &[bar("city_management", Some(0.875), None)],
        );
        assert!(bytes.starts_with(&PNG_SIGNATURE));
        let image = decode(&bytes);
        assert_eq!(image.width, WIDTH);
        assert_eq!(image.height, HEADER_HEIGHT + ROW_HEIGHT + FOOTER_HEIGHT);
        assert_eq!(
            image.pixels.len(),
            (image.width * image.height * 3) as usize
        );
    }

    #[test]
    fn height_grows_with_number_of_bars() {
        let heights: Vec<u32> = [0, 1, 2, 10]
            .into_iter()
            .map(|n| render(&bars(n)).height)
            .collect();
        assert!(heights.windows(2).all(|w| w[0] < w[1]), "{heights:?}");
        assert_eq!(heights[2] - heights[1], ROW_HEIGHT);
        assert_eq!(heights[3], image_height(10));
    }

    #[test]
    fn full_bar_paints_more_series0_pixels_than_quarter_bar() {
        let full = render(&[bar("water", Some(1.0), Some(0.5))]);
        let quarter = render(&[bar("water", Some(0.25), Some(0.5))]);
        let full_count = full.count(SERIES_COLOURS[0]);
        let quarter_count = quarter.count(SERIES_COLOURS[0]);
        assert!(
            full_count > quarter_count,
            "{full_count} <= {quarter_count}"
        );
        // The difference is exactly three quarters of the plot width, one bar thick.
        let expected = (bar_length(1.0) - bar_length(0.25)) * BAR_HEIGHT;
        assert_eq!((full_count - quarter_count) as i64, expected);
        // Series 1 is unchanged.
        assert_eq!(
            full.count(SERIES_COLOURS[1]),
            quarter.count(SERIES_COLOURS[1])
        );
    }

    #[test]
    fn empty_input_renders_title_and_legend() {
        let image = render(&[]);
        assert_eq!(image.width, WIDTH);
        assert_eq!(image.height, HEADER_HEIGHT + FOOTER_HEIGHT);
        let swatch = (GLYPH_ROWS * TEXT_SCALE * GLYPH_ROWS * TEXT_SCALE) as usize;
        assert_eq!(image.count(SERIES_COLOURS[0]), swatch);
        assert_eq!(image.count(SERIES_COLOURS[1]), swatch);
        assert!(image.count(TEXT) > 0, "title text is drawn");
    }

    #[test]
    fn more_than_sixty_bars_are_capped() {
        let hundred = render(&bars(100));
        let sixty = render(&bars(60));
        assert_eq!(hundred.height, sixty.height);
        assert_eq!(hundred.height, image_height(60));
        assert_eq!(hundred.pixels, sixty.pixels);
    }

    #[test]
    fn non_ascii_text_does_not_panic_and_draws_question_marks() {
        let image = decode(&bar_chart_png(
            "12345 热线通报 ✓",
            ["按时办结率", "满意率\u{0}"],
            &[
                bar("城市管理局", Some(0.5), None),
                bar("e\u{301}\t", None, None),
            ],
        ));
        assert_eq!(image.height, image_height(2));

        assert_eq!(sanitize("城管_a\u{7f}"), "??_a?");
        assert_eq!(glyph('城'), glyph('?'));
        assert_eq!(glyph('\n'), glyph('?'));
    }

    #[test]
    fn odd_values_are_clamped_or_treated_as_missing() {
        assert_eq!(normalize(Some(1.7)), Some(1.0));
        assert_eq!(normalize(Some(-0.2)), Some(0.0));
        assert_eq!(normalize(Some(f64::INFINITY)), Some(1.0));
        assert_eq!(normalize(Some(f64::NEG_INFINITY)), Some(0.0));
        assert_eq!(normalize(Some(f64::NAN)), None);
        assert_eq!(normalize(None), None);

        let over = render(&[bar("a", Some(5.0), Some(f64::NAN))]);
        let full = render(&[bar("a", Some(1.0), None)]);
        assert_eq!(over.pixels, full.pixels);
    }

    #[test]
    fn long_texts_are_truncated_within_the_image() {
        let long = "x".repeat(500);
        let image = decode(&bar_chart_png(
            &long,
            [&long, &long],
            &[bar(&long, Some(1.0), Some(1.0))],
        ));
        assert_eq!(image.width, WIDTH);
        assert_eq!(truncate("city_management", 8), "city_m..");
        assert_eq!(truncate("abc", 2), "ab");
        assert_eq!(truncate("abc", 3), "abc");
    }

    #[test]
    fn font_covers_printable_ascii() {
        assert!(glyph(' ').iter().all(|&column| column == 0));
        for c in '!'..='~' {
            let bits = glyph(c);
            assert!(bits.iter().any(|&column| column != 0), "{c:?} is blank");
            assert!(bits.iter().all(|&column| column < 0x80), "{c:?} too tall");
        }
    }

    #[test]
    fn percentages_use_one_decimal() {
        // 87.5% and 100.0% render to text pixels; n/a is drawn muted.
        let with_values = render(&[bar("a", Some(0.875), Some(1.0))]);
        let missing = render(&[bar("a", None, None)]);
        assert!(with_values.count(TEXT) > missing.count(TEXT));
        assert_eq!(format!("{:.1}%", 0.875 * 100.0), "87.5%");
    }
}
