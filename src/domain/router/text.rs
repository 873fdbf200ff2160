//! Text as the router sees it: normalised characters and hashed 1–3-grams.

use super::Params;

const BUCKET_BITS: u32 = 18;
pub(super) const BUCKETS: usize = 1 << BUCKET_BITS;
const MAX_GRAM: usize = 3;
/// Marks a boundary (punctuation, space, field end) in normalised text.
pub(super) const SEP: char = '\0';

/// A feature's row in the weight table.
fn bucket(h: u64) -> u32 {
    let h = (h ^ (h >> 31)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    ((h ^ (h >> 32)) as usize & (BUCKETS - 1)) as u32
}

/// The appeal's normalised text, `title SEP content SEP address`, and where
/// each field ends.
pub(super) struct Fields {
    pub(super) title_end: usize,
    pub(super) content_end: usize,
}

pub(super) struct Feature {
    pub(super) bucket: u32,
    pub(super) weight: f32,
    pub(super) start: u32,
    pub(super) len: u8,
}

impl Fields {
    pub(super) fn new(
        title: &str,
        content: &str,
        address: Option<&str>,
        text: &mut Vec<char>,
    ) -> Fields {
        text.clear();
        normalise_into(title, text);
        text.push(SEP);
        let title_end = text.len();
        normalise_into(content, text);
        text.push(SEP);
        let content_end = text.len();
        if let Some(a) = address {
            normalise_into(a, text);
        }
        text.push(SEP);
        Fields {
            title_end,
            content_end,
        }
    }

    /// Binary bag of hashed 1–3-grams: a feature counts once, with the
    /// weight of the strongest field it occurs in.
    pub(super) fn features(&self, text: &[char], p: &Params, out: &mut Vec<Feature>) {
        out.clear();
        for i in 0..text.len() {
            let weight = if i < self.title_end {
                p.title_weight
            } else if i < self.content_end {
                1.0
            } else {
                p.address_weight
            };
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for n in 1..=MAX_GRAM {
                let Some(&c) = text.get(i + n - 1) else {
                    break;
                };
                if c == SEP {
                    break;
                }
                h = (h ^ u64::from(c)).wrapping_mul(0x0100_0000_01b3);
                out.push(Feature {
                    bucket: bucket(h ^ n as u64),
                    weight,
                    start: i as u32,
                    len: n as u8,
                });
            }
        }
        out.sort_by(|a, b| {
            a.bucket
                .cmp(&b.bucket)
                .then(b.weight.total_cmp(&a.weight))
                .then(a.start.cmp(&b.start))
        });
        out.dedup_by_key(|f| f.bucket);
    }
}

/// Lower-case ASCII, full-width forms folded to half-width, anything that is
/// neither a letter nor a digit turned into one [`SEP`].
pub(super) fn normalise_into(s: &str, out: &mut Vec<char>) {
    for c in s.chars() {
        let c = match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            _ => c,
        };
        if c.is_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if out.last().is_some_and(|&l| l != SEP) {
            out.push(SEP);
        }
    }
}
